package quictun

import (
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"
)

// rxGate holds back socket reads while quic-go's DATAGRAM receive queue
// may be close to full.
//
// quic-go keeps at most 128 received datagrams per connection and drops
// the rest; the goroutine that drains them (receiveDatagrams) is woken
// onto the processor of quic-go's connection loop, so while that loop has
// packets to work through, the drainer often waits — and a burst of more
// than 128 datagrams is lost, which TCP inside the tunnel takes for
// congestion. The gate counts packets handed to quic-go and datagrams
// taken out (see below for which); when more than rxGateLimit are between
// the two, the next socket read waits until the drainer has caught up to
// half of that. Meanwhile the packets wait in the kernel's socket buffer
// (8 MiB), quic-go's loop runs dry and parks, and the drainer gets the
// processor: loss becomes a short delay.
//
// Packets under rxGateMinPacket bytes do not count, so that QUIC's
// ACK-only and PING packets (which carry no datagram) do not; neither do
// datagrams under rxGateMinDatagram, which could have come in such a
// packet. The count is an estimate: a packet may carry several small
// datagrams (the count then goes below zero, and stops at zero: the gate
// then holds nothing back), or none (an ACK with many ranges, a path
// probe: the count drifts up). So a wait ends after rxGateMaxWait whatever
// happens, and the count starts afresh.
//
// One goroutine reads (quic-go's); any number may call done.
type rxGate struct {
	pending  atomic.Int64 // counted packets handed out − counted datagrams taken
	wake     chan struct{}
	timer    *time.Timer // the reader's, reused
	maxWait  time.Duration
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
	// not run for over a millisecond; with 1 ms about 5 % of waits ran out
	// in a bulk transfer (and lost datagrams after), with 5 ms 0.1 %.
	rxGateMaxWait = 5 * time.Millisecond
)

// newRxGate returns a gate that counts its waits into c.
func newRxGate(c *Counters) *rxGate {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &rxGate{wake: make(chan struct{}, 1), timer: t, maxWait: rxGateMaxWait, waits: &c.RxHeldBack, timeouts: &c.RxGateTimeouts}
}

// wait blocks the reader while too many datagrams are outstanding.
func (g *rxGate) wait() {
	if g == nil || g.pending.Load() <= rxGateLimit {
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
			return
		}
	}
}

// handed counts the packets a read gives quic-go.
func (g *rxGate) handed(ms []ipv4.Message) {
	if g == nil {
		return
	}
	var k int64
	for i := range ms {
		if ms[i].N >= rxGateMinPacket {
			k++
		}
	}
	if k > 0 {
		g.pending.Add(k)
	}
}

// done counts a datagram of n bytes taken out of quic-go, waking the
// reader when the count falls to half the limit.
func (g *rxGate) done(n int) {
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
