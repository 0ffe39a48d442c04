package device

import (
	"net/netip"
	"testing"
)

// TestRouteSet changes a configured TUN's routes as a client does when
// its server pushes others: removals take routes whoever added them, one
// bad route does not stop the others, and Undo removes only what the set
// added.
func TestRouteSet(t *testing.T) {
	inNetns(t)
	d, undoCfg := openConfiguredTUN(t)
	name := d.Name()
	pfx := netip.MustParsePrefix
	has := func(p netip.Prefix) bool {
		_, ok := stateOf(t, name).routes[p]
		return ok
	}
	// A route that was there before, as `ip route add` makes it.
	before := pfx("10.95.0.0/16")
	undoBefore, err := AddRoutes(name, []netip.Prefix{before})
	if err != nil {
		t.Fatal(err)
	}

	rs := NewRouteSet(name)
	if err := rs.Update([]netip.Prefix{pfx("10.90.0.0/16"), pfx("fd90::/48"), before}, []netip.Prefix{tunRoute4}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[netip.Prefix]bool{tunRoute4: false, tunRoute6: true, pfx("10.90.0.0/16"): true, pfx("fd90::/48"): true, before: true} {
		if has(p) != want {
			t.Errorf("after the first Update: route %s there: %v, want %v (routes %v)", p, !want, want, keys(stateOf(t, name).routes))
		}
	}

	err = rs.Update([]netip.Prefix{pfx("10.92.0.1/16"), pfx("10.91.0.0/16")}, []netip.Prefix{pfx("10.90.0.0/16"), pfx("10.93.0.0/16")})
	if err == nil {
		t.Error("Update with a route with host bits succeeded")
	}
	if !has(pfx("10.91.0.0/16")) || has(pfx("10.90.0.0/16")) {
		t.Errorf("after an Update with one bad route: routes %v, want 10.91.0.0/16 added and 10.90.0.0/16 removed", keys(stateOf(t, name).routes))
	}
	// Retried whole, it changes nothing more.
	_ = rs.Update([]netip.Prefix{pfx("10.92.0.1/16"), pfx("10.91.0.0/16")}, []netip.Prefix{pfx("10.90.0.0/16"), pfx("10.93.0.0/16")})
	if !has(pfx("10.91.0.0/16")) {
		t.Error("a repeated Update removed 10.91.0.0/16")
	}

	if err := rs.Undo(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[netip.Prefix]bool{pfx("10.91.0.0/16"): false, pfx("fd90::/48"): false, before: true, tunRoute6: true} {
		if has(p) != want {
			t.Errorf("after Undo: route %s there: %v, want %v", p, !want, want)
		}
	}
	if err := undoBefore(); err != nil {
		t.Fatal(err)
	}
	if err := undoCfg(); err != nil {
		t.Errorf("undo of Configure after the route set's changes: %v", err)
	}
}
