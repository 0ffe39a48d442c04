package state

import (
	"fmt"
	"math/big"
	"net/netip"
	"testing"
	"time"
)

func TestLeasesStable(t *testing.T) {
	pool := netip.MustParsePrefix("10.77.0.128/25")
	l := NewMemoryLeases(0)
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
	fresh, _ := NewMemoryLeases(0).Assign("laptop1", pool, nil)
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
	l := NewMemoryLeases(0)
	first, _ := NewMemoryLeases(0).Assign("x", pool, nil)
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
	l := NewMemoryLeases(0)
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
	a, err := NewMemoryLeases(0).Assign("laptop1", pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pool.Contains(a) || a == pool.Addr() {
		t.Errorf("assigned %s from %s", a, pool)
	}
}

func TestLeasesReleaseKeepsAddressForTTL(t *testing.T) {
	pool := netip.MustParsePrefix("10.77.0.0/30") // two usable addresses
	l := NewMemoryLeases(time.Hour)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	a1, err := l.Assign("laptop1", pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := l.Assign("laptop2", pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Release("laptop1", a1)
	if _, err := l.Assign("laptop3", pool, nil); err == nil {
		t.Fatal("laptop3 got an address while laptop1's released lease was within its TTL")
	}
	if again, _ := l.Assign("laptop1", pool, nil); again != a1 {
		t.Errorf("laptop1 came back within the TTL and got %s, want %s", again, a1)
	}
	if err := l.Renew("laptop1", a1); err != nil {
		t.Errorf("Renew of a held lease: %v", err)
	}
	if err := l.Renew("laptop1", a2); err == nil {
		t.Error("Renew of another identity's address succeeded")
	}
	l.Release("laptop1", a1)
	now = now.Add(2 * time.Hour)
	a3, err := l.Assign("laptop3", pool, nil)
	if err != nil || a3 != a1 {
		t.Errorf("after the TTL laptop3 got %s, %v; want laptop1's old %s", a3, err, a1)
	}
	if err := l.Renew("laptop1", a1); err == nil {
		t.Error("laptop1 renewed a lease that expired and went to laptop3")
	}
}

// TestLeasesExpireAcrossPools: a released lease made from one pool expires
// when its address is probed from another (the server's pools changed, or
// overlap), so the address can be handed out again.
func TestLeasesExpireAcrossPools(t *testing.T) {
	small := netip.MustParsePrefix("10.77.0.0/30") // 10.77.0.1, 10.77.0.2
	large := netip.MustParsePrefix("10.77.0.0/29") // 10.77.0.1 … 10.77.0.6
	l := NewMemoryLeases(time.Hour)
	now := time.Unix(1e9, 0)
	l.now = func() time.Time { return now }
	var old []netip.Addr
	for _, id := range []string{"a", "b"} {
		ad, err := l.Assign(id, small, nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Release(id, ad)
		old = append(old, ad)
	}
	now = now.Add(2 * time.Hour)
	got := map[netip.Addr]bool{}
	for i := range 6 {
		ad, err := l.Assign(fmt.Sprintf("new%d", i), large, nil)
		if err != nil {
			t.Fatalf("new%d from %s after the old leases expired: %v", i, large, err)
		}
		got[ad] = true
	}
	for _, ad := range old {
		if !got[ad] {
			t.Errorf("%s, released from %s and expired, was never handed out from %s", ad, small, large)
		}
	}
}

func TestRevocations(t *testing.T) {
	r := NewMemoryRevocations()
	s := big.NewInt(0x1234)
	if r.IsRevoked(s) || r.IsRevoked(nil) {
		t.Fatal("an empty set revokes")
	}
	r.Revoke(s)
	r.Revoke(big.NewInt(1))
	select {
	case <-r.Changed():
	default:
		t.Fatal("no change signalled")
	}
	if !r.IsRevoked(big.NewInt(0x1234)) {
		t.Error("revoked serial not found")
	}
	r.Set(nil)
	if r.IsRevoked(s) {
		t.Error("Set(nil) kept the serial")
	}
}
