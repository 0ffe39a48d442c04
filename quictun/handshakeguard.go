package quictun

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"
)

// Defaults of HandshakeLimits.
const (
	// DefaultRetryAbove: a server with 64 handshakes in flight holds about
	// 1.7 MB for them (~26 KB each, for up to the 5 s handshake timeout);
	// past that, new clients prove their address first, so a flood of
	// spoofed Initials holds no more.
	DefaultRetryAbove = 64
	// DefaultRetryPerSource: a client (or a NAT) rarely has more than a few
	// handshakes going at once; a source with 8 proves its address first
	// whatever the server's total.
	DefaultRetryPerSource = 8
	// DefaultMaxHandshakesPerSource bounds what one address that answers
	// Retries can hold: 64 × 26 KB, while leaving room for a NAT full of
	// clients redialling after a server restart.
	DefaultMaxHandshakesPerSource = 64
)

// HandshakeLimits bound the QUIC handshakes a server has in flight (from
// a client's first Initial to the handshake's end), as WireGuard's
// cookie and rate limiter bound its handshake work: a half-open handshake
// costs the server memory until it times out. A source is an IPv4
// address or an IPv6 /64, as in WireGuard's rate limiter.
type HandshakeLimits struct {
	// RetryAbove: while at least this many handshakes are in flight, a
	// client without a token must first prove its address with a QUIC
	// Retry (one more round trip; a spoofed source never answers, so it
	// holds nothing). Zero: DefaultRetryAbove. Negative: always.
	RetryAbove int
	// RetryPerSource: a source with at least this many handshakes in
	// flight is asked for a Retry whatever the server's total. Zero:
	// DefaultRetryPerSource.
	RetryPerSource int
	// MaxPerSource: a source with this many handshakes in flight is
	// refused new ones (CONNECTION_REFUSED, which its client logs as
	// "server busy" before it redials). Zero:
	// DefaultMaxHandshakesPerSource.
	MaxPerSource int
}

func (l HandshakeLimits) withDefaults() HandshakeLimits {
	switch {
	case l.RetryAbove == 0:
		l.RetryAbove = DefaultRetryAbove
	case l.RetryAbove < 0:
		l.RetryAbove = 0
	}
	if l.RetryPerSource <= 0 {
		l.RetryPerSource = DefaultRetryPerSource
	}
	if l.MaxPerSource <= 0 {
		l.MaxPerSource = DefaultMaxHandshakesPerSource
	}
	return l
}

// errSourceLimit refuses a handshake from a source over MaxPerSource.
var errSourceLimit = errors.New("too many handshakes in flight from this address")

// handshakeGuard counts the handshakes in flight, by source, and applies
// HandshakeLimits through the two hooks quic-go offers a server:
// Transport.VerifySourceAddress (Retry or not, for a client without a
// token) and Transport.ConnContext (go ahead or refuse, once the address
// is validated or needs no validation). A handshake leaves the count when
// the server accepts the connection or when its context ends (the
// handshake failed or timed out, or the connection was refused).
type handshakeGuard struct {
	limits HandshakeLimits
	stats  *serverStats
	log    *slog.Logger
	logRL  *rateLimiter
	// closing is set once the server shuts down: quic-go then refuses the
	// handshakes in flight, which are not the accept queue's refusals.
	closing atomic.Bool

	mu       sync.Mutex
	total    int                // guarded by mu
	bySource map[netip.Addr]int // guarded by mu; only sources with handshakes in flight
}

func newHandshakeGuard(l HandshakeLimits, st *serverStats, log *slog.Logger) *handshakeGuard {
	return &handshakeGuard{limits: l.withDefaults(), stats: st, log: log,
		logRL: newRateLimiter(1, 5), bySource: make(map[netip.Addr]int)}
}

