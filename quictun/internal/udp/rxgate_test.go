package udp

import (
	"testing"
	"time"

	"golang.org/x/net/ipv4"
)

// sized returns received messages of the given sizes, all 1-RTT packets
// (short header) except those given as negative sizes (long header).
func sized(sizes ...int) []ipv4.Message {
	ms := make([]ipv4.Message, len(sizes))
	for i, n := range sizes {
		first := byte(0x40) // short header, fixed bit
		if n < 0 {
			n, first = -n, 0xc0 // long header (Initial)
		}
		ms[i].N = n
		ms[i].Buffers = [][]byte{{first}}
	}
	return ms
}

// TestRxGateCounts: packets that may carry a datagram count, ACK-only
// sizes do not, and the count never goes below zero.
func TestRxGateCounts(t *testing.T) {
	var c Counters
	g := newRxGate(&c)
	g.handed(sized(1452, 45, 90, 79, 80, -1200))
	if got := g.pending.Load(); got != 3 {
		t.Fatalf("pending %d after 1-RTT packets of 1452, 90 and 80 bytes, 2 smaller ones and an Initial, want 3", got)
	}
	g.Done(1415)
	g.Done(rxGateMinDatagram - 1) // could have come in an uncounted packet
	if got := g.pending.Load(); got != 2 {
		t.Fatalf("pending %d, want 2", got)
	}
	g.Done(rxGateMinDatagram)
	if got := g.pending.Load(); got != 1 {
		t.Fatalf("pending %d, want 1", got)
	}
	for range 5 {
		g.Done(1415)
	}
	if got := g.pending.Load(); got != 0 {
		t.Errorf("pending %d after more datagrams than packets, want 0", got)
	}
}

// TestRxGateWaitsForDrain: over the limit the reader waits until the
// drainer has brought the count down to half, and not longer.
func TestRxGateWaitsForDrain(t *testing.T) {
	var c Counters
	g := newRxGate(&c)
	g.maxWait = time.Minute // this test is about draining, not the time limit
	full := make([]int, rxGateLimit+10)
	for i := range full {
		full[i] = 1452
	}
	g.handed(sized(full...))
	start := make(chan struct{})
	done := make(chan time.Duration)
	go func() {
		close(start)
		t0 := time.Now()
		g.wait()
		done <- time.Since(t0)
	}()
	<-start
	time.Sleep(100 * time.Microsecond)
	select {
	case <-done:
		t.Fatal("wait returned with the count over the limit")
	default:
	}
	for g.pending.Load() > rxGateLimit/2 {
		g.Done(1415)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return after the drainer caught up")
	}
	if c.RxHeldBack.Load() != 1 || c.RxGateTimeouts.Load() != 0 {
		t.Errorf("held back %d, timeouts %d; want 1, 0", c.RxHeldBack.Load(), c.RxGateTimeouts.Load())
	}
	// Under the limit: no wait.
	g.wait()
	if c.RxHeldBack.Load() != 1 {
		t.Error("waited under the limit")
	}
}

// TestRxGateTimesOut: when the estimate is wrong (packets that carried no
// counted datagram), a wait ends after rxGateMaxWait and the count starts
// afresh.
func TestRxGateTimesOut(t *testing.T) {
	var c Counters
	g := newRxGate(&c)
	full := make([]int, rxGateLimit+1)
	for i := range full {
		full[i] = 1452
	}
	g.handed(sized(full...))
	t0 := time.Now()
	g.wait()
	if d := time.Since(t0); d < rxGateMaxWait {
		t.Errorf("wait returned after %v, before the %v limit", d, rxGateMaxWait)
	}
	if c.RxGateTimeouts.Load() != 1 || g.pending.Load() != 0 {
		t.Errorf("timeouts %d, pending %d; want 1, 0", c.RxGateTimeouts.Load(), g.pending.Load())
	}
	// Right after a timeout the gate stays open: packets that never become
	// datagrams (junk sent to the port) cannot hold reads back again.
	g.handed(sized(full...))
	t0 = time.Now()
	g.wait()
	if d := time.Since(t0); d >= rxGateMaxWait || c.RxHeldBack.Load() != 1 {
		t.Errorf("waited %v (held back %d times) within the backoff after a timeout", d, c.RxHeldBack.Load())
	}
	if g.backoff != rxGateMinBackoff {
		t.Errorf("open for %v after a lone timeout, want %v", g.backoff, rxGateMinBackoff)
	}
	// After the open period it closes again; timeouts that keep coming
	// keep it open longer and longer, up to rxGateMaxBackoff.
	want := rxGateMinBackoff
	for i := 0; i < 10; i++ {
		g.openTill = time.Now().Add(-time.Millisecond) // the open period is over
		g.handed(sized(full...))
		g.wait()
		want = min(2*want, rxGateMaxBackoff)
		if g.backoff != want {
			t.Fatalf("timeout %d in a row: open for %v, want %v", i+2, g.backoff, want)
		}
	}
	if c.RxHeldBack.Load() != 11 || c.RxGateTimeouts.Load() != 11 {
		t.Errorf("held back %d, timeouts %d; want 11, 11", c.RxHeldBack.Load(), c.RxGateTimeouts.Load())
	}
	// A timeout long after the last open period is a lone one again.
	g.openTill = time.Now().Add(-2 * rxGateMaxBackoff)
	g.handed(sized(full...))
	g.wait()
	if g.backoff != rxGateMinBackoff {
		t.Errorf("open for %v after a lone timeout, want %v", g.backoff, rxGateMinBackoff)
	}
}

// TestRxGateNoAlloc: the gate allocates nothing, waits included.
func TestRxGateNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	var c Counters
	g := newRxGate(&c)
	ms := sized(1452, 1452, 60)
	allocs := testing.AllocsPerRun(50, func() {
		for range rxGateLimit {
			g.handed(ms[:1])
		}
		g.handed(ms)
		go func() {
			for range rxGateLimit {
				g.Done(1415)
			}
		}()
		g.wait()
	})
	// The goroutine started per run is the test's own (1 allocation).
	if allocs > 1 {
		t.Errorf("%.1f allocations per round", allocs)
	}
}
