package quictun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/flood"
)

// lockedBuffer is a log sink for several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFloodKeepsGoodClient throws every kind of junk at a server's port
// for a few seconds (internal/flood: random datagrams of every size,
// QUIC-looking packets with bogus headers, half-open handshakes from 32
// addresses, handshakes with another CA's certificate) while a connected
// client sends a packet every 5 ms through its tunnel. It checks that:
//   - at least 95 % of the client's packets arrive, and its tunnel stays
//     up (no reconnect). Not 100 %: the junk and the tunnel share the
//     server's socket, whose receive queue the kernel empties of
//     whatever arrives when it is full, and a shared machine may not run
//     the server's reader in time;
//   - the handshakes in flight never exceed RetryAbove plus what one
//     source that answers Retries may hold (the bad-certificate dials):
//     the half-open ones from the other addresses get Retries instead;
//   - every kind is counted, and logged at a limited rate;
//   - the goroutines come back down, and no handshake stays in flight.
func TestFloodKeepsGoodClient(t *testing.T) {
	if testing.Short() {
		t.Skip("a flood of several seconds")
	}
	logs := new(lockedBuffer)
	limits := HandshakeLimits{RetryAbove: 16, RetryPerSource: 8, MaxPerSource: 32}
	s := startServer(t, device.TUN, ServerConfig{Handshakes: limits,
		Logger:   slog.New(slog.NewTextHandler(logs, nil)),
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	c := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	sess := s.session("client1")
	target := s.srv.pc.LocalAddr().(*net.UDPAddr)
	runtime.GC()
	baseline := runtime.NumGoroutine()
	rcvbufErrors := udpRcvbufErrors()

	const floodFor = 3 * time.Second
	floods := []flood.Config{
		{Kind: flood.Random, Rate: 2500, Sources: 4},
		{Kind: flood.Bogus, Rate: 2500, Sources: 1},
		{Kind: flood.HalfOpen, Rate: 300, Sources: 32, TLS: clientTLS(t, "client1", "ca")},
		// One source: what it may hold after answering Retries is
		// MaxPerSource.
		{Kind: flood.BadCert, Rate: 40, Sources: 1, TLS: clientTLS(t, "other-client", "ca")},
	}
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	results := make([]flood.Result, len(floods))
	errs := make([]error, len(floods))
	for i, f := range floods {
		f.Target, f.Duration = target, floodFor
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = flood.Run(ctx, f)
		}()
	}
	// The highest number of handshakes in flight, sampled until the
	// floods end.
	floodsDone := make(chan struct{})
	maxInFlight := make(chan int, 1)
	go func() {
		most := 0
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			n, _ := s.srv.guard.inFlight(netip.Addr{})
			most = max(most, n)
			select {
			case <-floodsDone:
				maxInFlight <- most
				return
			case <-tick.C:
			}
		}
	}()
	// The good client's packets, one every 5 ms while the floods run.
	const good = int(floodFor / (5 * time.Millisecond))
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := range good {
			<-tick.C
			c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", fmt.Appendf(nil, "good %05d", i), false))
		}
	}()
	seen := map[string]bool{}
	deadline := time.After(floodFor + 5*time.Second)
collect:
	for len(seen) < good {
		select {
		case b, ok := <-s.peer.ch:
			if !ok {
				break collect
			}
			if i := bytes.Index(b, []byte("good ")); i >= 0 && len(b) >= i+10 {
				seen[string(b[i:i+10])] = true
			}
		case <-deadline:
			break collect
		}
	}
	wg.Wait()
	close(floodsDone)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("flood %s: %v", floods[i].Kind, err)
		}
		t.Logf("flood %s: %d sent, %d errors", floods[i].Kind, results[i].Sent, results[i].Errors)
	}

	t.Run("good client", func(t *testing.T) {
		t.Logf("%d of %d packets arrived", len(seen), good)
		if len(seen) < good*95/100 {
			t.Errorf("%d of %d packets of the good client arrived, want at least 95%%", len(seen), good)
			st := s.srv.Status()
			t.Logf("server drops %v; session drops %v; client drops %v; server socket held back %d (%d timed out); kernel UDP receive-buffer errors +%d",
				st.Drops.NonZero(), DropCounts(sess.Counters.Drops()).NonZero(), DropCounts(c.cl.Counters.Drops()).NonZero(),
				s.srv.Counters.RxHeldBack.Load(), s.srv.Counters.RxGateTimeouts.Load(), udpRcvbufErrors()-rcvbufErrors)
		}
		if st := c.cl.Status(); st.Reconnects != 0 || s.session("client1") != sess {
			t.Errorf("the good client's tunnel did not stay up: %d reconnects, session replaced %v",
				st.Reconnects, s.session("client1") != sess)
		}
	})
	t.Run("handshakes in flight bounded", func(t *testing.T) {
		most := <-maxInFlight
		bound := limits.RetryAbove + limits.MaxPerSource
		t.Logf("at most %d handshakes in flight (bound %d)", most, bound)
		if most > bound {
			t.Errorf("%d handshakes in flight, want at most RetryAbove+MaxPerSource = %d", most, bound)
		}
	})
	t.Run("back down", func(t *testing.T) {
		// Half-open handshakes end at the 5 s handshake timeout.
		var n, inFlight int
		for range 300 {
			n, inFlight = runtime.NumGoroutine(), s.srv.Status().HandshakesInFlight
			if inFlight == 0 && n <= baseline+5 {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		t.Fatalf("15 s after the floods: %d goroutines (baseline %d), %d handshakes in flight\n%s",
			n, baseline, inFlight, buf[:runtime.Stack(buf, true)])
	})
	t.Run("counted", func(t *testing.T) {
		st := s.srv.Status()
		t.Logf("stray %v, handshakes %v", st.Stray, st.Handshakes)
		for _, r := range []StrayReason{StrayNotQUIC, StrayBadHeader, StrayUnknownConnection, StrayUnexpected, StrayVersion} {
			if st.Stray.Get(r) == 0 {
				t.Errorf("no stray datagram counted as %s", r)
			}
		}
		for _, o := range []HandshakeOutcome{HandshakeRetry, HandshakeUnknownAuthority, HandshakeTimeout} {
			if st.Handshakes.Get(o) == 0 {
				t.Errorf("no handshake counted as %s", o)
			}
		}
	})
	t.Run("logged at a limited rate", func(t *testing.T) {
		elapsed := time.Since(started)
		secs := int(elapsed/time.Second) + 1
		out := logs.String()
		for _, tt := range []struct {
			msg  string
			most int
		}{
			{"stray datagram dropped", 3 + secs/5 + 1},
			// The guard's lines share one limiter (5, then 1 a second);
			// the TLS refusals have their own (20, then 10 a second).
			{"asking a client to validate its address", 5 + secs},
			{"client refused", 5 + secs + 20 + 10*secs},
		} {
			n := strings.Count(out, tt.msg)
			if n == 0 || n > tt.most {
				t.Errorf("%q logged %d times in %v, want 1 to %d", tt.msg, n, elapsed, tt.most)
			}
		}
	})
}

// udpRcvbufErrors returns the kernel's count of UDP datagrams dropped for
// a full receive buffer (all sockets; Linux), or 0 where unknown.
func udpRcvbufErrors() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}

