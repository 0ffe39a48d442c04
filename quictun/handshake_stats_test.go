package quictun

import (
	"context"
	"crypto/x509"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/third_party/quic-go"
)

func TestDurationRecorder(t *testing.T) {
	var r durationRecorder
	for _, d := range []time.Duration{time.Millisecond, 5 * time.Millisecond, 6 * time.Millisecond, time.Second, time.Minute} {
		r.observe(d)
	}
	h := r.snapshot()
	want := map[int]uint64{0: 2, 1: 1, 7: 1, len(handshakeBounds): 1} // ≤5ms, ≤10ms, ≤1s, over 10s
	for i, c := range h.Counts {
		if c != want[i] {
			t.Errorf("bucket %d (≤ %v) = %d, want %d", i, boundOr(h, i), c, want[i])
		}
	}
	if h.Count() != 5 || h.Sum != time.Minute+time.Second+12*time.Millisecond {
		t.Errorf("count %d sum %v, want 5 and 1m1.012s", h.Count(), h.Sum)
	}
	if h.Bounds != handshakeBounds {
		t.Errorf("bounds %v, want %v", h.Bounds, handshakeBounds)
	}
}

func boundOr(h DurationHistogram, i int) any {
	if i < len(h.Bounds) {
		return h.Bounds[i]
	}
	return "+Inf"
}

func TestHandshakeOutcomeNames(t *testing.T) {
	seen := map[string]bool{}
	for _, o := range HandshakeOutcomes() {
		res, why := o.Result(), o.Reason()
		switch {
		case o == HandshakeSuccess && (res != "success" || why != ""):
			t.Errorf("success is %q/%q", res, why)
		case o != HandshakeSuccess && (res != "refused" && res != "failed" && res != "retry" || why == ""):
			t.Errorf("outcome %d is %q/%q", o, res, why)
		}
		if seen[why] {
			t.Errorf("reason %q used twice", why)
		}
		seen[why] = true
	}
}

func TestCertRefusedReasons(t *testing.T) {
	now := time.Now()
	valid := &x509.Certificate{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	for _, tt := range []struct {
		name  string
		certs []*x509.Certificate
		err   error
		want  HandshakeOutcome
	}{
		{"none", nil, errors.New("client sent no certificate"), HandshakeNoCertificate},
		{"expired", []*x509.Certificate{{NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Hour)}},
			x509.CertificateInvalidError{Reason: x509.Expired}, HandshakeCertificateExpired},
		{"not yet valid", []*x509.Certificate{{NotBefore: now.Add(time.Hour), NotAfter: now.Add(2 * time.Hour)}},
			errors.New("not valid before"), HandshakeCertificateExpired},
		{"unknown authority", []*x509.Certificate{valid}, x509.UnknownAuthorityError{}, HandshakeUnknownAuthority},
		{"CA expired", []*x509.Certificate{valid}, &qcrypto.ValidityError{Role: "CA", NotAfter: now.Add(-time.Hour), Now: now},
			HandshakeCertificateExpired},
		{"wrapped unknown authority", []*x509.Certificate{valid},
			errors.Join(errors.New("resumed session"), x509.UnknownAuthorityError{}), HandshakeUnknownAuthority},
		{"wrong usage", []*x509.Certificate{valid}, x509.CertificateInvalidError{Reason: x509.IncompatibleUsage}, HandshakeBadCertificate},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var st serverStats
			st.certRefused(tt.certs, tt.err, now)
			for _, o := range HandshakeOutcomes() {
				if n, w := st.handshakes[o].Load(), map[bool]uint64{true: 1}[o == tt.want]; n != w {
					t.Errorf("%s counted %d, want %d", o, n, w)
				}
			}
		})
	}
}

// TestHandshakeFailuresCounted dials the server with bare QUIC and a good
// certificate: a client that sends garbage instead of a hello is counted
// as failed/protocol, one that hangs up before the control exchange as
// failed/aborted; a real client as success, with its handshake time.
func TestHandshakeFailuresCounted(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	dial := func() *quic.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, s.srv.Addr(), clientTLS(t, "client1", "ca"), &quic.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	waitCount := func(o HandshakeOutcome, n uint64) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for s.srv.Status().Handshakes.Get(o) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s counted %d times, want %d: %v", o, s.srv.Status().Handshakes.Get(o), n, s.srv.Status().Handshakes)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	conn := dial()
	stream, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stream.Write([]byte("\xff\xff\xff\xffnot a hello"))
	stream.Close()
	waitCount(HandshakeProtocol, 1)
	conn.CloseWithError(0, "")

	conn = dial()
	time.Sleep(100 * time.Millisecond) // the server has accepted it and waits for the control stream
	conn.CloseWithError(0, "changed my mind")
	waitCount(HandshakeAborted, 1)

	startClient(t, s, "client1", "ca", ClientConfig{}, true)
	st := s.srv.Status()
	if st.Handshakes.Get(HandshakeSuccess) != 1 || st.HandshakeTimes.Count() != 1 {
		t.Errorf("success %d, handshake times %d, want 1 and 1", st.Handshakes.Get(HandshakeSuccess), st.HandshakeTimes.Count())
	}
	if d := st.HandshakeTimes.Sum; d <= 0 || d > controlTimeout {
		t.Errorf("handshake time %v, want above 0 and below %v", d, controlTimeout)
	}
	var total uint64
	for _, n := range st.Handshakes {
		total += n
	}
	if total != 3 {
		t.Errorf("%d handshakes counted, want 3: %v", total, st.Handshakes)
	}
}

// TestServerTotalsNeverGoDown samples Server.Status while two clients
// with the same identity keep replacing each other's session: the sum
// over all sessions never goes down although sessions come and go.
func TestServerTotalsNeverGoDown(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	a := startClient(t, s, "client1", "ca", ClientConfig{}, true)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	decreases, samples := 0, 0
	go func() {
		defer wg.Done()
		var last Traffic
		for ctx.Err() == nil {
			t := s.srv.Status().Total
			if t.RxPackets < last.RxPackets || t.RxBytes < last.RxBytes || t.Drops.Total() < last.Drops.Total() {
				decreases++
			}
			last = t
			samples++
			time.Sleep(200 * time.Microsecond)
		}
	}()
	for range 20 {
		a.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("from a"), true))
	}
	if got := countArrivals(s.peer, 20, []byte("from a")); got != 20 {
		t.Fatalf("%d of 20 packets arrived", got)
	}
	// A second client with the same certificate replaces a's session; a
	// redials and replaces it back, and so on.
	b := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	end := time.Now().Add(time.Second)
	for time.Now().Before(end) {
		a.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("x"), true))
		b.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("x"), true))
		time.Sleep(10 * time.Millisecond) // the server's pump holds 256 packets unread
	}
	stop()
	wg.Wait()
	if decreases > 0 || samples == 0 {
		t.Errorf("the totals went down %d times in %d samples", decreases, samples)
	}
	if tot := s.srv.Status().Total; tot.RxPackets < 20 {
		t.Errorf("total rx %d packets, want at least the 20 of the first session", tot.RxPackets)
	}
}

// countArrivals returns how many of n packets carrying payload p reads
// within 5 s.
func countArrivals(p *pump, n int, payload []byte) int {
	got := 0
	for got < n && p.next(5*time.Second, hasPayload(payload)) != nil {
		got++
	}
	return got
}
