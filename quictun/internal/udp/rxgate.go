package udp

import (
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// RxGate holds back socket reads while quic-go's DATAGRAM receive queue
// may be close to full.
//
// quic-go keeps at most 128 received datagrams per connection and drops
// the rest; the goroutine that drains them (in the core, calling Done) is
// woken onto the processor of quic-go's connection loop, so while that
// loop has packets to work through, the drainer often waits — and a burst
// of more than 128 datagrams is lost, which TCP inside the tunnel takes
// for congestion. The gate counts packets handed to quic-go and datagrams
// taken out (see below for which); when more than rxGateLimit are between
// the two, the next socket read waits until the drainer has caught up to
// half of that. Meanwhile the packets wait in the kernel's socket buffer
// (8 MiB), quic-go's loop runs dry and parks, and the drainer gets the
// processor: loss becomes a short delay.
//
// Only 1-RTT (short header) packets of at least rxGateMinPacket bytes
// count: handshakes (long headers, padded to 1200 bytes) carry no
// datagram, and QUIC's ACK-only and PING packets are smaller. Datagrams
// under rxGateMinDatagram do not count, since they could have come in such
// a packet. The count is an estimate: a packet may carry several small
// datagrams (the count then goes below zero, and stops at zero: the gate
// then holds nothing back), or none (an ACK with many ranges, a path
// probe, or anything anyone sends to the port: the count drifts up). So a
// wait ends after rxGateMaxWait whatever happens, the count starts afresh,
// and the gate stays open for a while: rxGateMinBackoff after a lone
// timeout, doubling up to rxGateMaxBackoff while timeouts keep coming. So
// packets that never turn into datagrams (a peer padding its packets, junk
// from anywhere) hold reads back for at most rxGateMaxWait per
// rxGateMaxBackoff once they persist, while the rare timeouts of a busy
// machine leave the gate open only briefly.
//
// One goroutine reads (quic-go's); any number may call Done.
type RxGate struct {
	pending  atomic.Int64 // counted packets handed out − counted datagrams taken
	wake     chan struct{}
	timer    *time.Timer // the reader's, reused
	maxWait  time.Duration
	openTill time.Time     // after a timeout: no waiting until then (reader only; kept after)
	backoff  time.Duration // the last open period (reader only)
	waits    *atomic.Uint64
	timeouts *atomic.Uint64
}

const (
	// rxGateLimit is how many counted datagrams may be outstanding before
	// reads wait: half of quic-go's queue, leaving room for packets the
	// connection loop already holds.
	rxGateLimit = 64
	// rxGateMinPacket is the smallest UDP payload counted as carrying a
	// datagram. The smallest packet with a tunnelled TCP ACK is 90 bytes
	// (37 + 53); QUIC packets with only an ACK frame (a few ranges) or a
	// PING stay under it.
	rxGateMinPacket = 80
	// rxGateMinDatagram is the smallest datagram counted: a datagram this
	// long makes a packet of at least rxGateMinPacket bytes (37 bytes of
	// QUIC overhead with our 17-byte connection IDs), so every datagram
	// counted came in a packet counted.
	rxGateMinDatagram = rxGateMinPacket - 37
	// rxGateMaxWait bounds one wait. On a busy machine the drainer may
	// not run for over a millisecond, and a wait that runs out loses
	// datagrams after it (docs/PERFORMANCE.md, "receive gate").
	rxGateMaxWait = 5 * time.Millisecond
	// rxGateMinBackoff and rxGateMaxBackoff bound how long the gate stays
	// open after a wait ran out: open, it cannot be held shut by junk that
	// looks like datagrams, but a lone timeout costs the datagrams quic-go
	// drops while it is open, so the first opening is short.
	rxGateMinBackoff = 2 * time.Millisecond
	rxGateMaxBackoff = time.Second
)

// newRxGate returns a gate that counts its waits into c.
func newRxGate(c *Counters) *RxGate {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &RxGate{wake: make(chan struct{}, 1), timer: t, maxWait: rxGateMaxWait, waits: &c.RxHeldBack, timeouts: &c.RxGateTimeouts}
}

// wait blocks the reader while too many datagrams are outstanding.
func (g *RxGate) wait() {
	if g == nil || g.pending.Load() <= rxGateLimit {
		return
	}
	if time.Now().Before(g.openTill) {
		g.pending.Store(0)
		return
	}
	g.waits.Add(1)
	g.timer.Reset(g.maxWait)
	defer g.timer.Stop()
	for g.pending.Load() > rxGateLimit/2 {
		select {
		case <-g.wake:
		case <-g.timer.C:
			g.timeouts.Add(1)
			g.pending.Store(0)
			now := time.Now()
			if g.backoff == 0 || now.Sub(g.openTill) > rxGateMaxBackoff {
				g.backoff = rxGateMinBackoff // a lone timeout
			} else {
				g.backoff = min(2*g.backoff, rxGateMaxBackoff)
			}
			g.openTill = now.Add(g.backoff)
			return
		}
	}
}

// handed counts the packets a read gives quic-go.
func (g *RxGate) handed(ms []ipv4.Message) {
	if g == nil {
		return
	}
	var k int64
	for i := range ms {
		// The top bit clear: a short header (1-RTT packet).
		if ms[i].N >= rxGateMinPacket && ms[i].Buffers[0][0]&0x80 == 0 {
			k++
		}
	}
	if k > 0 {
		g.pending.Add(k)
	}
}

// Done counts a datagram of n bytes taken out of quic-go, waking the
// reader when the count falls to half the limit. A nil gate (a socket
// that is not a Conn) does nothing. It does not allocate.
func (g *RxGate) Done(n int) {
	if g == nil || n < rxGateMinDatagram {
		return
	}
	switch p := g.pending.Add(-1); {
	case p == rxGateLimit/2:
		select {
		case g.wake <- struct{}{}:
		default:
		}
	case p < 0: // a peer with shorter headers: its packets went uncounted
		g.pending.CompareAndSwap(p, 0)
	}
}
