package quictun

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/quictun/quictun/device"
)

// requireE2E skips t unless it runs as root with /dev/net/tun and ip (as
// the end-to-end tests of cmd/quictun do), and under QUICTUN_E2E=1 fails
// it instead, so that a broken environment cannot pass as green. `go test
// -short` skips it.
func requireE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	stop := t.Skipf
	if os.Getenv("QUICTUN_E2E") == "1" {
		stop = t.Fatalf
	}
	if os.Geteuid() != 0 {
		stop("needs root (CAP_NET_ADMIN) for network namespaces and TUN devices")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		stop("needs /dev/net/tun: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		stop("needs ip (Debian package iproute2): %v", err)
	}
}

// nsThread is a goroutine locked to an OS thread that lives in a network
// namespace of its own, with loopback up. Devices opened, links configured,
// sockets made and commands started from it belong to that namespace; the
// file descriptors work from any goroutine. The thread is never unlocked,
// so it ends with the goroutine at cleanup, and the namespace with the
// last thing in it.
type nsThread struct{ fns chan func() }

func newNSThread(t *testing.T) *nsThread {
	t.Helper()
	th := &nsThread{fns: make(chan func())}
	ready := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.New()
		if err == nil {
			ns.Close()
			var lo netlink.Link
			if lo, err = netlink.LinkByName("lo"); err == nil {
				err = netlink.LinkSetUp(lo)
			}
		}
		ready <- err
		if err != nil {
			return
		}
		for f := range th.fns {
			f()
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { close(th.fns) })
	return th
}

// do runs f in the namespace and returns its error.
func (th *nsThread) do(f func() error) error {
	done := make(chan error, 1)
	th.fns <- func() { done <- f() }
	return <-done
}

// ipRoutes returns `ip -o route show dev <dev>` in the namespace.
func (th *nsThread) ipRoutes(t *testing.T, dev string) string {
	t.Helper()
	var out []byte
	err := th.do(func() error {
		var err error
		out, err = exec.Command("ip", "-o", "route", "show", "dev", dev).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("ip route show dev %s: %v\n%s", dev, err, out)
	}
	return string(out)
}

// hasRoute reports whether `ip -o route` output lists prefix.
func hasRoute(out string, p netip.Prefix) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == p.String() {
			return true
		}
	}
	return false
}

