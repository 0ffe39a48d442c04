package hub

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

func TestRouteTableLookup(t *testing.T) {
	var rt Routes[string]
	for _, r := range []struct{ p, v string }{
		{"0.0.0.0/0", "default4"},
		{"10.0.0.0/8", "ten"},
		{"10.77.0.0/16", "tunnel"},
		{"10.77.0.11/32", "alice"},
		{"10.77.0.12/32", "bob"},
		{"192.168.50.7/24", "site"}, // masked on insert
		{"fd77::/64", "tunnel6"},
		{"fd77::b/128", "alice6"},
		{"::ffff:10.77.0.0/112", "mapped"},
	} {
		if _, replaced := rt.Insert(netip.MustParsePrefix(r.p), r.v); replaced {
			t.Fatalf("insert %s replaced something", r.p)
		}
	}
	tests := []struct {
		addr string
		want string // "" = no match
	}{
		{"10.77.0.11", "alice"},
		{"10.77.0.12", "bob"},
		{"10.77.0.13", "tunnel"},
		{"10.1.2.3", "ten"},
		{"8.8.8.8", "default4"},
		{"192.168.50.200", "site"},
		{"fd77::b", "alice6"},
		{"fd77::c", "tunnel6"},
		{"fd78::1", ""},
		{"::ffff:10.77.0.11", "mapped"}, // IPv4-mapped is IPv6 here, not alice
		{"fd77::b%eth0", "alice6"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, ok := rt.Lookup(netip.MustParseAddr(tt.addr))
			if ok != (tt.want != "") || got != tt.want {
				t.Errorf("lookup(%s) = %q, %v; want %q", tt.addr, got, ok, tt.want)
			}
		})
	}
	if _, ok := rt.Lookup(netip.Addr{}); ok {
		t.Error("lookup of the zero Addr matched")
	}
	if v, ok := rt.LookupExact(netip.MustParsePrefix("192.168.50.0/24")); !ok || v != "site" {
		t.Errorf("lookupExact(192.168.50.0/24) = %q, %v", v, ok)
	}
	if _, ok := rt.LookupExact(netip.MustParsePrefix("192.168.50.0/25")); ok {
		t.Error("lookupExact(192.168.50.0/25) matched a /24")
	}
}

func TestRouteTableReplaceRemove(t *testing.T) {
	var rt Routes[int]
	p := netip.MustParsePrefix("10.77.0.11/32")
	rt.Insert(p, 1)
	if prev, replaced := rt.Insert(p, 2); !replaced || prev != 1 {
		t.Fatalf("insert over 1 = %d, %v; want 1, true", prev, replaced)
	}
	if rt.remove(p, 1) {
		t.Error("old value removed its successor's entry")
	}
	if v, ok := rt.Lookup(p.Addr()); !ok || v != 2 {
		t.Errorf("lookup after stale remove = %d, %v; want 2", v, ok)
	}
	if !rt.remove(p, 2) {
		t.Error("remove(p, 2) = false")
	}
	if _, ok := rt.Lookup(p.Addr()); ok {
		t.Error("lookup after remove matched")
	}

	rt.Insert(netip.MustParsePrefix("10.0.0.0/8"), 7)
	rt.Insert(netip.MustParsePrefix("10.77.0.0/16"), 8)
	rt.Insert(netip.MustParsePrefix("10.77.0.12/32"), 7)
	rt.Insert(netip.MustParsePrefix("fd77::c/128"), 7)
	if n := rt.RemoveValue(7); n != 3 {
		t.Errorf("removeValue(7) = %d, want 3", n)
	}
	if rt.len() != 1 {
		t.Errorf("len = %d, want 1", rt.len())
	}
	if v, ok := rt.Lookup(netip.MustParseAddr("10.77.0.12")); !ok || v != 8 {
		t.Errorf("lookup(10.77.0.12) = %d, %v; want 8 via /16", v, ok)
	}
	if _, ok := rt.Lookup(netip.MustParseAddr("10.1.1.1")); ok {
		t.Error("removed /8 still matches")
	}
	// The removed lengths are gone from the length lists.
	rt.mu.RLock()
	lens4, lens6 := append([]int{}, rt.v4.lens...), append([]int{}, rt.v6.lens...)
	rt.mu.RUnlock()
	if fmt.Sprint(lens4) != "[16]" || len(lens6) != 0 {
		t.Errorf("lens = %v / %v, want [16] / []", lens4, lens6)
	}
}

// fillRouteTable inserts n /32s inside 10.64.0.0/10 plus a few shorter
// prefixes, the hub's shape: one entry per client address and some routes.
func fillRouteTable(rt *Routes[int], n int) {
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, 64 + byte(i>>16), byte(i >> 8), byte(i)})
		rt.Insert(netip.PrefixFrom(a, 32), i)
	}
	for i, p := range []string{"10.64.0.0/10", "192.168.0.0/16", "192.168.50.0/24", "172.16.0.0/12", "0.0.0.0/0"} {
		rt.Insert(netip.MustParsePrefix(p), -1-i)
	}
}

func TestRouteTableConcurrent(t *testing.T) {
	var rt Routes[int]
	fillRouteTable(&rt, 1000)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				a := netip.AddrFrom4([4]byte{10, 64, byte(i >> 8 & 3), byte(i)})
				if _, ok := rt.Lookup(a); !ok {
					t.Errorf("goroutine %d: lookup(%s) missed", g, a)
					return
				}
			}
		})
	}
	for i := range 200 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 99, 0, byte(i)}), 32)
		rt.Insert(p, i)
		rt.remove(p, i)
	}
	wg.Wait()
}

func TestRouteTableNoAlloc(t *testing.T) {
	var rt Routes[*int]
	v := new(int)
	rt.Insert(netip.MustParsePrefix("10.77.0.11/32"), v)
	rt.Insert(netip.MustParsePrefix("10.77.0.0/16"), v)
	rt.Insert(netip.MustParsePrefix("fd77::b/128"), v)
	a4, a6 := netip.MustParseAddr("10.77.3.4"), netip.MustParseAddr("fd77::b")
	if n := testing.AllocsPerRun(100, func() {
		rt.Lookup(a4)
		rt.Lookup(a6)
	}); n != 0 {
		t.Errorf("lookup allocates %v times per run, want 0", n)
	}
}

func BenchmarkRouteTableLookup(b *testing.B) {
	var rt Routes[int]
	fillRouteTable(&rt, 1000)
	addrs := []netip.Addr{
		netip.MustParseAddr("10.64.1.200"),   // a /32
		netip.MustParseAddr("10.100.0.1"),    // the /10
		netip.MustParseAddr("192.168.50.20"), // a /24 among shorter ones
		netip.MustParseAddr("8.8.8.8"),       // only the default
	}
	for _, a := range addrs {
		b.Run(a.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := rt.Lookup(a); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				rt.Lookup(addrs[0])
			}
		})
	})
}
