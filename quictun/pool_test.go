package quictun

import (
	"fmt"
	"net/netip"
	"testing"
)

func TestLeasesStable(t *testing.T) {
	pool := netip.MustParsePrefix("10.77.0.128/25")
	l := newMemLeases()
	a1, err := l.Assign("laptop1", pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.Contains(a1) || a1 == pool.Addr() || a1 == netip.MustParseAddr("10.77.0.255") {
		t.Fatalf("assigned %s: not a usable host address of %s", a1, pool)
	}
	again, _ := l.Assign("laptop1", pool, nil)
	if again != a1 {
		t.Errorf("same identity got %s, then %s", a1, again)
	}
	// A new server (new leases) derives the same address from the identity.
	fresh, _ := newMemLeases().Assign("laptop1", pool, nil)
	if fresh != a1 {
		t.Errorf("after a restart laptop1 got %s, before %s", fresh, a1)
	}
	other, _ := l.Assign("laptop2", pool, nil)
	if other == a1 {
		t.Errorf("two identities share %s", a1)
	}
}

func TestLeasesAvoidTakenAndReserved(t *testing.T) {
	pool := netip.MustParsePrefix("10.9.0.0/30") // two usable: .1 and .2
	l := newMemLeases()
	first, _ := newMemLeases().Assign("x", pool, nil)
	l.Reserve(first)
	a, err := l.Assign("x", pool, nil)
	if err != nil || a == first {
		t.Fatalf("Assign = %s, %v; want the other address than the reserved %s", a, err, first)
	}
	if _, err := l.Assign("y", pool, func(netip.Addr) bool { return true }); err == nil {
		t.Error("a pool whose every address is taken still assigned one")
	}
}

func TestLeasesExhaustion(t *testing.T) {
	pool := netip.MustParsePrefix("10.9.0.0/29") // six usable
	l := newMemLeases()
	seen := map[netip.Addr]bool{}
	for i := 0; i < 6; i++ {
		a, err := l.Assign(fmt.Sprint("id", i), pool, nil)
		if err != nil {
			t.Fatalf("identity %d: %v", i, err)
		}
		if seen[a] {
			t.Fatalf("%s handed out twice", a)
		}
		seen[a] = true
	}
	if _, err := l.Assign("one-too-many", pool, nil); err == nil {
		t.Error("an exhausted pool assigned an address")
	}
}

func TestLeasesIPv6(t *testing.T) {
	pool := netip.MustParsePrefix("fd77::/64")
	a, err := newMemLeases().Assign("laptop1", pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.Contains(a) || a == pool.Addr() {
		t.Errorf("assigned %s from %s", a, pool)
	}
}
