package quictun

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
)

const pki = "../testdata/pki"

func serverTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := qcrypto.LoadKeyPair(filepath.Join(pki, "server.crt"), filepath.Join(pki, "server.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := qcrypto.LoadCAPool(filepath.Join(pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return qcrypto.ServerTLSConfig(cert, ca)
}

func clientTLS(t testing.TB, name, caName string) *tls.Config {
	t.Helper()
	cert, err := qcrypto.LoadKeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := qcrypto.LoadCAPool(filepath.Join(pki, caName+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	return qcrypto.ClientTLSConfig(cert, ca, "")
}

// pump reads a device into a channel so tests can wait with a timeout.
type pump struct {
	dev device.Device
	ch  chan []byte
}

func newPump(dev device.Device) *pump {
	p := &pump{dev: dev, ch: make(chan []byte, 256)}
	go func() {
		bufs := [][]byte{make([]byte, 70000)}
		sizes := []int{0}
		for {
			n, err := dev.Read(bufs, sizes, 0)
			if err != nil {
				close(p.ch)
				return
			}
			if n == 1 {
				p.ch <- bytes.Clone(bufs[0][:sizes[0]])
			}
		}
	}()
	return p
}

// next returns the next packet that satisfies match, or nil after timeout.
func (p *pump) next(timeout time.Duration, match func([]byte) bool) []byte {
	deadline := time.After(timeout)
	for {
		select {
		case b, ok := <-p.ch:
			if !ok {
				return nil
			}
			if match == nil || match(b) {
				return b
			}
		case <-deadline:
			return nil
		}
	}
}

func (p *pump) write(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := p.dev.Write([][]byte{pkt}, 0); err != nil {
		t.Fatal(err)
	}
}

// udp4 builds an IPv4/UDP packet (header checksum set; UDP checksum 0).
func udp4(src, dst string, payload []byte, df bool) []byte {
	b := make([]byte, 28+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	if df {
		b[6] = 0x40
	}
	b[8] = 64
	b[9] = 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	setIPv4Checksum(b)
	binary.BigEndian.PutUint16(b[20:], 1000)
	binary.BigEndian.PutUint16(b[22:], 2000)
	binary.BigEndian.PutUint16(b[24:], uint16(8+len(payload)))
	copy(b[28:], payload)
	return b
}

// setIPv4Checksum sets the header checksum of the IPv4 packet b (with a
// 20-byte header).
func setIPv4Checksum(b []byte) {
	b[10], b[11] = 0, 0
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
}

func hasPayload(p []byte) func([]byte) bool {
	return func(b []byte) bool { return bytes.Contains(b, p) }
}

type testServer struct {
	srv  *Server
	peer *pump
}

func startServer(t *testing.T, mode device.Kind, cfg ServerConfig) *testServer {
	t.Helper()
	cfg.Mode = mode
	if cfg.TLS == nil {
		cfg.TLS = serverTLS(t)
	}
	cfg.Listen = "127.0.0.1:0"
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev, peer := device.NewPipe(mode, "srv", 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, dev) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		dev.Close()
		srv.Wait()
	})
	return &testServer{srv: srv, peer: newPump(peer)}
}

type testClient struct {
	cl   *Client
	peer *pump
	a    Assignment
	err  chan error
}

// startClient runs a client; with wantUp it waits for the tunnel.
func startClient(t *testing.T, s *testServer, name, caName string, cfg ClientConfig, wantUp bool) *testClient {
	t.Helper()
	tc := &testClient{err: make(chan error, 1)}
	var once sync.Once
	setup := make(chan struct{})
	var dev, peer device.Device
	if cfg.Server == "" {
		cfg.Server = s.srv.Addr()
	}
	if cfg.TLS == nil {
		cfg.TLS = clientTLS(t, name, caName)
	}
	cfg.SetupDevice = func(a Assignment) (device.Device, error) {
		dev, peer = device.NewPipe(a.Mode, name, 256)
		tc.a = a
		once.Do(func() { close(setup) })
		return dev, nil
	}
	cl, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tc.err <- cl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if dev != nil {
			dev.Close()
		}
		cl.Wait()
	})
	if !wantUp {
		return tc
	}
	select {
	case <-setup:
	case err := <-tc.err:
		t.Fatalf("client %s: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("client %s: no tunnel after 10s", name)
	}
	tc.peer = newPump(peer)
	// Wait until the server lists the session (it lists ready ones only).
	for i := 0; i < 200; i++ {
		for _, si := range s.srv.Sessions() {
			if si.Name == tc.a.Name {
				return tc
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("client %s: server session not ready", name)
	return nil
}

func (s *testServer) session(name string) *session {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	return s.srv.sessions[name]
}

func TestTunnelTUN(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
	})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	c2 := startClient(t, s, "client2", "ca", ClientConfig{MTU: 1300}, true)

	t.Run("assignment", func(t *testing.T) {
		want := []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24"), netip.MustParsePrefix("fd77::11/64")}
		if len(c1.a.Addresses) != 2 || c1.a.Addresses[0] != want[0] || c1.a.Addresses[1] != want[1] {
			t.Errorf("client1 addresses = %v, want %v", c1.a.Addresses, want)
		}
		if c1.a.Mode != device.TUN || c1.a.MTU != TUNMTU(DefaultPacketSize) {
			t.Errorf("client1 mode/mtu = %v/%d", c1.a.Mode, c1.a.MTU)
		}
		if c2.a.MTU != 1300 {
			t.Errorf("client2 MTU = %d, want 1300 (its --mtu)", c2.a.MTU)
		}
	})
	t.Run("client to server", func(t *testing.T) {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("c1->srv"), true))
		if s.peer.next(5*time.Second, hasPayload([]byte("c1->srv"))) == nil {
			t.Fatal("packet from client1 did not reach the server's device")
		}
	})
	t.Run("server to client", func(t *testing.T) {
		s.peer.write(t, udp4("10.77.0.1", "10.77.0.11", []byte("srv->c1"), true))
		if c1.peer.next(5*time.Second, hasPayload([]byte("srv->c1"))) == nil {
			t.Fatal("packet from the server did not reach client1's device")
		}
	})
	t.Run("client to client", func(t *testing.T) {
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.12", []byte("c1->c2"), true))
		if c2.peer.next(5*time.Second, hasPayload([]byte("c1->c2"))) == nil {
			t.Fatal("packet from client1 did not reach client2 through the hub")
		}
	})
	t.Run("spoofed source dropped", func(t *testing.T) {
		before := s.session("client1").Dropped(DropSpoofed)
		c1.peer.write(t, udp4("10.77.0.99", "10.77.0.1", []byte("spoof"), true))
		c1.peer.write(t, udp4("10.77.0.12", "10.77.0.1", []byte("spoof"), true))
		if s.peer.next(500*time.Millisecond, hasPayload([]byte("spoof"))) != nil {
			t.Fatal("a packet with a spoofed source reached the server's device")
		}
		if got := s.session("client1").Dropped(DropSpoofed) - before; got != 2 {
			t.Errorf("DropSpoofed grew by %d, want 2", got)
		}
		// The good path still works.
		c1.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("still-ok"), true))
		if s.peer.next(5*time.Second, hasPayload([]byte("still-ok"))) == nil {
			t.Fatal("client1 was cut off after the spoofed packet")
		}
	})
	t.Run("network routed behind a client", func(t *testing.T) {
		// client1's certificate routes 192.168.50.0/24 behind it.
		c1.peer.write(t, udp4("192.168.50.7", "10.77.0.1", []byte("from-behind-c1"), true))
		if s.peer.next(5*time.Second, hasPayload([]byte("from-behind-c1"))) == nil {
			t.Fatal("a packet from client1's routed network was not accepted")
		}
		s.peer.write(t, udp4("10.77.0.1", "192.168.50.7", []byte("to-behind-c1"), true))
		if c1.peer.next(5*time.Second, hasPayload([]byte("to-behind-c1"))) == nil {
			t.Fatal("a packet to client1's routed network did not reach client1")
		}
		c2.peer.write(t, udp4("192.168.50.8", "10.77.0.1", []byte("c2-claims-c1-net"), true))
		if s.peer.next(300*time.Millisecond, hasPayload([]byte("c2-claims-c1-net"))) != nil {
			t.Fatal("client2 sent from client1's routed network and got through")
		}
	})
	t.Run("too big answered with ICMP", func(t *testing.T) {
		big := udp4("10.77.0.1", "10.77.0.12", make([]byte, 1372), true) // 1400 bytes, DF, client2 takes 1300
		s.peer.write(t, big)
		icmp := s.peer.next(5*time.Second, func(b []byte) bool { return len(b) > 20 && b[9] == 1 })
		if icmp == nil {
			t.Fatal("no ICMP answer for a DF packet larger than client2's MTU")
		}
		if icmp[20] != 3 || icmp[21] != 4 || binary.BigEndian.Uint16(icmp[26:]) != 1300 {
			t.Errorf("ICMP type %d code %d mtu %d, want 3/4/1300", icmp[20], icmp[21], binary.BigEndian.Uint16(icmp[26:]))
		}
		if got := netip.AddrFrom4([4]byte(icmp[16:20])); got.String() != "10.77.0.1" {
			t.Errorf("ICMP sent to %s, want the sender 10.77.0.1", got)
		}
	})
	t.Run("large packet without DF is split", func(t *testing.T) {
		payload := bytes.Repeat([]byte("x"), 1372)
		copy(payload, "nodf-big")
		s.peer.write(t, udp4("10.77.0.1", "10.77.0.12", payload, false))
		got := c2.peer.next(5*time.Second, hasPayload([]byte("nodf-big")))
		if len(got) != 1400 {
			t.Fatalf("client2 got %d bytes, want the whole 1400-byte packet", len(got))
		}
	})
}

