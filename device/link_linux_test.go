package device

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// linkState is what the link tests compare before and after.
type linkState struct {
	up     bool
	mtu    int
	mac    string
	master int
	addrs  map[netip.Prefix]int // prefix → IFA flags
	routes map[netip.Prefix]netlink.Route
	noIPv6 string // disable_ipv6
}

func stateOf(tb testing.TB, name string) linkState {
	tb.Helper()
	link, err := netlink.LinkByName(name)
	if err != nil {
		tb.Fatalf("look up %s: %v", name, err)
	}
	a := link.Attrs()
	s := linkState{
		up:     a.Flags&net.FlagUp != 0,
		mtu:    a.MTU,
		mac:    a.HardwareAddr.String(),
		master: a.MasterIndex,
		addrs:  map[netip.Prefix]int{},
		routes: map[netip.Prefix]netlink.Route{},
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		tb.Fatal(err)
	}
	for _, ad := range addrs {
		ip, _ := netip.AddrFromSlice(ad.IP)
		ones, _ := ad.Mask.Size()
		if ip.Is6() && ip.IsLinkLocalUnicast() {
			continue // the kernel's own fe80:: address
		}
		s.addrs[netip.PrefixFrom(ip.Unmap(), ones)] = ad.Flags
	}
	routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL,
		&netlink.Route{LinkIndex: a.Index, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		ip, _ := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		p := netip.PrefixFrom(ip.Unmap(), ones)
		if p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		s.routes[p] = r
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + name + "/disable_ipv6"); err == nil {
		s.noIPv6 = strings.TrimSpace(string(b))
	}
	return s
}

// sameState fails tb if the link's state differs from want in what
// Configure may change.
func sameState(tb testing.TB, name string, want linkState) {
	tb.Helper()
	got := stateOf(tb, name)
	if got.up != want.up || got.mtu != want.mtu || got.mac != want.mac || got.master != want.master || got.noIPv6 != want.noIPv6 {
		tb.Errorf("%s: up %v mtu %d mac %s master %d disable_ipv6 %s; want up %v mtu %d mac %s master %d disable_ipv6 %s",
			name, got.up, got.mtu, got.mac, got.master, got.noIPv6, want.up, want.mtu, want.mac, want.master, want.noIPv6)
	}
	if len(got.addrs) != len(want.addrs) {
		tb.Errorf("%s: addresses %v, want %v", name, got.addrs, want.addrs)
	}
	for p := range want.addrs {
		if _, ok := got.addrs[p]; !ok {
			tb.Errorf("%s: address %s missing", name, p)
		}
	}
	if len(got.routes) != len(want.routes) {
		tb.Errorf("%s: routes %v, want %v", name, keys(got.routes), keys(want.routes))
	}
	for p := range want.routes {
		if _, ok := got.routes[p]; !ok {
			tb.Errorf("%s: route %s missing", name, p)
		}
	}
}

func keys[V any](m map[netip.Prefix]V) []netip.Prefix {
	var ks []netip.Prefix
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func mustLink(tb testing.TB, l netlink.Link) netlink.Link {
	tb.Helper()
	if err := netlink.LinkAdd(l); err != nil {
		tb.Fatalf("create %s %s: %v", l.Type(), l.Attrs().Name, err)
	}
	got, err := netlink.LinkByName(l.Attrs().Name)
	if err != nil {
		tb.Fatal(err)
	}
	return got
}

func setIPv6Disabled(tb testing.TB, name, v string) {
	tb.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte(v), 0); err != nil {
		tb.Fatal(err)
	}
}

