package quictun

import (
	"errors"
	"log/slog"
	"math/big"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/state"
)

// quietRevocations is a revocation set that never signals a change, so
// that a test can revoke a certificate without the server closing its
// session at once.
type quietRevocations struct{ rev *state.MemoryRevocations }

func (q quietRevocations) IsRevoked(serial *big.Int) bool { return q.rev.IsRevoked(serial) }
func (q quietRevocations) Changed() <-chan struct{}       { return nil }

// TestRevokedClientRefusedOnResumption revokes a connected client's
// certificate without the server noticing, then kicks the client: its
// redial resumes the TLS session (VerifyPeerCertificate is skipped
// then) and must be refused all the same with CloseRevoked, so that the
// client gives up with ErrRevoked; the server logs the refusal of a
// resumed handshake.
func TestRevokedClientRefusedOnResumption(t *testing.T) {
	var logs syncBuffer
	rev := state.NewMemoryRevocations()
	s := startServer(t, device.TUN, ServerConfig{
		Networks:    []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Revocations: quietRevocations{rev},
		Logger:      slog.New(slog.NewTextHandler(&logs, nil)),
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	rev.Revoke(s.session("client1").conn.ConnectionState().TLS.PeerCertificates[0].SerialNumber)
	if err := s.srv.Kick("client1"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c1.err:
		if !errors.Is(err, ErrRevoked) {
			t.Errorf("client1 Run = %v, want ErrRevoked", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client1 still running 10 s after its kick, revoked")
	}
	if got := logs.String(); !strings.Contains(got, `reason="certificate revoked"`) || !strings.Contains(got, "resumed=true") {
		t.Errorf("the server did not log the refusal of client1's resumed handshake:\n%s", got)
	}
	if n := s.srv.stats.handshakes[HandshakeRevoked].Load(); n != 1 {
		t.Errorf("%d handshakes counted as revoked, want 1", n)
	}
}
