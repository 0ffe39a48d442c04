package quictun

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/state"
	"github.com/quictun/quictun/third_party/quic-go"
)

// TestStatusWhileTrafficFlows reads Server.Sessions, Server.Status and
// Client.Status in a loop while packets cross the tunnel (run it with
// -race: make test does), then checks what they report.
func TestStatusWhileTrafficFlows(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	c2 := startClient(t, s, "client2", "ca", ClientConfig{}, true)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	reads := 0
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			for _, si := range s.srv.Sessions() {
				_ = si.Drops.Total() + si.RxBytes
			}
			_ = s.srv.Status()
			_ = c1.cl.Status()
			reads++
			time.Sleep(time.Millisecond)
		}
	}()
	const n = 200
	for i := 0; i < n; i++ {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("c1->srv"), true))
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	got := 0
	for got < n && s.peer.next(5*time.Second, hasPayload([]byte("c1->srv"))) != nil {
		got++
	}
	c1.peer.write(t, udp4("10.77.0.99", "10.77.0.1", []byte("spoof"), true))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && s.session("client1").Dropped(DropSpoofed) == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if got != n {
		t.Fatalf("%d of %d packets arrived", got, n)
	}
	if reads == 0 {
		t.Fatal("the status reader never ran")
	}

	list := s.srv.Sessions()
	if len(list) != 2 || list[0].Name != "client1" || list[1].Name != "client2" {
		t.Fatalf("Sessions() = %+v, want client1 and client2", list)
	}
	si := list[0]
	if len(si.Fingerprint) != 64 || si.NotAfter.Before(time.Now()) {
		t.Errorf("client1 fingerprint %q, expiry %v: want 64 hex digits and a future date", si.Fingerprint, si.NotAfter)
	}
	if want := netip.MustParsePrefix("10.77.0.11/24"); len(si.Addresses) == 0 || si.Addresses[0] != want {
		t.Errorf("client1 addresses %v, want %v first", si.Addresses, want)
	}
	if si.Remote == "" || si.ConnectedAt.IsZero() || si.RTT <= 0 || si.PacketSize != DefaultPacketSize {
		t.Errorf("client1 remote %q, connected %v, RTT %v, packet size %d", si.Remote, si.ConnectedAt, si.RTT, si.PacketSize)
	}
	if si.RxPackets < n || si.RxBytes < n*uint64(len(udp4("10.77.0.11", "10.77.0.1", []byte("c1->srv"), true))) {
		t.Errorf("client1 rx %d packets / %d bytes, want at least %d packets", si.RxPackets, si.RxBytes, n)
	}
	if si.Drops.Get(DropSpoofed) != 1 || si.Drops.NonZero()["spoofed"] != 1 {
		t.Errorf("client1 drops %v, want spoofed 1", si.Drops.NonZero())
	}
	// A copy: changing it changes nothing in the server.
	si.Addresses[0] = netip.MustParsePrefix("10.99.0.1/24")
	if again := s.srv.Sessions()[0]; again.Addresses[0] != netip.MustParsePrefix("10.77.0.11/24") {
		t.Errorf("Sessions() handed out a reference: addresses now %v", again.Addresses)
	}
	if st := s.srv.Status(); st.Sessions != 2 {
		t.Errorf("Status().Sessions = %d, want 2", st.Sessions)
	}

	cs := c1.cl.Status()
	if cs.State != StateUp || cs.Since.IsZero() || cs.Session.Name != "client1" {
		t.Errorf("client1 status %v since %v, name %q; want up, client1", cs.State, cs.Since, cs.Session.Name)
	}
	if len(cs.Session.Fingerprint) != 64 || cs.Session.TxPackets < n || cs.Session.RTT <= 0 || cs.Session.Remote == "" {
		t.Errorf("client1 session: fingerprint %q, tx %d, RTT %v, remote %q", cs.Session.Fingerprint, cs.Session.TxPackets, cs.Session.RTT, cs.Session.Remote)
	}
	_ = c2
}

