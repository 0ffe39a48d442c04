package hub

import (
	"net/netip"
	"testing"
	"time"
)

// The peers of the policy tests: clients with their identity, groups and
// address, and the server's side (the device) with its own address.
type testPeer struct {
	name   string // "" for the server's side
	groups []string
	addr   string
}

var (
	alice  = testPeer{"alice", []string{"eng"}, "10.77.0.11"}
	bob    = testPeer{"bob", []string{"ops"}, "10.77.0.12"}
	carol  = testPeer{"carol", []string{"eng", "ops"}, "10.77.0.13"}
	dev    = testPeer{"", nil, "192.168.10.5"} // a host behind the server
	server = testPeer{"", nil, "10.77.0.1"}    // the server itself
	lanNet = netip.MustParsePrefix("192.168.10.0/24")
)

func ep(kind EndpointKind, name string) Endpoint { return Endpoint{Kind: kind, Name: name} }
func netEP(p netip.Prefix) Endpoint              { return Endpoint{Kind: NetEndpoint, Net: p} }

func tcpFlow(from, to testPeer, sport, dport uint16) Flow {
	return Flow{Src: netip.MustParseAddr(from.addr), Dst: netip.MustParseAddr(to.addr), Proto: 6, SPort: sport, DPort: dport, HasPorts: true}
}

// pingFlow is an echo request (packet.Ports: the id as the source port).
func pingFlow(from, to testPeer, id uint16) Flow {
	return Flow{Src: netip.MustParseAddr(from.addr), Dst: netip.MustParseAddr(to.addr), Proto: 1, SPort: id, HasPorts: true}
}

// pongFlow is an echo reply (the id as the destination port).
func pongFlow(from, to testPeer, id uint16) Flow {
	return Flow{Src: netip.MustParseAddr(from.addr), Dst: netip.MustParseAddr(to.addr), Proto: 1, DPort: id, HasPorts: true}
}

// peerOf returns p's PeerRules under pol, nil for the server's side.
func peerOf(pol *Policy, p testPeer) *PeerRules {
	if p.name == "" {
		return nil
	}
	return pol.Peer(p.name, p.groups)
}