// TestClientLogsServerBusy: a client whose address already has
// MaxPerSource handshakes in flight (half-open ones from the same
// address) is refused with CONNECTION_REFUSED; it logs "server busy" (not
// "server unreachable"), redials, and gets in once the half-open
// handshakes have timed out.
func TestClientLogsServerBusy(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for half-open handshakes to time out (5 s)")
	}
	s := startServer(t, device.TUN, ServerConfig{
		Handshakes: HandshakeLimits{RetryAbove: 1000, RetryPerSource: 1000, MaxPerSource: 2},
		Logger:     discardLogger(),
		Networks:   []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	target := s.srv.pc.LocalAddr().(*net.UDPAddr)
	// Half-open handshakes from 127.0.0.1, the address the client dials
	// from, until its two slots are taken.
	res, err := flood.Run(context.Background(), flood.Config{Kind: flood.HalfOpen, Target: target, Rate: 100,
		Duration: 200 * time.Millisecond, From: net.IPv4(127, 0, 0, 1), TLS: clientTLS(t, "client1", "ca")})
	if err != nil {
		t.Fatal(err)
	}
	// Run returned once its dials gave up (2 s); the server holds them
	// until its handshake idle timeout (5 s).
	if _, n := s.srv.guard.inFlight(netip.MustParseAddr("127.0.0.1")); n != 2 {
		t.Fatalf("%d half-open handshakes sent, %d in flight from 127.0.0.1, want 2", res.Sent, n)
	}
	logs := new(lockedBuffer)
	c := startClient(t, s, "client1", "ca", ClientConfig{Logger: slog.New(slog.NewTextHandler(logs, nil))}, true)
	out := logs.String()
	if !strings.Contains(out, "server busy; redialling") || strings.Contains(out, "server unreachable") {
		t.Errorf("client log, want \"server busy\" and no \"server unreachable\":\n%s", out)
	}
	if n := s.srv.Status().Handshakes.Get(HandshakeSourceLimit); n == 0 {
		t.Error("no handshake counted as source_limit")
	}
	if c.cl.Status().DialFailures == 0 {
		t.Error("the client counted no failed dial")
	}
}

// TestAcceptStorm: 400 clients whose handshakes complete at once, from
// 30 addresses, are all accepted: quic-go's accept queue (1024 with our
// patch; with upstream's 32, 35 and 63 of 400 were refused in two of
// three runs on a 2-core machine) refuses none with CONNECTION_REFUSED. Handshakes that a busy machine
// does not finish in time are not refusals; at least 100 must complete,
// so that a queue of 32 could have overflowed.
func TestAcceptStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("400 handshakes")
	}
	// No Retry, which would spread the handshakes out.
	s := startServer(t, device.TUN, ServerConfig{Logger: discardLogger(),
		Handshakes: HandshakeLimits{RetryAbove: 1 << 20, RetryPerSource: 1 << 20, MaxPerSource: 1 << 20},
		Networks:   []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	target := s.srv.pc.LocalAddr().(*net.UDPAddr)
	const n = 400
	res, err := flood.Run(context.Background(), flood.Config{Kind: flood.Storm, Target: target, Rate: n * 10,
		Count: n, Duration: time.Second, Sources: 30, TLS: clientTLS(t, "client1", "ca")})
	if err != nil {
		t.Fatal(err)
	}
	st := s.srv.Status()
	accepted := res.Sent - res.Errors - res.Failed
	t.Logf("%d dials: %d accepted, %d refused, %d failed otherwise; handshakes %v", res.Sent, accepted, res.Errors, res.Failed, st.Handshakes)
	if res.Errors != 0 || st.Handshakes.Get(HandshakeAcceptQueueFull) != 0 {
		t.Errorf("%d of %d dials refused (%d by the accept queue), want none", res.Errors, res.Sent,
			st.Handshakes.Get(HandshakeAcceptQueueFull))
	}
	if accepted < 100 {
		t.Errorf("only %d of %d handshakes completed: the storm did not test the accept queue", accepted, res.Sent)
	}
}
