package device

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestOpenRejectsBadNames(t *testing.T) {
	long := "qtlong" + strings.Repeat("x", MaxNameLen)
	tests := []struct {
		name    string
		kind    Kind
		dev     string
		wantErr []string
	}{
		{name: "too long", kind: TUN, dev: long, wantErr: []string{long, "15"}},
		{name: "empty", kind: TAP, dev: "", wantErr: []string{"empty"}},
		{name: "template", kind: TUN, dev: "qt%d", wantErr: []string{"qt%d"}},
		{name: "bad kind", kind: Kind(9), dev: "qt0", wantErr: []string{"qt0", "Kind(9)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(tt.kind, tt.dev)
			if err == nil {
				d.Close()
				t.Fatalf("Open(%v, %q) succeeded", tt.kind, tt.dev)
			}
			if d != nil {
				t.Errorf("Open returned a non-nil device %v with its error", d)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// Nothing was created under the name the kernel would have truncated to.
	if _, err := netlink.LinkByName(long[:MaxNameLen]); !isLinkNotFound(err) {
		t.Errorf("link %s exists (err %v): the long name reached the kernel", long[:MaxNameLen], err)
	}
}

func TestOpenError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "no tun module",
			err:  syscall.ENOENT,
			want: `open tun "qt0": open /dev/net/tun: no such file or directory: load the tun module (modprobe tun)`,
		},
		{
			name: "no permission",
			err:  os.NewSyscallError("ioctl", syscall.EPERM),
			want: `open tun "qt0": ioctl: operation not permitted: needs root or CAP_NET_ADMIN`,
		},
		{
			name: "busy",
			err:  os.NewSyscallError("ioctl", syscall.EBUSY),
			want: `open tun "qt0": ioctl: device or resource busy: another process holds the device open`,
		},
		{
			name: "other ioctl error",
			err:  os.NewSyscallError("ioctl", syscall.EINVAL),
			want: `open tun "qt0": ioctl: invalid argument`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := openError(TUN, "qt0", tt.err)
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err, tt.want)
			}
			if !errors.Is(err, tt.err) && !errors.Is(err, errors.Unwrap(tt.err)) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}

func TestOpenCreatesAndCloseRemoves(t *testing.T) {
	for _, kind := range []Kind{TUN, TAP} {
		t.Run(kind.String(), func(t *testing.T) {
			inNetns(t)
			name := testName(t, "qtc")
			d, err := Open(kind, name)
			if err != nil {
				t.Fatal(err)
			}
			tt := d.(*TunTap)
			if !tt.Created() || d.Name() != name || d.Kind() != kind || d.BatchSize() < 1 {
				t.Errorf("Created %v Name %q Kind %v BatchSize %d", tt.Created(), d.Name(), d.Kind(), d.BatchSize())
			}
			link, err := netlink.LinkByName(name)
			if err != nil {
				t.Fatalf("device not created: %v", err)
			}
			tl, ok := link.(*netlink.Tuntap)
			if !ok {
				t.Fatalf("link is %T", link)
			}
			wantMode := map[Kind]netlink.TuntapMode{TUN: netlink.TUNTAP_MODE_TUN, TAP: netlink.TUNTAP_MODE_TAP}[kind]
			if tl.Mode != wantMode || tl.Flags&netlink.TUNTAP_NO_PI == 0 || !tl.NonPersist {
				t.Errorf("mode %v flags %v non-persist %v; want mode %v, no_pi, not persistent", tl.Mode, tl.Flags, tl.NonPersist, wantMode)
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			waitGone(t, name)
			if err := d.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestOpenExistingPersists(t *testing.T) {
	for _, kind := range []Kind{TUN, TAP} {
		t.Run(kind.String(), func(t *testing.T) {
			inNetns(t)
			name := testName(t, "qtp")
			mode := netlink.TUNTAP_MODE_TUN
			if kind == TAP {
				mode = netlink.TUNTAP_MODE_TAP
			}
			if err := netlink.LinkAdd(&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: name}, Mode: mode, Flags: netlink.TUNTAP_NO_PI}); err != nil {
				t.Fatalf("create persistent %s: %v", kind, err)
			}
			for round := range 2 {
				d := mustOpen(t, kind, name)
				if d.Created() {
					t.Errorf("round %d: Created() = true for a pre-existing device", round)
				}
				if err := d.Close(); err != nil {
					t.Fatal(err)
				}
				link, err := netlink.LinkByName(name)
				if err != nil {
					t.Fatalf("round %d: device gone after Close: %v", round, err)
				}
				if tl := link.(*netlink.Tuntap); tl.NonPersist {
					t.Errorf("round %d: persist flag cleared", round)
				}
			}
		})
	}
}

func TestOpenWrongType(t *testing.T) {
	inNetns(t)
	tap, tun, veth, br := testName(t, "qtw"), testName(t, "qtw"), testName(t, "qtw"), testName(t, "qtw")
	for _, l := range []netlink.Link{
		&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: tap}, Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI},
		&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: tun}, Mode: netlink.TUNTAP_MODE_TUN, Flags: netlink.TUNTAP_NO_PI},
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth}, PeerName: veth + "p"},
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: br}},
	} {
		if err := netlink.LinkAdd(l); err != nil {
			t.Fatalf("create %s: %v", l.Attrs().Name, err)
		}
	}
	tests := []struct {
		name string
		kind Kind
		dev  string
		want string
	}{
		{name: "tap asked as tun", kind: TUN, dev: tap, want: "already exists as a tap device"},
		{name: "tun asked as tap", kind: TAP, dev: tun, want: "already exists as a tun device"},
		{name: "veth", kind: TUN, dev: veth, want: `of type "veth"`},
		{name: "bridge", kind: TAP, dev: br, want: `of type "bridge"`},
	}
	for _, tt := range tests {
		d, err := Open(tt.kind, tt.dev)
		if err == nil {
			d.Close()
			t.Errorf("%s: Open succeeded", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.dev) {
			t.Errorf("%s: error %q does not name %q and say %q", tt.name, err, tt.dev, tt.want)
		}
		if _, err := netlink.LinkByName(tt.dev); err != nil {
			t.Errorf("%s: %s gone after the refused Open: %v", tt.name, tt.dev, err)
		}
	}
}