// TestE2EPushedRoutes runs a server and a client in this process, each
// with a real TUN device in a network namespace of its own (the QUIC
// connection crosses the test's loopback). While a TCP transfer runs from
// the client's namespace to the server's tunnel address, the server
// pushes another route list: the client's routing table (`ip route`)
// loses the old route and gains the new one, a packet to an address
// behind the new route reaches the server's namespace, and the transfer
// ends intact (same byte count and SHA-256 on both ends) on the same
// QUIC connection.
func TestE2EPushedRoutes(t *testing.T) {
	requireE2E(t)
	oldRoute, newRoute := netip.MustParsePrefix("10.98.0.0/24"), netip.MustParsePrefix("10.99.0.0/24")
	behind := netip.MustParseAddr("10.99.0.1") // on the server namespace's lo
	srvNS, cliNS := newNSThread(t), newNSThread(t)

	s, err := NewServer(ServerConfig{
		Mode: device.TUN, TLS: serverTLS(t), Listen: "127.0.0.1:0",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Routes:   []netip.Prefix{oldRoute},
	})
	if err != nil {
		t.Fatal(err)
	}
	var srvDev device.Device
	err = srvNS.do(func() error {
		var err error
		if srvDev, err = device.Open(device.TUN, "qt0"); err != nil {
			return err
		}
		if _, err = device.Configure("qt0", device.LinkConfig{MTU: s.MTU(),
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}}); err != nil {
			return err
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: behind.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})
	if err != nil {
		s.Close()
		t.Fatalf("server device: %v", err)
	}
	sctx, stopServer := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(sctx, srvDev) }()
	t.Cleanup(func() {
		stopServer()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srvDev.Close()
		s.Wait()
	})

	var cliDev device.Device
	var routes *device.RouteSet
	up := make(chan struct{})
	cl, err := NewClient(ClientConfig{
		Server: s.Addr(), TLS: clientTLS(t, "client1", "ca"),
		SetupDevice: func(a Assignment) (device.Device, error) {
			err := cliNS.do(func() error {
				dev, err := device.Open(a.Mode, "qt0")
				if err != nil {
					return err
				}
				if _, err := device.Configure("qt0", device.LinkConfig{MTU: a.MTU, Addrs: a.Addresses, Routes: a.Routes}); err != nil {
					dev.Close()
					return err
				}
				cliDev, routes = dev, device.NewRouteSet("qt0")
				return nil
			})
			if err != nil {
				return nil, err
			}
			close(up)
			return cliDev, nil
		},
		UpdateRoutes: func(add, remove []netip.Prefix) error {
			return cliNS.do(func() error { return routes.Update(add, remove) })
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stopClient := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cl.Run(cctx) }()
	t.Cleanup(func() {
		stopClient()
		if err := <-ran; err != nil {
			t.Errorf("client Run: %v", err)
		}
		if cliDev != nil {
			cliDev.Close()
		}
		cl.Wait()
	})
	select {
	case <-up:
	case err := <-ran:
		t.Fatalf("client Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no tunnel within 10 s")
	}
	for i := 0; i < 500 && len(s.Sessions()) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	sess := s.Sessions()
	if len(sess) != 1 {
		t.Fatalf("server sessions: %+v, want client1's", sess)
	}
	if out := cliNS.ipRoutes(t, "qt0"); !hasRoute(out, oldRoute) || hasRoute(out, newRoute) {
		t.Fatalf("client routes before the change, want %s and not %s:\n%s", oldRoute, newRoute, out)
	}
	probe := func() error {
		return cliNS.do(func() error {
			c, err := net.Dial("udp4", netip.AddrPortFrom(behind, 9).String())
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write([]byte("via the pushed route"))
			return err
		})
	}
	if err := probe(); !errors.Is(err, syscall.ENETUNREACH) {
		t.Fatalf("a packet to %s before the change: %v, want network unreachable", behind, err)
	}

	// The transfer: client namespace → 10.77.0.1, through the tunnel.
	var ln net.Listener
	if err := srvNS.do(func() error {
		var err error
		ln, err = net.Listen("tcp4", "10.77.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conn net.Conn
	if err := cliNS.do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp4", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	var received atomic.Int64
	recvDone := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvDone <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		buf := make([]byte, 64<<10)
		var r result
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			r.n += int64(n)
			received.Store(r.n)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.err = err
				break
			}
		}
		copy(r.sum[:], h.Sum(nil))
		recvDone <- r
	}()
	stopSending := make(chan struct{})
	sendDone := make(chan result, 1)
	go func() {
		const limit = 2 << 30 // bounds the transfer if the test stalls
		h := sha256.New()
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 64<<10)
		var r result
		_ = conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	send:
		for r.n < limit {
			select {
			case <-stopSending:
				break send
			default:
			}
			for i := 0; i+8 <= len(buf); i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
			n, err := conn.Write(buf)
			h.Write(buf[:n])
			r.n += int64(n)
			if err != nil {
				r.err = err
				break
			}
		}
		if r.err == nil {
			r.err = conn.(*net.TCPConn).CloseWrite()
		}
		copy(r.sum[:], h.Sum(nil))
		sendDone <- r
	}()
	waitReceived := func(n int64, what string) {
		t.Helper()
		for i := 0; i < 2000 && received.Load() < n; i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if got := received.Load(); got < n {
			t.Fatalf("%s: %d bytes received after 20 s, want %d", what, got, n)
		}
	}
	waitReceived(4<<20, "before the change")

	if err := s.SetRoutes([]netip.Prefix{newRoute}); err != nil {
		t.Fatal(err)
	}
	var out string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if out = cliNS.ipRoutes(t, "qt0"); hasRoute(out, newRoute) && !hasRoute(out, oldRoute) {
			break
		}
	}
	if !hasRoute(out, newRoute) || hasRoute(out, oldRoute) {
		t.Fatalf("client routes 5 s after the change, want %s and not %s:\n%s", newRoute, oldRoute, out)
	}
	t.Logf("client routes after the change (%d MB transferred so far):\n%s", received.Load()>>20, out)
	if got := cl.Status().Session.Routes; !slices.Equal(got, []netip.Prefix{newRoute}) {
		t.Errorf("client Status routes = %v, want %v", got, newRoute)
	}

	// The new route carries packets to the server's namespace.
	var udp net.PacketConn
	if err := srvNS.do(func() error {
		var err error
		udp, err = net.ListenPacket("udp4", netip.AddrPortFrom(behind, 9).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	if err := probe(); err != nil {
		t.Fatalf("a packet to %s after the change: %v", behind, err)
	}
	_ = udp.SetReadDeadline(time.Now().Add(5 * time.Second))
	pbuf := make([]byte, 100)
	n, from, err := udp.ReadFrom(pbuf)
	if err != nil || !bytes.Equal(pbuf[:n], []byte("via the pushed route")) {
		t.Fatalf("server namespace got %q from %v (%v), want the probe over the pushed route", pbuf[:n], from, err)
	}

	// Data still flows after the change, then the transfer ends.
	waitReceived(received.Load()+4<<20, "after the change")
	close(stopSending)
	var sent, got result
	select {
	case sent = <-sendDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the sender did not finish within 30 s")
	}
	select {
	case got = <-recvDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver did not finish within 30 s")
	}
	if sent.err != nil || got.err != nil {
		t.Fatalf("transfer errors: sender %v, receiver %v", sent.err, got.err)
	}
	if sent.n != got.n || sent.sum != got.sum {
		t.Fatalf("transfer: sent %d bytes (sha256 %x), received %d (sha256 %x)", sent.n, sent.sum, got.n, got.sum)
	}
	t.Logf("transfer intact: %d MB, sha256 %x", got.n>>20, got.sum[:8])
	after := s.Sessions()
	if len(after) != 1 || !after[0].ConnectedAt.Equal(sess[0].ConnectedAt) {
		t.Errorf("the route change replaced the session: before %v, after %+v", sess[0].ConnectedAt, after)
	}
}
