package quictun

import (
	"sync"
	"time"
)

// rateLimiter is a token bucket used to rate-limit ICMP answers and
// per-packet log lines. It starts full (burst tokens), refills at perSecond
// tokens a second up to burst, and each allowed event takes one token.
//
// Safe for concurrent use and allocation-free. Times are compared on the
// monotonic clock when they carry one; a time earlier than one already seen
// adds no tokens.
type rateLimiter struct {
	rate  float64 // tokens per second
	burst float64 // bucket size
	epoch time.Time

	mu      sync.Mutex
	tokens  float64       // guarded by mu
	last    time.Duration // guarded by mu; when tokens was computed, since epoch
	started bool          // guarded by mu; last is set
}

// newRateLimiter returns a full bucket of burst tokens (at least 1) that
// refills at perSecond tokens a second. A perSecond of 0 or less never
// refills: only the first burst events are allowed.
func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if burst < 1 {
		burst = 1
	}
	if perSecond < 0 {
		perSecond = 0
	}
	return &rateLimiter{
		rate:   perSecond,
		burst:  float64(burst),
		epoch:  time.Now(),
		tokens: float64(burst),
	}
}

// allow reports whether an event at now is within the rate, taking a token
// if so.
func (r *rateLimiter) allow(now time.Time) bool {
	ts := now.Sub(r.epoch)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started {
		r.started, r.last = true, ts
	}
	if elapsed := ts - r.last; elapsed > 0 {
		r.tokens = min(r.burst, r.tokens+elapsed.Seconds()*r.rate)
		r.last = ts
	}
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}