func TestPolicyMatch(t *testing.T) {
	serverAddrs := []netip.Addr{netip.MustParseAddr("10.77.0.1")}
	engToOpsSSH := Rule{Allow: true, From: ep(GroupEndpoint, "eng"), To: ep(GroupEndpoint, "ops"), Proto: TCP,
		Ports: []PortRange{{22, 22}, {443, 443}, {8000, 8999}}}
	tests := []struct {
		name  string
		rules []Rule
		c2c   bool
		flow  Flow
		from  testPeer
		to    testPeer
		want  bool
	}{
		{"no rules, c2c allowed", nil, true, tcpFlow(alice, bob, 1000, 80), alice, bob, true},
		{"no rules, c2c denied", nil, false, tcpFlow(alice, bob, 1000, 80), alice, bob, false},
		{"no rules, c2c denied, client to device allowed", nil, false, tcpFlow(alice, dev, 1000, 80), alice, dev, true},
		{"no rules, c2c denied, device to client allowed", nil, false, tcpFlow(dev, alice, 80, 1000), dev, alice, true},
		{"group to group, port in list", []Rule{engToOpsSSH}, false, tcpFlow(alice, bob, 1000, 443), alice, bob, true},
		{"group to group, port in range", []Rule{engToOpsSSH}, false, tcpFlow(alice, bob, 1000, 8080), alice, bob, true},
		{"group to group, port outside", []Rule{engToOpsSSH}, false, tcpFlow(alice, bob, 1000, 80), alice, bob, false},
		{"group to group, wrong proto", []Rule{engToOpsSSH}, false,
			Flow{Src: netip.MustParseAddr(alice.addr), Dst: netip.MustParseAddr(bob.addr), Proto: 17, SPort: 1, DPort: 22, HasPorts: true}, alice, bob, false},
		{"group to group, wrong direction", []Rule{engToOpsSSH}, false, tcpFlow(bob, alice, 1000, 22), bob, alice, false},
		{"member of both groups", []Rule{engToOpsSSH}, false, tcpFlow(carol, carol, 1000, 22), carol, carol, true},
		{"name to network denied", []Rule{{From: ep(NameEndpoint, "alice"), To: netEP(lanNet)}}, true,
			tcpFlow(alice, dev, 1000, 80), alice, dev, false},
		{"name rule leaves others", []Rule{{From: ep(NameEndpoint, "alice"), To: netEP(lanNet)}}, true,
			tcpFlow(bob, dev, 1000, 80), bob, dev, true},
		{"network source from the device", []Rule{{From: netEP(lanNet), To: ep(GroupEndpoint, "eng")}}, true,
			tcpFlow(dev, alice, 80, 1000), dev, alice, false},
		{"network destination owned by a client", []Rule{{From: ep(AnyEndpoint, ""), To: netEP(netip.MustParsePrefix("10.77.0.12/32"))}}, true,
			tcpFlow(alice, bob, 1000, 80), alice, bob, false},
		{"icmp to the server allowed, rest denied", []Rule{
			{Allow: true, From: ep(AnyEndpoint, ""), To: ep(ServerEndpoint, ""), Proto: ICMP},
			{From: ep(AnyEndpoint, ""), To: ep(ServerEndpoint, "")}}, true, pingFlow(alice, server, 7), alice, server, true},
		{"tcp to the server denied", []Rule{
			{Allow: true, From: ep(AnyEndpoint, ""), To: ep(ServerEndpoint, ""), Proto: ICMP},
			{From: ep(AnyEndpoint, ""), To: ep(ServerEndpoint, "")}}, true, tcpFlow(alice, server, 1000, 22), alice, server, false},
		{"server rule is not the LAN", []Rule{{From: ep(AnyEndpoint, ""), To: ep(ServerEndpoint, "")}}, true,
			tcpFlow(alice, dev, 1000, 22), alice, dev, true},
		{"server as source", []Rule{{From: ep(ServerEndpoint, ""), To: ep(AnyEndpoint, "")}}, true,
			pingFlow(server, bob, 3), server, bob, false},
		{"first match wins: allow before deny", []Rule{
			{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(AnyEndpoint, "")},
			{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, "")}}, true, tcpFlow(alice, bob, 1, 2), alice, bob, true},
		{"first match wins: deny before allow", []Rule{
			{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, "")},
			{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(AnyEndpoint, "")}}, true, tcpFlow(alice, bob, 1, 2), alice, bob, false},
		{"a rule that does not match falls to the c2c default", []Rule{
			{Allow: true, From: ep(GroupEndpoint, "ops"), To: ep(AnyEndpoint, "")}}, false, tcpFlow(alice, bob, 1, 2), alice, bob, false},
		{"ports never match a flow without ports", []Rule{{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, ""), Proto: TCP, Ports: []PortRange{{0, 65535}}}}, true,
			Flow{Src: netip.MustParseAddr(alice.addr), Dst: netip.MustParseAddr(bob.addr), Proto: 6}, alice, bob, true},
		{"icmp error decided by rules", []Rule{{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, ""), Proto: ICMP}}, true,
			Flow{Src: netip.MustParseAddr(alice.addr), Dst: netip.MustParseAddr(bob.addr), Proto: 1}, alice, bob, false},
		{"ipv6 icmp", []Rule{{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, ""), Proto: ICMP}}, true,
			Flow{Src: netip.MustParseAddr("fd77::11"), Dst: netip.MustParseAddr("fd77::12"), Proto: 58, SPort: 1, DPort: 1, HasPorts: true}, alice, bob, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := NewPolicy(tt.rules, serverAddrs, tt.c2c, 1)
			ct := NewConntrack(64)
			f := tt.flow
			if got := pol.Allow(ct, peerOf(pol, tt.from), peerOf(pol, tt.to), &f, ct.Now()); got != tt.want {
				t.Errorf("Allow = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestPolicyManyRules: the bitsets work past one word of rules.
func TestPolicyManyRules(t *testing.T) {
	var rules []Rule
	for i := 0; i < 150; i++ {
		rules = append(rules, Rule{From: ep(NameEndpoint, "nobody"), To: ep(AnyEndpoint, "")})
	}
	rules = append(rules, Rule{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(NameEndpoint, "bob"), Proto: TCP, Ports: []PortRange{{22, 22}}})
	pol := NewPolicy(rules, nil, false, 1)
	ct := NewConntrack(0)
	a, b := pol.Peer("alice", nil), pol.Peer("bob", nil)
	f := tcpFlow(alice, bob, 5000, 22)
	if !pol.Allow(ct, a, b, &f, ct.Now()) {
		t.Error("rule 151 did not allow alice → bob:22")
	}
	f = tcpFlow(alice, bob, 5000, 23)
	if pol.Allow(ct, a, b, &f, ct.Now()) {
		t.Error("alice → bob:23 allowed, want the c2c default (deny)")
	}
}

func TestConntrackReplies(t *testing.T) {
	// alice may open connections to bob; nothing may reach alice.
	rules := []Rule{
		{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(NameEndpoint, "bob")},
		{From: ep(AnyEndpoint, ""), To: ep(NameEndpoint, "alice")},
	}
	pol := NewPolicy(rules, nil, true, 1)
	a, b := pol.Peer("alice", alice.groups), pol.Peer("bob", bob.groups)
	t0 := time.Second // what ct.Now would say a second after the table was made
	allow := func(ct *Conntrack, src, dst *PeerRules, f Flow, at time.Duration) bool {
		return pol.Allow(ct, src, dst, &f, t0+at)
	}
	t.Run("reply of an allowed flow", func(t *testing.T) {
		ct := NewConntrack(64)
		if allow(ct, b, a, tcpFlow(bob, alice, 22, 5000), 0) {
			t.Fatal("bob → alice passed before any flow")
		}
		if !allow(ct, a, b, tcpFlow(alice, bob, 5000, 22), 0) {
			t.Fatal("alice → bob denied")
		}
		if !allow(ct, b, a, tcpFlow(bob, alice, 22, 5000), time.Second) {
			t.Error("the reply bob → alice was denied")
		}
		if allow(ct, b, a, tcpFlow(bob, alice, 22, 5001), time.Second) {
			t.Error("bob → alice on another port passed")
		}
		if !allow(ct, b, a, tcpFlow(bob, alice, 22, 5000), 90*time.Minute) {
			t.Error("an established TCP flow was forgotten after 90 minutes")
		}
		if allow(ct, b, a, tcpFlow(bob, alice, 22, 5000), 90*time.Minute+TCPEstablishedTimeout+time.Second) {
			t.Error("an established TCP flow outlived its timeout")
		}
	})
	t.Run("ping reply", func(t *testing.T) {
		ct := NewConntrack(64)
		if !allow(ct, a, b, pingFlow(alice, bob, 77), 0) {
			t.Fatal("ping alice → bob denied")
		}
		if !allow(ct, b, a, pongFlow(bob, alice, 77), time.Second) {
			t.Error("echo reply denied")
		}
		if allow(ct, b, a, pingFlow(bob, alice, 77), time.Second) {
			t.Error("an echo request bob → alice with alice's id passed")
		}
		if allow(ct, b, a, pongFlow(bob, alice, 78), time.Second) {
			t.Error("an echo reply with another id passed")
		}
		if allow(ct, b, a, pongFlow(bob, alice, 77), time.Second+ICMPTimeout+time.Second) {
			t.Error("a ping flow outlived ICMPTimeout")
		}
	})
	t.Run("unanswered tcp expires sooner", func(t *testing.T) {
		ct := NewConntrack(64)
		allow(ct, a, b, tcpFlow(alice, bob, 6000, 22), 0)
		if allow(ct, b, a, tcpFlow(bob, alice, 22, 6000), TCPOpeningTimeout+time.Second) {
			t.Error("an unanswered TCP flow outlived TCPOpeningTimeout")
		}
	})
	t.Run("full table evicts the least recent", func(t *testing.T) {
		ct := NewConntrack(1) // one bucket per shard: ctWays flows per bucket
		if ct.Cap() != ctShards*ctWays {
			t.Fatalf("Cap %d, want %d", ct.Cap(), ctShards*ctWays)
		}
		n := ct.Cap() * 2
		for i := 0; i < n; i++ {
			allow(ct, a, b, tcpFlow(alice, bob, uint16(10000+i), 22), time.Duration(i)*time.Millisecond)
		}
		at := time.Duration(n) * time.Millisecond
		if got := ct.Len(t0 + at); got != ct.Cap() {
			t.Errorf("Len %d after %d flows, want the capacity %d", got, n, ct.Cap())
		}
		if got := ct.Evicted(); got != uint64(n-ct.Cap()) {
			t.Errorf("Evicted %d, want %d", got, n-ct.Cap())
		}
		if !allow(ct, b, a, tcpFlow(bob, alice, 22, uint16(10000+n-1)), at) {
			t.Error("the newest flow's reply was denied")
		}
		// The oldest flows were evicted; their replies are denied until
		// alice sends again.
		lost := 0
		for i := 0; i < 8; i++ {
			if !allow(ct, b, a, tcpFlow(bob, alice, 22, uint16(10000+i)), at) {
				lost++
			}
		}
		if lost != 8 {
			t.Errorf("%d of the 8 oldest flows were evicted, want 8", lost)
		}
	})
	t.Run("new policy revalidates flows", func(t *testing.T) {
		ct := NewConntrack(64)
		allow(ct, a, b, tcpFlow(alice, bob, 7000, 22), 0)
		allow(ct, a, b, tcpFlow(alice, bob, 7001, 80), 0)
		// Now alice may reach bob on port 22 only.
		pol2 := NewPolicy([]Rule{
			{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(NameEndpoint, "bob"), Proto: TCP, Ports: []PortRange{{22, 22}}},
			{From: ep(AnyEndpoint, ""), To: ep(AnyEndpoint, "")},
		}, nil, true, 2)
		a2, b2 := pol2.Peer("alice", nil), pol2.Peer("bob", nil)
		f := tcpFlow(bob, alice, 22, 7000)
		if !pol2.Allow(ct, b2, a2, &f, t0+time.Second) {
			t.Error("the reply of a flow the new rules still allow was denied")
		}
		f = tcpFlow(bob, alice, 80, 7001)
		if pol2.Allow(ct, b2, a2, &f, t0+time.Second) {
			t.Error("the reply of a flow the new rules deny passed")
		}
		f = tcpFlow(alice, bob, 7001, 80)
		if pol2.Allow(ct, a2, b2, &f, t0+time.Second) {
			t.Error("a flow the new rules deny passed in its own direction")
		}
	})
}

func TestPolicyAllowNoAlloc(t *testing.T) {
	var rules []Rule
	for i := 0; i < 100; i++ {
		rules = append(rules, Rule{From: ep(NameEndpoint, "other"), To: ep(AnyEndpoint, "")})
	}
	pol := NewPolicy(rules, nil, true, 1)
	ct := NewConntrack(0)
	a, b := pol.Peer("alice", nil), pol.Peer("bob", nil)
	now := ct.Now()
	port := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		port++
		f := tcpFlow(alice, bob, port, 22) // a new flow each time: the scan and an add
		pol.Allow(ct, a, b, &f, now)
	}); n != 0 {
		t.Errorf("Allow allocates %v times per packet, want 0", n)
	}
}