// TestClientStatusStates follows a client from connecting to up, to
// reconnecting when the server goes away (with the reason), to stopped.
func TestClientStatusStates(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	if st := c1.cl.Status().State; st != StateUp {
		t.Fatalf("state %v after the tunnel came up, want up", st)
	}
	s.session("client1").conn.CloseWithError(CloseNormal, "test closes it")
	deadline := time.Now().Add(5 * time.Second)
	var st ClientStatus
	for time.Now().Before(deadline) {
		if st = c1.cl.Status(); st.State == StateReconnecting || st.LastError != "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if st.LastError == "" {
		t.Errorf("after the server closed the connection: state %v, no last error (%+v)", st.State, st)
	}
}

// TestRevocationClosesSession revokes a connected client's certificate:
// its session is closed at once with CloseRevoked, its client gives up
// with ErrRevoked without redialling, and the other client stays.
func TestRevocationClosesSession(t *testing.T) {
	rev := state.NewMemoryRevocations()
	s := startServer(t, device.TUN, ServerConfig{
		Networks:    []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Revocations: rev,
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	c2 := startClient(t, s, "client2", "ca", ClientConfig{}, true)
	serial := s.session("client1").conn.ConnectionState().TLS.PeerCertificates[0].SerialNumber
	rev.Revoke(serial)
	select {
	case err := <-c1.err:
		if !errors.Is(err, ErrRevoked) {
			t.Errorf("client1 Run = %v, want ErrRevoked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client1 still running 5 s after its certificate was revoked")
	}
	if n := s.srv.stats.handshakes[HandshakeRevoked].Load(); n != 0 {
		t.Errorf("client1 redialled %d× after its session was closed as revoked; it must give up at once", n)
	}
	// The client reads the close before the server's session has ended.
	ended := func() bool { ss := s.session("client1"); return ss == nil || !ss.ready.Load() }
	for deadline := time.Now().Add(2 * time.Second); !ended() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !ended() {
		t.Error("client1's session is still ready 2 s after its client gave up")
	}
	if ss := s.session("client2"); ss == nil || !ss.ready.Load() {
		t.Fatal("client2's session went away with client1's revocation")
	}
	c2.peer.write(t, udp4("10.77.0.12", "10.77.0.1", []byte("c2 still up"), true))
	if s.peer.next(5*time.Second, hasPayload([]byte("c2 still up"))) == nil {
		t.Error("client2's packet did not arrive after client1 was revoked")
	}
}

// TestTransportHook runs a server on a socket it was given and three
// clients that share one quic.Transport (one UDP socket) in this process,
// each with its own certificate and QUIC connection.
func TestTransportHook(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last-registered first: the sockets close after the
	// server and clients that use them have stopped.
	t.Cleanup(func() { pc.Close() })
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
		Conn:     pc,
	})
	if s.srv.Addr() != pc.LocalAddr().String() {
		t.Fatalf("server on %s, want the given socket %s", s.srv.Addr(), pc.LocalAddr())
	}
	cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cpc.Close() })
	tr := &quic.Transport{Conn: cpc, ConnectionIDLength: connIDLen}
	t.Cleanup(func() { tr.Close() })
	var cs []*testClient
	for _, name := range []string{"client1", "client2", "nopool"} {
		cs = append(cs, startClient(t, s, name, "ca", ClientConfig{Transport: tr}, true))
	}
	if n := s.srv.Status().Sessions; n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	for _, c := range cs {
		src := c.a.Addresses[0].Addr().String()
		payload := []byte("via the shared socket from " + c.a.Name)
		c.peer.write(t, udp4(src, "10.77.0.1", payload, true))
		if s.peer.next(5*time.Second, hasPayload(payload)) == nil {
			t.Errorf("%s: packet did not reach the server", c.a.Name)
		}
	}
	for _, si := range s.srv.Sessions() {
		if si.Remote != cpc.LocalAddr().String() {
			t.Errorf("%s came from %s, want the shared socket %s", si.Name, si.Remote, cpc.LocalAddr())
		}
	}
}
