package hub

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/packet"
)

// Defaults for NewMACs.
const (
	defaultMACMaxAge     = 5 * time.Minute // as the Linux bridge's ageing time
	defaultMACMaxEntries = 8192
)

// MACs is the table of the hub's TAP learning switch: it learns which port
// (T: a session, or the local device) each MAC was last seen on, with
// ageing.
//
// Safe for concurrent use. Learn is called for every frame from several
// goroutines, so its common case (the MAC is already known on the same port)
// takes only the read lock and refreshes the entry's timestamp atomically;
// only a new MAC or a move to another port takes the write lock.
//
// A MAC moves to the port it was last seen on, as a host that moves
// between sites must. LearnPinned is the stricter learning for ports that
// must not take over a MAC another port holds (pinning): its refusal is
// answered under the read lock too.
//
// When the table is full, Learn first drops aged-out entries (at most once a
// second, so a flood of new source MACs costs little), and if it is still
// full it refuses to learn the new MAC: frames to that MAC are then flooded
// as unknown unicast, as a hardware switch with a full table does. Known
// MACs keep refreshing and moving. Evicting the oldest instead would let a
// flood of forged source MACs push out every real host. Learn reports
// each refusal, for the caller to count.
//
// Ages are measured on the monotonic clock when the times passed in carry
// one (time.Now does), so a wall-clock step does not age the table.
type MACs[T comparable] struct {
	maxAge     time.Duration
	maxEntries int
	epoch      time.Time // ages are stored as durations since epoch

	mu        sync.RWMutex
	m         map[packet.MAC]*macEntry[T] // guarded by mu
	lastPurge time.Duration               // guarded by mu (write lock); since epoch
}

// macEntry is one learned MAC.
type macEntry[T comparable] struct {
	port T            // guarded by MACs.mu: written under the write lock
	seen atomic.Int64 // when last seen, as a time.Duration since the table's epoch
}

// NewMACs returns an empty table whose entries expire maxAge after they
// were last seen and which holds at most maxEntries MACs. Zero (or negative)
// values mean 5 minutes and 8192 entries.
func NewMACs[T comparable](maxAge time.Duration, maxEntries int) *MACs[T] {
	if maxAge <= 0 {
		maxAge = defaultMACMaxAge
	}
	if maxEntries <= 0 {
		maxEntries = defaultMACMaxEntries
	}
	return &MACs[T]{
		maxAge:     maxAge,
		maxEntries: maxEntries,
		epoch:      time.Now(),
		m:          make(map[packet.MAC]*macEntry[T]),
		lastPurge:  -1 << 62,
	}
}

// since converts now to the table's internal timestamp.
func (t *MACs[T]) since(now time.Time) time.Duration { return now.Sub(t.epoch) }

// Learn records that src was seen on port at now. A multicast (or
// broadcast) src is ignored, as are all-zero MACs. A known MAC seen on
// another port moves there. See the type's comment for what happens when
// the table is full; ok is false when it refused a new src for that.
func (t *MACs[T]) Learn(src packet.MAC, port T, now time.Time) (ok bool) {
	ok, _ = t.learn(src, port, now, false)
	return ok
}

// LearnPinned is Learn for a port that may not take a MAC from another
// port: while src's entry on another port is live (seen within maxAge),
// pinned is true and nothing changes. An entry that has aged out, or was
// removed with its port, no longer pins: src then moves to port as with
// Learn. ok is as Learn's.
func (t *MACs[T]) LearnPinned(src packet.MAC, port T, now time.Time) (ok, pinned bool) {
	return t.learn(src, port, now, true)
}

// learn is Learn, and LearnPinned when pin is set.
func (t *MACs[T]) learn(src packet.MAC, port T, now time.Time, pin bool) (ok, pinned bool) {
	if src.IsMulticast() || src == (packet.MAC{}) {
		return true, false
	}
	ts := t.since(now)
	t.mu.RLock()
	e := t.m[src]
	if e != nil && e.port == port {
		e.seen.Store(int64(ts))
		t.mu.RUnlock()
		return true, false
	}
	if e != nil && pin && t.live(e, ts) {
		// Answered under the read lock: a port sending with another's
		// MAC frame after frame does not serialize the switch.
		t.mu.RUnlock()
		return true, true
	}
	t.mu.RUnlock()

	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.m[src]; e != nil {
		if e.port != port && pin && t.live(e, ts) {
			return true, true // taken by another port since the read above
		}
		e.port = port
		e.seen.Store(int64(ts))
		return true, false
	}
	if len(t.m) >= t.maxEntries {
		if ts-t.lastPurge >= time.Second {
			t.lastPurge = ts
			t.expireLocked(ts)
		}
		if len(t.m) >= t.maxEntries {
			return false, false
		}
	}
	e = &macEntry[T]{port: port}
	e.seen.Store(int64(ts))
	t.m[src] = e
	return true, false
}

// live reports whether e has been seen within maxAge of ts (as Lookup
// finds it).
func (t *MACs[T]) live(e *macEntry[T], ts time.Duration) bool {
	return ts-time.Duration(e.seen.Load()) <= t.maxAge
}

// Lookup returns the port dst was last seen on; false if dst is unknown or
// its entry has aged out (older than maxAge at now).
func (t *MACs[T]) Lookup(dst packet.MAC, now time.Time) (T, bool) {
	ts := t.since(now)
	t.mu.RLock()
	defer t.mu.RUnlock()
	e := t.m[dst]
	if e == nil || !t.live(e, ts) {
		var zero T
		return zero, false
	}
	return e.port, true
}

// RemovePort forgets every MAC learned on port (a session that ended) and
// returns how many.
func (t *MACs[T]) RemovePort(port T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for k, e := range t.m {
		if e.port == port {
			delete(t.m, k)
			n++
		}
	}
	return n
}

// Expire drops the entries older than maxAge at now and returns how many;
// call it periodically (e.g. every maxAge/4) to bound memory.
func (t *MACs[T]) Expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.expireLocked(t.since(now))
}

// expireLocked is Expire with t.mu held for writing.
func (t *MACs[T]) expireLocked(ts time.Duration) int {
	n := 0
	for k, e := range t.m {
		if !t.live(e, ts) {
			delete(t.m, k)
			n++
		}
	}
	return n
}

// len returns the number of entries, aged-out ones not yet expired included.
func (t *MACs[T]) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
