package quictun

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
)

// TestKick kicks one of two clients: its session is closed with
// CloseKicked, the server logs it, the client redials and gets a new
// session whose packets flow, and the other client's session is the same
// one as before. Kicking an identity without a session is a
// *NoSessionError.
func TestKick(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	startClient(t, s, "client2", "ca", ClientConfig{}, true)
	old1, old2 := s.session("client1"), s.session("client2")

	var nse *NoSessionError
	if err := s.srv.Kick("nobody"); !errors.As(err, &nse) || nse.Name != "nobody" {
		t.Fatalf("Kick(nobody) = %v, want a NoSessionError for nobody", err)
	}
	if err := s.srv.Kick("client1"); err != nil {
		t.Fatalf("Kick(client1) = %v", err)
	}
	select {
	case <-old1.conn.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client1's connection still open 5 s after the kick")
	}
	if cause := closeReason(context.Cause(old1.conn.Context())); cause != kickReason {
		t.Errorf("client1's connection ended with %q, want %q", cause, kickReason)
	}
	if got := logs.String(); !strings.Contains(got, `msg="client kicked: closing its session" peer=client1`) {
		t.Errorf("the server did not log the kick:\n%s", got)
	}

	// client1 comes back with a new session that carries packets.
	deadline := time.Now().Add(10 * time.Second)
	var now1 *session
	for time.Now().Before(deadline) {
		if now1 = s.session("client1"); now1 != nil && now1 != old1 && now1.ready.Load() {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if now1 == nil || now1 == old1 || !now1.ready.Load() {
		t.Fatal("client1 did not reconnect within 10 s of the kick")
	}
	if st := c1.cl.Status(); !strings.Contains(st.LastError, "kicked") {
		t.Errorf("client1's last error %q does not say it was kicked", st.LastError)
	}
	payload := []byte("client1 after the kick")
	c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", payload, true))
	if s.peer.next(5*time.Second, hasPayload(payload)) == nil {
		t.Error("client1's packet did not arrive after it reconnected")
	}
	if s.session("client2") != old2 || old2.conn.Context().Err() != nil {
		t.Error("kicking client1 touched client2's session")
	}
}
