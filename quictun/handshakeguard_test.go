package quictun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/quictun/quictun/device"

	"github.com/quictun/quictun/third_party/quic-go"
)

func TestSourceOf(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want string
	}{
		{"192.0.2.7:443", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:443", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::"},
		{"[2001:db8:1:2:ffff::1]:9", "2001:db8:1:2::"},
	} {
		t.Run(tt.addr, func(t *testing.T) {
			ua, err := net.ResolveUDPAddr("udp", tt.addr)
			if err != nil {
				t.Fatal(err)
			}
			if got := sourceOf(ua); got != netip.MustParseAddr(tt.want) {
				t.Errorf("sourceOf(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
}

// TestHandshakeGuard drives the guard's two quic-go hooks as quic-go
// calls them: Retry past the total and per-source thresholds, refusal at
// the per-source limit, and the count going down as handshakes end.
func TestHandshakeGuard(t *testing.T) {
	var st serverStats
	g := newHandshakeGuard(HandshakeLimits{RetryAbove: 4, RetryPerSource: 2, MaxPerSource: 3}, &st,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	addr := func(i int) net.Addr { return &net.UDPAddr{IP: net.IPv4(192, 0, 2, byte(i)), Port: 1000 + i} }
	type started struct {
		ctx    context.Context
		cancel context.CancelCauseFunc
	}
	start := func(a net.Addr) (started, error) {
		base, cancel := context.WithCancelCause(context.Background())
		ctx, err := g.connContext(base, &quic.ClientInfo{RemoteAddr: a})
		return started{ctx, cancel}, err
	}
	// Source 1: two go ahead, the third is asked for a Retry (2 in
	// flight), gets in once validated, and the fourth is refused.
	var s1 []started
	for i := range 3 {
		if i == 2 && !g.verifySourceAddress(addr(1)) {
			t.Fatal("a source with 2 handshakes in flight was not asked for a Retry")
		} else if i < 2 && g.verifySourceAddress(addr(1)) {
			t.Fatalf("handshake %d of source 1: Retry with %d in flight", i, i)
		}
		h, err := start(addr(1))
		if err != nil {
			t.Fatalf("handshake %d of source 1: %v", i, err)
		}
		s1 = append(s1, h)
	}
	if _, err := start(addr(1)); !errors.Is(err, errSourceLimit) {
		t.Fatalf("4th handshake of source 1 = %v, want the per-source limit", err)
	}
	// Another source: 3 in flight, under the total's 4.
	if g.verifySourceAddress(addr(2)) {
		t.Fatal("a new source was asked for a Retry with 3 handshakes in flight (threshold 4)")
	}
	h2, err := start(addr(2))
	if err != nil {
		t.Fatal(err)
	}
	if !g.verifySourceAddress(addr(3)) {
		t.Fatal("a new source was not asked for a Retry with 4 handshakes in flight")
	}
	if total, _ := g.inFlight(netip.Addr{}); total != 4 {
		t.Fatalf("in flight = %d, want 4", total)
	}
	// End them: a timeout, a refusal by the accept queue, a TLS failure,
	// and one accepted.
	s1[0].cancel(&quic.HandshakeTimeoutError{})
	s1[1].cancel(&quic.TransportError{ErrorCode: quic.ConnectionRefused})
	s1[2].cancel(&quic.TransportError{ErrorCode: 0x12a, Remote: false}) // bad_certificate: counted by the TLS check
	h2.ctx.Value(handshakeKey{}).(*handshake).stop()
	h2.ctx.Value(handshakeKey{}).(*handshake).end(nil)
	h2.cancel(nil) // the connection closing later changes nothing
	for range 100 {
		if total, _ := g.inFlight(netip.Addr{}); total == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if total, _ := g.inFlight(netip.Addr{}); total != 0 || len(g.bySource) != 0 {
		t.Fatalf("after all ended: %d in flight, %d sources", total, len(g.bySource))
	}
	want := map[HandshakeOutcome]uint64{HandshakeRetry: 2, HandshakeSourceLimit: 1, HandshakeTimeout: 1, HandshakeAcceptQueueFull: 1}
	for _, o := range HandshakeOutcomes() {
		if got := st.handshakes[o].Load(); got != want[o] {
			t.Errorf("%s = %d, want %d", o, got, want[o])
		}
	}
	if g.verifySourceAddress(addr(1)) {
		t.Error("Retry with nothing in flight")
	}
}

// TestServerRetry: with Retry always on, a client still connects (the
// Retry costs it one round trip) and the Retry is counted; the
// handshakes in flight go back to zero.
func TestServerRetry(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{Handshakes: HandshakeLimits{RetryAbove: -1},
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	startClient(t, s, "client1", "ca", ClientConfig{}, true)
	st := s.srv.Status()
	if st.Handshakes.Get(HandshakeRetry) < 1 || st.Handshakes.Get(HandshakeSuccess) != 1 {
		t.Errorf("handshakes %v: want a Retry and one success", st.Handshakes)
	}
	if st.HandshakesInFlight != 0 {
		t.Errorf("%d handshakes in flight after the client is up, want 0", st.HandshakesInFlight)
	}
}

func TestBusyError(t *testing.T) {
	refused := &quic.TransportError{ErrorCode: quic.ConnectionRefused, Remote: true}
	for _, tt := range []struct {
		name string
		err  error
		busy bool
	}{
		{"refused by the server", refused, true},
		{"wrapped", fmt.Errorf("open control stream: %w", refused), true},
		{"refused by us", &quic.TransportError{ErrorCode: quic.ConnectionRefused}, false},
		{"other transport error", &quic.TransportError{ErrorCode: quic.ProtocolViolation, Remote: true}, false},
		{"timeout", &quic.IdleTimeoutError{}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := busyError(tt.err)
			if errors.Is(got, ErrServerBusy) != tt.busy {
				t.Errorf("busyError(%v) = %v, busy want %v", tt.err, got, tt.busy)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("busyError(%v) = %v lost the error", tt.err, got)
			}
			var pe *PermanentError
			if errors.As(classifyDialError(tt.err, "srv", nil), &pe) {
				t.Errorf("classifyDialError(%v) is permanent: a busy server is redialled", tt.err)
			}
		})
	}
}