func TestOpenBusy(t *testing.T) {
	inNetns(t)
	name := testName(t, "qtb")
	first := mustOpen(t, TUN, name)
	d, err := Open(TUN, name)
	if err == nil {
		d.Close()
		t.Fatal("second Open of a device in use succeeded")
	}
	if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "another process holds") || !strings.Contains(err.Error(), name) {
		t.Errorf("error %q: want EBUSY naming %s and saying another process holds it", err, name)
	}
	if _, err := netlink.LinkByName(first.Name()); err != nil {
		t.Errorf("first device gone after the refused Open: %v", err)
	}
}

func TestOpenWithoutCapability(t *testing.T) {
	requireRoot(t)
	// Credentials are per thread in Linux: drop CAP_NET_ADMIN on a locked
	// thread in a fresh netns; that thread ends with its goroutine.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is discarded
		if _, err := netns.New(); err != nil {
			errc <- err
			return
		}
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		d, err := Open(TUN, "qtnocap")
		if err == nil {
			d.Close()
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("Open without CAP_NET_ADMIN succeeded")
		}
		if !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "needs root or CAP_NET_ADMIN") {
			t.Errorf("error %q: want EPERM saying it needs root or CAP_NET_ADMIN", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Open did not return")
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	for _, kind := range []Kind{TUN, TAP} {
		t.Run(kind.String(), func(t *testing.T) {
			inNetns(t)
			d := mustOpen(t, kind, testName(t, "qtu"))
			errc := make(chan error, 1)
			go func() {
				bufs, sizes := newBufs(4, 2048)
				_, err := d.Read(bufs, sizes, 0)
				errc <- err
			}()
			select {
			case err := <-errc:
				t.Fatalf("Read on a down device returned %v", err)
			case <-time.After(100 * time.Millisecond):
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Errorf("pending Read returned %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock Read")
			}
			bufs, sizes := newBufs(1, 2048)
			if _, err := d.Read(bufs, sizes, 0); !errors.Is(err, ErrClosed) {
				t.Errorf("Read after Close = %v, want ErrClosed", err)
			}
			if n, err := d.Write(bufs, 0); n != 0 || !errors.Is(err, ErrClosed) {
				t.Errorf("Write after Close = %d, %v; want 0, ErrClosed", n, err)
			}
		})
	}
}

// tunNet is the addressing of the TUN tests.
var (
	tunLocal4  = netip.MustParsePrefix("10.77.0.1/24")
	tunPeer4   = netip.MustParseAddr("10.77.0.2")
	tunLocal6  = netip.MustParsePrefix("fd77::1/64")
	tunPeer6   = netip.MustParseAddr("fd77::2")
	tunRoute4  = netip.MustParsePrefix("10.78.0.0/16")
	tunRoute6  = netip.MustParsePrefix("fd78::/64")
	tunRouted4 = netip.MustParseAddr("10.78.3.4")
	tunRouted6 = netip.MustParseAddr("fd78::9")
)

// openConfiguredTUN opens a TUN in the current (test) netns and configures
// it with the tunNet addressing and MTU 1400.
func openConfiguredTUN(tb testing.TB) (*TunTap, func() error) {
	tb.Helper()
	d := mustOpen(tb, TUN, testName(tb, "qtt"))
	undo, err := Configure(d.Name(), LinkConfig{
		Addrs:  []netip.Prefix{tunLocal4, tunLocal6},
		MTU:    1400,
		Routes: []netip.Prefix{tunRoute4, tunRoute6},
	})
	if err != nil {
		tb.Fatalf("Configure: %v", err)
	}
	return d, undo
}

func TestTUNTraffic(t *testing.T) {
	inNetns(t)
	d, undo := openConfiguredTUN(t)

	// The IPv6 address is usable at once (no DAD): binding to it works.
	c6, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunLocal6.Addr(), 0)))
	if err != nil {
		t.Fatalf("bind to %s right after Configure: %v", tunLocal6.Addr(), err)
	}
	defer c6.Close()
	c4, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunLocal4.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	packets := pump(d)

	t.Run("outbound", func(t *testing.T) {
		tests := []struct {
			name    string
			conn    *net.UDPConn
			dst     netip.Addr
			version int
		}{
			{"IPv4 on-link", c4, tunPeer4, 4},
			{"IPv6 on-link", c6, tunPeer6, 6},
			{"IPv4 route", c4, tunRouted4, 4},
			{"IPv6 route", c6, tunRouted6, 6},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				dst := netip.AddrPortFrom(tt.dst, uint16(40000+i))
				if _, err := tt.conn.WriteToUDPAddrPort([]byte("out"), dst); err != nil {
					t.Fatal(err)
				}
				p := waitPacket(t, packets, 5*time.Second, "UDP packet to "+dst.String(), func(p []byte) bool { return isUDPTo(p, dst) })
				ip, _ := parseIP(p)
				if ip.version != tt.version || ip.dst != tt.dst || string(ip.payload[8:]) != "out" {
					t.Errorf("read version %d dst %s payload %q", ip.version, ip.dst, ip.payload[8:])
				}
			})
		}
	})

	t.Run("inbound UDP", func(t *testing.T) {
		local := c4.LocalAddr().(*net.UDPAddr).AddrPort()
		pkt := udp4(netip.AddrPortFrom(tunPeer4, 5555), local, []byte("hello in"))
		if n, err := d.Write([][]byte{append(make([]byte, 32), pkt...)}, 32); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		c4.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 100)
		n, from, err := c4.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("socket did not receive the packet written into the TUN: %v", err)
		}
		if string(buf[:n]) != "hello in" || from != netip.AddrPortFrom(tunPeer4, 5555) {
			t.Errorf("received %q from %s", buf[:n], from)
		}
	})

	t.Run("inbound ICMP echo", func(t *testing.T) {
		req := echo4(tunPeer4, tunLocal4.Addr(), 0x4242, 7, []byte("ping"))
		if n, err := d.Write([][]byte{req}, 0); n != 1 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
		reply := waitPacket(t, packets, 5*time.Second, "echo reply", func(p []byte) bool {
			ip, ok := parseIP(p)
			return ok && ip.proto == protoICMP && ip.dst == tunPeer4 && len(ip.payload) >= 8 && ip.payload[0] == 0 &&
				ip.payload[4] == 0x42 && ip.payload[5] == 0x42
		})
		ip, _ := parseIP(reply)
		if ip.src != tunLocal4.Addr() || string(ip.payload[8:]) != "ping" {
			t.Errorf("echo reply from %s with data %q", ip.src, ip.payload[8:])
		}
	})

	t.Run("write stops at a bad packet", func(t *testing.T) {
		good := udp4(netip.AddrPortFrom(tunPeer4, 5555), c4.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("x"))
		n, err := d.Write([][]byte{good, {0}, good}, 0)
		if n != 1 || err == nil || !strings.Contains(err.Error(), d.Name()) {
			t.Errorf("Write(good, garbage, good) = %d, %v; want 1 and an error naming the device", n, err)
		}
	})

	if err := undo(); err != nil {
		t.Fatalf("undo: %v", err)
	}
	link, err := netlink.LinkByName(d.Name())
	if err != nil {
		t.Fatal(err)
	}
	if link.Attrs().Flags&net.FlagUp != 0 || link.Attrs().MTU != 1500 {
		t.Errorf("after undo: flags %v MTU %d; want down, 1500", link.Attrs().Flags, link.Attrs().MTU)
	}
	addrs, _ := netlink.AddrList(link, netlink.FAMILY_ALL)
	for _, p := range []netip.Prefix{tunLocal4, tunLocal6} {
		if hasAddr(addrs, p) {
			t.Errorf("address %s left after undo", p)
		}
	}
}