// sourceOf returns the source a handshake counts under: the IPv4
// address, or the IPv6 address's /64 (one host's share of a network).
func sourceOf(a net.Addr) netip.Addr {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(ua.IP)
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// inFlight returns the server's handshakes in flight and those of src.
func (g *handshakeGuard) inFlight(src netip.Addr) (total, fromSrc int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total, g.bySource[src]
}

// verifySourceAddress is the Transport's VerifySourceAddress: true asks
// the client for a Retry. quic-go calls it for an Initial without a
// valid token, from its one packet-handling goroutine.
func (g *handshakeGuard) verifySourceAddress(addr net.Addr) bool {
	total, fromSrc := g.inFlight(sourceOf(addr))
	if total < g.limits.RetryAbove && fromSrc < g.limits.RetryPerSource {
		return false
	}
	g.stats.count(HandshakeRetry)
	if g.logRL.allow(time.Now()) {
		g.log.Info("asking a client to validate its address (QUIC Retry)", "remote", addr.String(),
			"in_flight", total, "in_flight_from_source", fromSrc)
	}
	return true
}

// connContext is the Transport's ConnContext: it refuses a handshake
// from a source over MaxPerSource and counts the others in flight until
// accepted (done) or ended. It also stamps the start for the
// handshake-time histogram.
func (g *handshakeGuard) connContext(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	src := sourceOf(info.RemoteAddr)
	g.mu.Lock()
	n := g.bySource[src]
	if n >= g.limits.MaxPerSource {
		g.mu.Unlock()
		g.stats.count(HandshakeSourceLimit)
		if g.logRL.allow(time.Now()) {
			g.log.Warn("client refused", "remote", info.RemoteAddr.String(), "reason", errSourceLimit.Error(),
				"in_flight_from_source", n)
		}
		return nil, errSourceLimit
	}
	g.bySource[src] = n + 1
	g.total++
	g.mu.Unlock()
	h := &handshake{g: g, src: src}
	ctx = context.WithValue(ctx, handshakeStartKey{}, time.Now())
	ctx = context.WithValue(ctx, handshakeKey{}, h)
	h.stop = context.AfterFunc(ctx, func() { h.end(context.Cause(ctx)) })
	return ctx, nil
}

// accepted takes an accepted connection's handshake out of the count.
func (g *handshakeGuard) accepted(conn *quic.Conn) {
	if h, ok := conn.Context().Value(handshakeKey{}).(*handshake); ok {
		h.stop()
		h.end(nil)
	}
}

// handshakeKey keys a connection's *handshake in its context.
type handshakeKey struct{}

// handshake is one handshake in flight.
type handshake struct {
	g    *handshakeGuard
	src  netip.Addr
	stop func() bool // unregisters the context's AfterFunc
	done atomic.Bool
}

// end takes h out of the count once: accepted (cause nil) or ended with
// cause before the server accepted it, which it counts when no other
// count says why (a timeout, the accept queue's refusal).
func (h *handshake) end(cause error) {
	if h.done.Swap(true) {
		return
	}
	g := h.g
	g.mu.Lock()
	g.total--
	if n := g.bySource[h.src] - 1; n > 0 {
		g.bySource[h.src] = n
	} else {
		delete(g.bySource, h.src)
	}
	g.mu.Unlock()
	var hte *quic.HandshakeTimeoutError
	var ite *quic.IdleTimeoutError
	var te *quic.TransportError
	switch {
	case cause == nil:
	case errors.As(cause, &hte), errors.As(cause, &ite):
		// Before the handshake completed: nothing came from the client
		// for HandshakeIdleTimeout, or the whole handshake took too long.
		g.stats.count(HandshakeTimeout)
	case errors.As(cause, &te) && !te.Remote && te.ErrorCode == quic.ConnectionRefused && !g.closing.Load():
		// quic-go refuses a client whose handshake completed when its
		// accept queue is full.
		g.stats.count(HandshakeAcceptQueueFull)
		if g.logRL.allow(time.Now()) {
			g.log.Warn("client refused", "reason", "accept queue full")
		}
	}
}