// BenchmarkPolicyAllow: a packet of a tracked flow (as every packet of a
// TCP stream but its first) and of a new flow (the rules scanned), with
// 100 rules that apply to any source and do not match.
func BenchmarkPolicyAllow(b *testing.B) {
	var rules []Rule
	for i := 0; i < 100; i++ {
		rules = append(rules, Rule{From: ep(AnyEndpoint, ""), To: netEP(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 100, byte(i), 0}), 24)), Proto: TCP, Ports: []PortRange{{22, 22}}})
	}
	pol := NewPolicy(rules, nil, true, 1)
	a, bb := pol.Peer("alice", nil), pol.Peer("bob", nil)
	b.Run("tracked", func(b *testing.B) {
		ct := NewConntrack(0)
		f := tcpFlow(alice, bob, 5000, 22)
		for b.Loop() {
			pol.Allow(ct, a, bb, &f, ct.Now())
		}
	})
	b.Run("new", func(b *testing.B) {
		ct := NewConntrack(0)
		f := tcpFlow(alice, bob, 5000, 22)
		for b.Loop() {
			f.SPort++
			pol.Allow(ct, a, bb, &f, ct.Now())
		}
	})
}

// TestConntrackConcurrent: the inbound loops of many sessions and the
// device reader use one table at once (run with -race).
func TestConntrackConcurrent(t *testing.T) {
	pol := NewPolicy([]Rule{{Allow: true, From: ep(NameEndpoint, "alice"), To: ep(AnyEndpoint, "")}}, nil, false, 1)
	ct := NewConntrack(1024)
	a, b := pol.Peer("alice", nil), pol.Peer("bob", nil)
	done := make(chan int)
	for g := 0; g < 4; g++ {
		go func() {
			denied := 0
			for i := 0; i < 2000; i++ {
				sport := uint16(g*2000 + i)
				f := tcpFlow(alice, bob, sport, 22)
				pol.Allow(ct, a, b, &f, ct.Now())
				r := tcpFlow(bob, alice, 22, sport)
				if !pol.Allow(ct, b, a, &r, ct.Now()) {
					denied++ // evicted by another goroutine's flows meanwhile
				}
			}
			done <- denied
		}()
	}
	denied := 0
	for g := 0; g < 4; g++ {
		denied += <-done
	}
	if denied > 100 {
		t.Errorf("%d of 8000 replies denied right after their flow was recorded", denied)
	}
}