func TestTunnelPoolStable(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
	})
	pool := netip.MustParsePrefix("10.77.0.128/25")
	var first netip.Prefix
	for i := 0; i < 2; i++ {
		c := startClient(t, s, "nopool", "ca", ClientConfig{}, true)
		if len(c.a.Addresses) != 1 || !pool.Contains(c.a.Addresses[0].Addr()) || c.a.Addresses[0].Bits() != 24 {
			t.Fatalf("pool client got %v, want one address in %s with the server's /24", c.a.Addresses, pool)
		}
		if i == 0 {
			first = c.a.Addresses[0]
			c.peer.write(t, udp4(first.Addr().String(), "10.77.0.1", []byte("from-pool"), true))
			if s.peer.next(5*time.Second, hasPayload([]byte("from-pool"))) == nil {
				t.Fatal("packet from the pool address did not arrive")
			}
		} else if c.a.Addresses[0] != first {
			t.Errorf("second connection got %v, first had %v", c.a.Addresses[0], first)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestTunnelRefusals(t *testing.T) {
	var logs syncBuffer
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	tests := []struct {
		name, cert, ca string
		cfg            ClientConfig
		want           string
		logged         string // what the server logs about it ("": nothing, the client refused the server)
	}{
		{"client of another CA", "other-client", "ca", ClientConfig{}, "wants certificates from CA", `client refused" remote=127.0.0.1:`},
		{"client trusting another CA", "client1", "other-ca", ClientConfig{}, "not signed by our CA", ""},
		{"mode mismatch", "client1", "ca", ClientConfig{Mode: device.TAP}, "tun mode", `client refused" peer=client1 remote=127.0.0.1:`},
		{"no address and no pool", "nopool", "ca", ClientConfig{}, "no tunnel address", `client refused" peer=nopool remote=127.0.0.1:`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(logs.String())
			c := startClient(t, s, tt.cert, tt.ca, tt.cfg, false)
			select {
			case err := <-c.err:
				var pe *PermanentError
				if !errors.As(err, &pe) {
					t.Fatalf("Run = %v, want a PermanentError", err)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("error %q does not mention %q", err, tt.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("client did not give up within 10s")
			}
			if tt.logged == "" {
				return
			}
			for i := 0; i < 100 && !strings.Contains(logs.String()[before:], tt.logged); i++ {
				time.Sleep(20 * time.Millisecond)
			}
			if got := logs.String()[before:]; !strings.Contains(got, tt.logged) {
				t.Errorf("the server logged %q, want a line with %q", got, tt.logged)
			}
		})
	}
}

func TestTunnelTAP(t *testing.T) {
	s := startServer(t, device.TAP, ServerConfig{})
	c1 := startClient(t, s, "client1", "ca", ClientConfig{Mode: device.TAP}, true)
	c2 := startClient(t, s, "client2", "ca", ClientConfig{}, true)
	if c1.a.MTU != TAPMTU {
		t.Errorf("TAP MTU = %d, want %d", c1.a.MTU, TAPMTU)
	}
	macA := []byte{0x02, 0, 0, 0, 0, 0xa}
	macB := []byte{0x02, 0, 0, 0, 0, 0xb}
	macL := []byte{0x02, 0, 0, 0, 0, 0xc}
	frame := func(dst, src []byte, tag string, size int) []byte {
		f := make([]byte, size)
		copy(f, dst)
		copy(f[6:], src)
		f[12], f[13] = 0x88, 0xb5 // local experimental ethertype
		copy(f[14:], tag)
		return f
	}
	bcast := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	// A broadcast from client1 reaches the server's device and client2.
	c1.peer.write(t, frame(bcast, macA, "bcast-from-a", 60))
	if s.peer.next(5*time.Second, hasPayload([]byte("bcast-from-a"))) == nil {
		t.Fatal("broadcast from client1 did not reach the server's device")
	}
	if c2.peer.next(5*time.Second, hasPayload([]byte("bcast-from-a"))) == nil {
		t.Fatal("broadcast from client1 did not reach client2")
	}
	// The local LAN answers client1: learned, so only client1 gets it.
	s.peer.write(t, frame(macA, macL, "unicast-l-to-a", 1514))
	if got := c1.peer.next(5*time.Second, hasPayload([]byte("unicast-l-to-a"))); len(got) != 1514 {
		t.Fatalf("full-size frame to client1: got %d bytes, want 1514 (split and reassembled)", len(got))
	}
	if c2.peer.next(300*time.Millisecond, hasPayload([]byte("unicast-l-to-a"))) != nil {
		t.Error("a learned unicast frame was flooded to client2")
	}
	// client2 → client1 through the hub, full size.
	c2.peer.write(t, frame(macA, macB, "b-to-a", 1518))
	if got := c1.peer.next(5*time.Second, hasPayload([]byte("b-to-a"))); len(got) != 1518 {
		t.Fatalf("client2→client1 frame: got %d bytes, want 1518", len(got))
	}
	if s.session("client1").Fragmented.Load() == 0 {
		t.Error("no fragmentation counted for full-size frames")
	}
}

// TestServerNoLeak connects and disconnects clients repeatedly: the server
// keeps no session and no goroutine of theirs.
func TestServerNoLeak(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	// Warm up once, so lazily started goroutines (quic-go's) are counted.
	warm := startClient(t, s, "client2", "ca", ClientConfig{}, true)
	_ = warm
	baseline := runtime.NumGoroutine()
	for i := 0; i < 5; i++ {
		tc := &testClient{err: make(chan error, 1)}
		var dev device.Device
		up := make(chan struct{})
		cl, err := NewClient(ClientConfig{
			Server: s.srv.Addr(), TLS: clientTLS(t, "client1", "ca"),
			SetupDevice: func(a Assignment) (device.Device, error) {
				dev, _ = device.NewPipe(a.Mode, "leak", 16)
				close(up)
				return dev, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() { tc.err <- cl.Run(ctx) }()
		select {
		case <-up:
		case err := <-tc.err:
			t.Fatalf("round %d: %v", i, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: no tunnel", i)
		}
		cancel()
		if err := <-tc.err; err != nil {
			t.Fatalf("round %d: Run after cancel = %v", i, err)
		}
		dev.Close()
		cl.Wait()
	}
	var n int
	for i := 0; i < 100; i++ {
		if s.session("client1") == nil {
			n = runtime.NumGoroutine()
			if n <= baseline+2 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	t.Fatalf("after 5 connect/disconnect rounds: %d goroutines, baseline %d, session %v\n%s",
		n, baseline, s.session("client1") != nil, buf[:runtime.Stack(buf, true)])
}

// udp6 builds an IPv6/UDP packet.
func udp6(src, dst string, payload []byte) []byte {
	b := make([]byte, 48+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	b[6], b[7] = 17, 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	binary.BigEndian.PutUint16(b[44:], uint16(8+len(payload)))
	copy(b[48:], payload)
	return b
}

// TestTunnelSmallPacketSizeIPv6: at a packet size whose datagrams carry
// less than 1280 bytes, the device MTU is raised to 1280 so IPv6 keeps
// working; IPv6 packets that do not fit a datagram are split, IPv4 packets
// with DF are answered with the datagram's real limit.
func TestTunnelSmallPacketSizeIPv6(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{PacketSize: 1280,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	if s.srv.MTU() != MinIPv6MTU {
		t.Errorf("server MTU = %d, want %d", s.srv.MTU(), MinIPv6MTU)
	}
	c := startClient(t, s, "client1", "ca", ClientConfig{PacketSize: 1280}, true)
	if c.a.MTU != MinIPv6MTU {
		t.Errorf("client MTU = %d, want %d", c.a.MTU, MinIPv6MTU)
	}
	payload := bytes.Repeat([]byte("6"), 1280-48)
	copy(payload, "v6-full")
	c.peer.write(t, udp6("fd77::11", "fd77::1", payload))
	if got := s.peer.next(5*time.Second, hasPayload([]byte("v6-full"))); len(got) != 1280 {
		t.Fatalf("1280-byte IPv6 packet: server got %d bytes, want 1280 (split and reassembled)", len(got))
	}
	s.peer.write(t, udp6("fd77::1", "fd77::11", payload))
	if got := c.peer.next(5*time.Second, hasPayload([]byte("v6-full"))); len(got) != 1280 {
		t.Fatalf("1280-byte IPv6 packet: client got %d bytes, want 1280", len(got))
	}
	limit := TUNMTU(1280)
	c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", make([]byte, 1280-28), true))
	icmp := c.peer.next(5*time.Second, func(b []byte) bool { return len(b) > 20 && b[0]>>4 == 4 && b[9] == 1 })
	if icmp == nil || binary.BigEndian.Uint16(icmp[26:]) != uint16(limit) {
		t.Fatalf("IPv4 DF packet over the datagram limit: want ICMP frag needed with mtu %d, got %x", limit, icmp)
	}
}

// TestServerCloseBeforeServe: a server that never served (its device
// could not be set up) releases its port.
func TestServerCloseBeforeServe(t *testing.T) {
	srv, err := NewServer(ServerConfig{Mode: device.TUN, TLS: serverTLS(t), Listen: "127.0.0.1:0",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := NewServer(ServerConfig{Mode: device.TUN, TLS: serverTLS(t), Listen: addr,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("port %s not released by Close: %v", addr, err)
	}
	again.Close()
}

// TestHubSlowClientDoesNotStallOthers: a client whose device is never read
// (its side of the tunnel backs up) costs the server only drops on that
// client's queue; another client keeps getting every packet.
func TestHubSlowClientDoesNotStallOthers(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{QueueLen: 64,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	// Nothing reads client1's pump: once its 256 slots and the pipe's 256
	// are full, client1's device writes block and its side backs up.
	startClient(t, s, "client1", "ca", ClientConfig{}, true)
	fast := startClient(t, s, "client2", "ca", ClientConfig{}, true)

	const n, burst = 3000, 100
	for i := 0; i < n; i++ {
		s.peer.write(t, udp4("10.77.0.1", "10.77.0.11", make([]byte, 1000), false))
	}
	for i := 0; i < 50; i++ {
		s.peer.write(t, udp4("10.77.0.1", "10.77.0.12", []byte(fmt.Sprintf("fast-%03d", i)), false))
	}
	got := 0
	deadline := time.After(10 * time.Second)
	for got < 50 {
		select {
		case b, ok := <-fast.peer.ch:
			if !ok {
				t.Fatal("client2's device closed")
			}
			if bytes.Contains(b, []byte("fast-")) {
				got++
			}
		case <-deadline:
			t.Fatalf("client2 got %d of 50 packets while client1 was stuck", got)
		}
	}
	t.Logf("server-side drops for the stuck client1: queue full %d, send errors %d (of %d)",
		s.session("client1").Dropped(DropQueueFull), s.session("client1").Dropped(DropSendError), n)
}

// TestSessionsChanged: the server reports its number of clients as they
// come and go (listen uses it to keep one Go processor per client).
func TestSessionsChanged(t *testing.T) {
	var mu sync.Mutex
	var last int
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
		SessionsChanged: func(n int) {
			mu.Lock()
			last = n
			mu.Unlock()
		},
	})
	waitCount := func(t *testing.T, want int) {
		t.Helper()
		for i := 0; i < 500 && count() != want; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if got := count(); got != want {
			t.Fatalf("SessionsChanged last reported %d clients, want %d", got, want)
		}
	}
	startClient(t, s, "client1", "ca", ClientConfig{}, true)
	waitCount(t, 1)
	t.Run("second client", func(t *testing.T) {
		startClient(t, s, "client2", "ca", ClientConfig{}, true)
		waitCount(t, 2)
	}) // its cleanup stops client2
	waitCount(t, 1)
}

// TestTunnelPayloadsIntact sends thousands of distinct full-size packets
// both ways at once and checks every one that arrives byte for byte. quic-go
// (third_party/quic-go) reuses datagram buffers, on send once a frame is in
// a packet and on receive once quictun releases it: a buffer reused too
// early shows up here as a packet with another packet's bytes.
func TestTunnelPayloadsIntact(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25")},
	})
	c := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	const n, burst = 3000, 100
	size := c.a.MTU - 28 // UDP payload of a full-MTU packet
	// packet returns the seq'th packet from src to dst: its payload starts
	// with the sequence number and a marker, and the rest depends on both.
	packet := func(src, dst string, seq int) []byte {
		p := make([]byte, size)
		binary.BigEndian.PutUint32(p, uint32(seq))
		copy(p[4:], "INTG")
		for i := 8; i < len(p); i++ {
			p[i] = byte(seq*131 + i*7)
		}
		return udp4(src, dst, p, true)
	}
	type dir struct {
		name     string
		from, to *pump
		src, dst string
	}
	dirs := []dir{
		{"client to server", c.peer, s.peer, "10.77.0.11", "10.77.0.1"},
		{"server to client", s.peer, c.peer, "10.77.0.1", "10.77.0.11"},
	}
	var wg sync.WaitGroup
	for _, d := range dirs {
		wg.Add(2)
		go func() { // send
			defer wg.Done()
			for seq := range n {
				if _, err := d.from.dev.Write([][]byte{packet(d.src, d.dst, seq)}, 0); err != nil {
					t.Errorf("%s: write %d: %v", d.name, seq, err)
					return
				}
				if seq%burst == burst-1 {
					// Bursts, not one flood: the hub drops what its
					// session queue cannot take, and the test needs
					// most packets to arrive to say anything.
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
		go func() { // receive and compare
			defer wg.Done()
			got, bad := 0, 0
			for got+bad < n {
				b := d.to.next(2*time.Second, nil)
				if b == nil {
					break // the rest was lost (datagrams are unreliable)
				}
				ok := len(b) == 28+size && string(b[32:36]) == "INTG"
				if ok {
					seq := int(binary.BigEndian.Uint32(b[28:]))
					ok = seq < n && bytes.Equal(b, packet(d.src, d.dst, seq))
				}
				if !ok {
					if bad++; bad <= 3 {
						t.Errorf("%s: a packet arrived changed (%d bytes, starting %x)", d.name, len(b), b[:min(len(b), 40)])
					}
					continue
				}
				got++
			}
			if bad > 0 {
				t.Errorf("%s: %d of the packets that arrived were changed", d.name, bad)
			}
			if got < n/2 {
				t.Errorf("%s: only %d of %d packets arrived intact", d.name, got, n)
			}
			t.Logf("%s: %d of %d packets arrived intact", d.name, got, n)
		}()
	}
	wg.Wait()
}