func TestConfigureAndUndo(t *testing.T) {
	inNetns(t)
	d := mustOpen(t, TUN, testName(t, "qtl"))
	name := d.Name()
	setIPv6Disabled(t, name, "1")
	before := stateOf(t, name)
	if before.up || before.mtu != 1500 || len(before.addrs) != 0 || before.noIPv6 != "1" {
		t.Fatalf("fresh TUN state %+v", before)
	}

	undo, err := Configure(name, LinkConfig{
		Addrs:  []netip.Prefix{tunLocal4, tunLocal6},
		MTU:    1400,
		Routes: []netip.Prefix{tunRoute4, tunRoute6, netip.MustParsePrefix("10.77.0.0/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, name)
	if !s.up || s.mtu != 1400 || s.noIPv6 != "0" {
		t.Errorf("configured: up %v mtu %d disable_ipv6 %s; want up, 1400, 0", s.up, s.mtu, s.noIPv6)
	}
	if _, ok := s.addrs[tunLocal4]; !ok {
		t.Errorf("address %s missing: %v", tunLocal4, s.addrs)
	}
	if flags, ok := s.addrs[tunLocal6]; !ok || flags&unix.IFA_F_NODAD == 0 || flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("address %s: present %v flags %#x; want NODAD, not tentative", tunLocal6, ok, flags)
	}
	for _, p := range []netip.Prefix{tunRoute4, tunRoute6} {
		r, ok := s.routes[p]
		if !ok {
			t.Errorf("route %s missing: %v", p, keys(s.routes))
			continue
		}
		if r.Gw != nil || (p.Addr().Is4() && r.Scope != netlink.SCOPE_LINK) {
			t.Errorf("route %s: gw %v scope %v; want a link-scope dev route", p, r.Gw, r.Scope)
		}
	}
	// 10.77.0.0/24 was already there (the kernel's route for the address).
	if r := s.routes[netip.MustParsePrefix("10.77.0.0/24")]; r.Protocol != unix.RTPROT_KERNEL {
		t.Errorf("connected route protocol %v, want kernel (not added twice)", r.Protocol)
	}

	if err := undo(); err != nil {
		t.Fatalf("undo: %v", err)
	}
	sameState(t, name, before)
	if err := undo(); err != nil {
		t.Errorf("second undo: %v", err)
	}
}

func TestConfigureKeepsWhatExisted(t *testing.T) {
	inNetns(t)
	d := mustOpen(t, TUN, testName(t, "qtk"))
	name := d.Name()
	link, _ := netlink.LinkByName(name)
	if err := netlink.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("10.77.0.1"), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: net.ParseIP("10.78.0.0"), Mask: net.CIDRMask(16, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	before := stateOf(t, name)

	undo, err := Configure(name, LinkConfig{
		Addrs:  []netip.Prefix{tunLocal4, netip.MustParsePrefix("10.79.0.1/24")},
		Routes: []netip.Prefix{tunRoute4, netip.MustParsePrefix("10.80.0.0/16")},
	})
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, name)
	if len(s.addrs) != 2 || len(s.routes) != len(before.routes)+2 { // + 10.79.0.0/24 (kernel) and 10.80.0.0/16
		t.Errorf("configured: addresses %v routes %v", s.addrs, keys(s.routes))
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	sameState(t, name, before) // still up, with its own address and route
}

func TestConfigureRefusesBeforeChanging(t *testing.T) {
	ns := inNetns(t)
	tun := mustOpen(t, TUN, testName(t, "qtr"))
	tap := mustOpen(t, TAP, testName(t, "qtr"))
	vethName := testName(t, "qtr")
	notBridge := mustLink(t, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName}, PeerName: vethName + "p"})
	small := mustOpen(t, TUN, testName(t, "qtr"))
	smallLink, _ := netlink.LinkByName(small.Name())
	if err := netlink.LinkSetMTU(smallLink, 1200); err != nil {
		t.Fatal(err)
	}
	v6 := []netip.Prefix{tunLocal4, tunLocal6}

	tests := []struct {
		name string
		dev  string
		cfg  LinkConfig
		want []string
	}{
		{"IPv6 with small MTU", tun.Name(), LinkConfig{Addrs: v6, MTU: 1200, Routes: []netip.Prefix{tunRoute4}},
			[]string{tun.Name(), "IPv6 needs an MTU of at least 1280"}},
		{"IPv6 on a link with small MTU", small.Name(), LinkConfig{Addrs: v6},
			[]string{small.Name(), "1200", "IPv6 needs an MTU of at least 1280"}},
		{"MAC on TUN", tun.Name(), LinkConfig{Addrs: v6, MAC: StableMAC("x")},
			[]string{tun.Name(), "TAP devices only"}},
		{"bridge on TUN", tun.Name(), LinkConfig{Bridge: notBridge.Attrs().Name},
			[]string{tun.Name(), "TAP devices only"}},
		{"missing bridge", tap.Name(), LinkConfig{Addrs: v6, Bridge: "qtnobr"},
			[]string{`bridge "qtnobr" does not exist`, "ip link add qtnobr type bridge"}},
		{"not a bridge", tap.Name(), LinkConfig{Addrs: v6, Bridge: notBridge.Attrs().Name},
			[]string{notBridge.Attrs().Name, "veth", "not a bridge", "ip link add NAME type bridge"}},
		{"route with host bits", tun.Name(), LinkConfig{Addrs: v6, Routes: []netip.Prefix{netip.MustParsePrefix("10.78.0.1/16")}},
			[]string{"did you mean 10.78.0.0/16"}},
		{"no such link", "qtnosuch", LinkConfig{Addrs: v6},
			[]string{`no interface named "qtnosuch"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			joinNetns(t, ns)
			var before linkState
			if tt.dev != "qtnosuch" {
				before = stateOf(t, tt.dev)
			}
			undo, err := Configure(tt.dev, tt.cfg)
			if err == nil {
				undo()
				t.Fatal("Configure succeeded")
			}
			if undo != nil {
				t.Error("Configure returned an undo function with its error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tt.dev != "qtnosuch" {
				sameState(t, tt.dev, before)
			}
		})
	}
}

func TestConfigureRollsBack(t *testing.T) {
	inNetns(t)
	d := mustOpen(t, TUN, testName(t, "qtb"))
	otherName := testName(t, "qtb")
	other := mustLink(t, &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: otherName}, PeerName: otherName + "p"})
	if err := netlink.LinkSetUp(other); err != nil {
		t.Fatal(err)
	}
	taken := netip.MustParsePrefix("10.99.0.0/24")
	if err := netlink.RouteAdd(&netlink.Route{LinkIndex: other.Attrs().Index, Dst: &net.IPNet{IP: net.ParseIP("10.99.0.0"), Mask: net.CIDRMask(24, 32)}, Scope: netlink.SCOPE_LINK}); err != nil {
		t.Fatal(err)
	}
	setIPv6Disabled(t, d.Name(), "1")
	before := stateOf(t, d.Name())

	undo, err := Configure(d.Name(), LinkConfig{
		Addrs:  []netip.Prefix{tunLocal4, tunLocal6},
		MTU:    1400,
		Routes: []netip.Prefix{tunRoute4, taken},
	})
	if err == nil {
		undo()
		t.Fatal("Configure with a route taken by another link succeeded")
	}
	if !strings.Contains(err.Error(), taken.String()) || !strings.Contains(err.Error(), other.Attrs().Name) {
		t.Errorf("error %q does not name the route %s and the link %s holding it", err, taken, other.Attrs().Name)
	}
	sameState(t, d.Name(), before)
	if s := stateOf(t, other.Attrs().Name); len(s.routes) != 1 {
		t.Errorf("the other link's routes changed: %v", keys(s.routes))
	}
}

func TestAddRemoveRoutes(t *testing.T) {
	inNetns(t)
	d, undoCfg := openConfiguredTUN(t)
	name := d.Name()
	extra := []netip.Prefix{netip.MustParsePrefix("10.90.0.0/16"), netip.MustParsePrefix("fd90::/48"), netip.MustParsePrefix("10.77.0.0/24")}
	before := stateOf(t, name)

	undo, err := AddRoutes(name, extra)
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, name)
	for _, p := range extra {
		if _, ok := s.routes[p]; !ok {
			t.Errorf("route %s missing", p)
		}
	}
	if len(s.routes) != len(before.routes)+2 {
		t.Errorf("routes %v; want the two new ones added", keys(s.routes))
	}
	if err := undo(); err != nil {
		t.Fatal(err)
	}
	sameState(t, name, before)

	// RemoveRoutes takes away added routes, leaves the kernel's own, and
	// ignores absent ones.
	if err := RemoveRoutes(name, []netip.Prefix{tunRoute4, netip.MustParsePrefix("10.77.0.0/24"), netip.MustParsePrefix("10.91.0.0/16")}); err != nil {
		t.Fatal(err)
	}
	s = stateOf(t, name)
	if _, ok := s.routes[tunRoute4]; ok {
		t.Errorf("route %s still there after RemoveRoutes", tunRoute4)
	}
	if _, ok := s.routes[netip.MustParsePrefix("10.77.0.0/24")]; !ok {
		t.Error("RemoveRoutes removed the kernel's connected route")
	}
	// Undo of Configure copes with the route already removed.
	if err := undoCfg(); err != nil {
		t.Errorf("undo of Configure after RemoveRoutes: %v", err)
	}

	if _, err := AddRoutes(name, []netip.Prefix{netip.MustParsePrefix("10.90.0.1/16")}); err == nil || !strings.Contains(err.Error(), "did you mean") {
		t.Errorf("AddRoutes with host bits: %v", err)
	}
	down := mustOpen(t, TUN, testName(t, "qtd"))
	if _, err := AddRoutes(down.Name(), extra[:1]); err == nil || !strings.Contains(err.Error(), "bring "+down.Name()+" up first") {
		t.Errorf("AddRoutes via a down link: %v", err)
	}
}

func TestUndoAfterClose(t *testing.T) {
	inNetns(t)
	d, undo := openConfiguredTUN(t)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, d.Name())
	if err := undo(); err != nil {
		t.Errorf("undo after the device went away: %v", err)
	}
}

func TestTAPBridge(t *testing.T) {
	inNetns(t)
	br := mustLink(t, &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: testName(t, "qtbr")}})
	brAddr := netip.MustParsePrefix("10.88.0.1/24")
	if err := netlink.AddrAdd(br, &netlink.Addr{IPNet: &net.IPNet{IP: brAddr.Addr().AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, TAP, testName(t, "qtap"))
	before := stateOf(t, d.Name())
	mac := StableMAC("tap test " + d.Name())
	undo, err := Configure(d.Name(), LinkConfig{MAC: mac, Bridge: br.Attrs().Name, MTU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	s := stateOf(t, d.Name())
	if s.master != br.Attrs().Index || s.mac != mac.String() || !s.up {
		t.Fatalf("configured: master %d mac %s up %v; want master %d mac %s up", s.master, s.mac, s.up, br.Attrs().Index, mac)
	}

	frames := pump(d)
	sock, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(brAddr.Addr(), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	peerIP := netip.MustParseAddr("10.88.0.2")
	peerMAC := net.HardwareAddr{0x02, 0x77, 0, 0, 0, 2}
	dst := netip.AddrPortFrom(peerIP, 40200)
	if _, err := sock.WriteToUDPAddrPort([]byte("to the lan"), dst); err != nil {
		t.Fatal(err)
	}

	// The bridge asks for the peer's MAC through the TAP port.
	req := waitPacket(t, frames, 5*time.Second, "ARP request for "+peerIP.String(), func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == etherTypeARP &&
			binary.BigEndian.Uint16(f[20:]) == 1 && bytes.Equal(f[38:42], peerIP.AsSlice())
	})
	brMAC := net.HardwareAddr(req[6:12])
	if !bytes.Equal(req[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) {
		t.Errorf("ARP request to %s, want broadcast", net.HardwareAddr(req[0:6]))
	}
	reply := ether(brMAC, peerMAC, etherTypeARP, arp4(2, peerMAC, peerIP, brMAC, brAddr.Addr()))
	if n, err := d.Write([][]byte{reply}, 0); n != 1 || err != nil {
		t.Fatalf("Write ARP reply = %d, %v", n, err)
	}

	// With the answer, the queued datagram leaves as an IPv4 frame to the peer.
	f := waitPacket(t, frames, 5*time.Second, "IPv4 frame to "+dst.String(), func(f []byte) bool {
		return len(f) > 14 && binary.BigEndian.Uint16(f[12:]) == etherTypeIPv4 && isUDPTo(f[14:], dst)
	})
	if !bytes.Equal(f[0:6], peerMAC) || !bytes.Equal(f[6:12], brMAC) {
		t.Errorf("frame %s → %s, want %s → %s", net.HardwareAddr(f[6:12]), net.HardwareAddr(f[0:6]), brMAC, peerMAC)
	}

	// A frame written into the TAP reaches a socket on the bridge.
	in := ether(brMAC, peerMAC, etherTypeIPv4, udp4(netip.AddrPortFrom(peerIP, 5555), sock.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("from the lan")))
	if n, err := d.Write([][]byte{in}, 0); n != 1 || err != nil {
		t.Fatalf("Write frame = %d, %v", n, err)
	}
	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 100)
	n, from, err := sock.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "from the lan" || from.Addr() != peerIP {
		t.Errorf("socket got %q from %s, %v", buf[:n], from, err)
	}

	if err := undo(); err != nil {
		t.Fatal(err)
	}
	sameState(t, d.Name(), before)
}