func TestTUNShortBuffer(t *testing.T) {
	inNetns(t)
	d, _ := openConfiguredTUN(t)
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(tunLocal4.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	big := netip.AddrPortFrom(tunPeer4, 40100)
	small := netip.AddrPortFrom(tunPeer4, 40101)
	if _, err := c.WriteToUDPAddrPort(make([]byte, 500), big); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort([]byte("small"), small); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := newBufs(1, 200)
	sawShort, sawSmall := false, false
	deadline := time.AfterFunc(5*time.Second, func() { d.Close() })
	defer deadline.Stop()
	for i := 0; i < 50 && !sawSmall; i++ {
		n, err := d.Read(bufs, sizes, 0)
		switch {
		case errors.Is(err, ErrClosed):
			t.Fatal("timed out")
		case err != nil:
			if !errors.Is(err, io.ErrShortBuffer) || sawSmall {
				t.Fatalf("Read error %v", err)
			}
			sawShort = true
		case n == 1 && isUDPTo(bufs[0][:sizes[0]], small):
			sawSmall = true
		}
	}
	if !sawShort || !sawSmall {
		t.Errorf("saw short-buffer error %v, small packet after it %v", sawShort, sawSmall)
	}
}

// echoLoop writes ICMP echo requests into a TUN configured by
// openConfiguredTUN and reads the replies, with the given headroom.
type echoLoop struct {
	d     *TunTap
	off   int
	out   [][]byte
	bufs  [][]byte
	sizes []int
}

func newEchoLoop(d *TunTap, off, size int) *echoLoop {
	req := append(make([]byte, off), echo4(tunPeer4, tunLocal4.Addr(), 0x4242, 1, make([]byte, size))...)
	bufs, sizes := newBufs(d.BatchSize(), 1500+off)
	return &echoLoop{d: d, off: off, out: [][]byte{req}, bufs: bufs, sizes: sizes}
}

// roundTrip writes one request and reads until its reply, past the odd
// unrelated packet (IPv6 router solicitation, MLD report).
func (e *echoLoop) roundTrip(tb testing.TB) {
	if _, err := e.d.Write(e.out, e.off); err != nil {
		tb.Fatal(err)
	}
	for got, tries := false, 0; !got; tries++ {
		if tries == 10 {
			tb.Fatal("no echo reply among 10 reads")
		}
		n, err := e.d.Read(e.bufs, e.sizes, e.off)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range n {
			p := e.bufs[i][e.off : e.off+e.sizes[i]]
			got = got || len(p) > 20 && p[0] == 0x45 && p[9] == protoICMP && p[20] == 0
		}
	}
}

func TestTUNNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	inNetns(t)
	d, _ := openConfiguredTUN(t)
	e := newEchoLoop(d, 16, 1000)
	watchdog := time.AfterFunc(30*time.Second, func() { d.Close() })
	defer watchdog.Stop()
	if allocs := testing.AllocsPerRun(200, func() { e.roundTrip(t) }); allocs != 0 {
		t.Errorf("Write+Read through a TUN allocates %.1f times per packet, want 0", allocs)
	}
}

func BenchmarkTUNWriteRead(b *testing.B) {
	inNetns(b)
	d, _ := openConfiguredTUN(b)
	e := newEchoLoop(d, 16, 1000)
	// A reply lost for good would block Read: close the device then.
	watchdog := time.AfterFunc(10*time.Second, func() { d.Close() })
	defer watchdog.Stop()
	b.ReportAllocs()
	b.SetBytes(int64(len(e.out[0]) - e.off))
	for b.Loop() {
		e.roundTrip(b)
		watchdog.Reset(10 * time.Second)
	}
}
