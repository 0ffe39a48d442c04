package hub

import (
	"net/netip"
	"testing"
	"time"

	"github.com/quictun/quictun/packet"
)

// TestDecideTUN checks the hub's TUN decisions on a table alone: no
// server, no socket, no device.
func TestDecideTUN(t *testing.T) {
	routes := new(Routes[string])
	for p, port := range map[string]string{
		"10.77.0.11/32": "c1", "10.77.0.12/32": "c2", "192.168.50.0/24": "c2", "10.77.0.13/32": "down",
	} {
		routes.Insert(netip.MustParsePrefix(p), port)
	}
	ready := func(p string) bool { return p != "down" }
	a := netip.MustParseAddr
	tests := []struct {
		name     string
		from     string
		src, dst string
		to       string
		act      Action
		why      Reason
	}{
		{"to the server", "c1", "10.77.0.11", "10.77.0.1", "", ToDevice, 0},
		{"to another client", "c1", "10.77.0.11", "10.77.0.12", "c2", ToPort, 0},
		{"to a network behind a client", "c1", "10.77.0.11", "192.168.50.7", "c2", ToPort, 0},
		{"from a network behind the client", "c2", "192.168.50.7", "10.77.0.11", "c1", ToPort, 0},
		{"to a client not ready", "c1", "10.77.0.11", "10.77.0.13", "", ToDevice, 0},
		{"spoofed: another client's address", "c1", "10.77.0.12", "10.77.0.1", "", Drop, Spoofed},
		{"spoofed: nobody's address", "c1", "10.77.0.99", "10.77.0.1", "", Drop, Spoofed},
		{"loop", "c1", "10.77.0.11", "10.77.0.11", "", Drop, Loop},
		{"link-local source", "c1", "fe80::1", "ff02::2", "", Drop, LinkLocal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to, act, why := DecideTUNFromClient(routes, ready, tt.from, a(tt.src), a(tt.dst))
			if to != tt.to || act != tt.act || why != tt.why {
				t.Errorf("= %q, %d, %d; want %q, %d, %d", to, act, why, tt.to, tt.act, tt.why)
			}
		})
	}
	if to, act, _ := DecideTUNFromDevice(routes, ready, a("192.168.50.1")); to != "c2" || act != ToPort {
		t.Errorf("from the device to c2's network: %q, %d", to, act)
	}
	for _, dst := range []string{"10.77.0.99", "10.77.0.13"} {
		if _, act, why := DecideTUNFromDevice(routes, ready, a(dst)); act != Drop || why != NoRoute {
			t.Errorf("from the device to %s: %d, %d; want Drop, NoRoute", dst, act, why)
		}
	}
	// The server kernel's IGMP and MLD reports and router solicitations.
	for _, dst := range []string{"224.0.0.22", "ff02::16", "ff02::2"} {
		if _, act, why := DecideTUNFromDevice(routes, ready, a(dst)); act != Drop || why != LinkLocal {
			t.Errorf("from the device to %s: %d, %d; want Drop, LinkLocal", dst, act, why)
		}
	}
}

// TestDecideTAP checks the learning switch on a MAC table alone.
func TestDecideTAP(t *testing.T) {
	macs := NewMACs[string](time.Minute, 2)
	now := time.Unix(1e9, 0)
	m := func(b byte) packet.MAC { return packet.MAC{2, 0, 0, 0, 0, b} }
	bcast := packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	steps := []struct {
		name     string
		from     string
		src, dst packet.MAC
		to       string
		act      Action
		why      Reason
		learned  bool
	}{
		{"unknown: flood", "c1", m(1), m(2), "", Flood, 0, true},
		{"broadcast: flood", "local", m(2), bcast, "", Flood, 0, true},
		{"learned: to its port", "c1", m(1), m(2), "local", ToPort, 0, true},
		{"reply", "local", m(2), m(1), "c1", ToPort, 0, true},
		{"same segment: loop", "c1", m(3), m(1), "", Drop, Loop, false},
		{"table full: still switched", "c2", m(4), m(2), "local", ToPort, 0, false},
		{"a MAC moves port", "c2", m(1), m(2), "local", ToPort, 0, true},
		{"to the moved MAC", "local", m(2), m(1), "c2", ToPort, 0, true},
	}
	for _, st := range steps {
		to, act, why, learned := DecideTAP(macs, TAPPolicy[string]{Local: "local"}, st.from, st.src, st.dst, now)
		if to != st.to || act != st.act || why != st.why || learned != st.learned {
			t.Errorf("%s: = %q, %d, %d, learned %v; want %q, %d, %d, %v", st.name, to, act, why, learned, st.to, st.act, st.why, st.learned)
		}
	}
}

// tapStep is one frame through DecideTAP and what the switch must decide.
type tapStep struct {
	name     string
	at       time.Duration // after the test's start
	from     string
	src, dst packet.MAC
	to       string
	act      Action
	why      Reason
}

// runTAPSteps sends steps through one switch with policy p, in order.
func runTAPSteps(t *testing.T, macs *MACs[string], p TAPPolicy[string], steps []tapStep) {
	t.Helper()
	start := time.Unix(1e9, 0)
	for _, st := range steps {
		to, act, why, _ := DecideTAP(macs, p, st.from, st.src, st.dst, start.Add(st.at))
		if to != st.to || act != st.act || why != st.why {
			t.Errorf("%s: = %q, %d, %d; want %q, %d, %d", st.name, to, act, why, st.to, st.act, st.why)
		}
	}
}

// TestDecideTAPIsolate checks client isolation: clients reach the device's
// port and nothing else, while the device reaches every client.
func TestDecideTAPIsolate(t *testing.T) {
	m := func(b byte) packet.MAC { return packet.MAC{2, 0, 0, 0, 0, b} }
	bcast := packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	mcast := packet.MAC{0x33, 0x33, 0, 0, 0, 1}
	lan, a, b := m(1), m(0xa), m(0xb)
	isolated := []tapStep{
		{"device broadcast: every client", 0, "local", lan, bcast, "", Flood, 0},
		{"client broadcast: the device only", 0, "c1", a, bcast, "local", ToPort, 0},
		{"client multicast: the device only", 0, "c2", b, mcast, "local", ToPort, 0},
		{"client unknown unicast: the device only", 0, "c1", a, m(0x99), "local", ToPort, 0},
		{"client to the device's host", 0, "c1", a, lan, "local", ToPort, 0},
		{"device's host to a client", 0, "local", lan, a, "c1", ToPort, 0},
		{"client to another client", 0, "c1", a, b, "", Drop, Denied},
		{"and back", 0, "c2", b, a, "", Drop, Denied},
		{"own segment: still a loop", 0, "c1", m(0xc), a, "", Drop, Loop},
		{"device to the other client", 0, "local", lan, b, "c2", ToPort, 0},
	}
	runTAPSteps(t, NewMACs[string](time.Minute, 0), TAPPolicy[string]{Local: "local", Isolate: true}, isolated)

	// The same frames without isolation: switched as a plain switch does.
	plain := []tapStep{
		{"device broadcast", 0, "local", lan, bcast, "", Flood, 0},
		{"client broadcast: flood", 0, "c1", a, bcast, "", Flood, 0},
		{"client multicast: flood", 0, "c2", b, mcast, "", Flood, 0},
		{"client to another client", 0, "c1", a, b, "c2", ToPort, 0},
		{"and back", 0, "c2", b, a, "c1", ToPort, 0},
	}
	runTAPSteps(t, NewMACs[string](time.Minute, 0), TAPPolicy[string]{Local: "local"}, plain)
}

// TestDecideTAPPinMACs checks MAC pinning: a client cannot send with a MAC
// live on another port, the frame is neither learned nor forwarded, and the
// pin lasts as long as the entry does; the device's port is trusted.
func TestDecideTAPPinMACs(t *testing.T) {
	m := func(b byte) packet.MAC { return packet.MAC{2, 0, 0, 0, 0, b} }
	lan, a, b := m(1), m(0xa), m(0xb)
	pin := TAPPolicy[string]{Local: "local", PinMACs: true}
	steps := []tapStep{
		{"c1 learns a", 0, "c1", a, lan, "", Flood, 0},
		{"c2 learns b", 0, "c2", b, lan, "", Flood, 0},
		{"lan learned", 0, "local", lan, a, "c1", ToPort, 0},
		{"c2 sends as a: spoofed", time.Second, "c2", a, lan, "", Drop, Spoofed},
		{"a still on c1", time.Second, "local", lan, a, "c1", ToPort, 0},
		{"c2 sends as the lan host: spoofed", time.Second, "c2", lan, b, "", Drop, Spoofed},
		{"lan host still on the device", time.Second, "c1", a, lan, "local", ToPort, 0},
		// a was last seen at 1s (the frame just above), b at 0s.
		{"b aged out: c1 may take it", time.Minute + time.Second/2, "c1", b, lan, "local", ToPort, 0},
		{"b now on c1", time.Minute + time.Second/2, "local", lan, b, "c1", ToPort, 0},
		{"and c2 may not take it back", time.Minute + time.Second/2, "c2", b, lan, "", Drop, Spoofed},
		{"the device is trusted: a moves to it", time.Minute + time.Second/2, "local", a, b, "c1", ToPort, 0},
		{"to a: the device", time.Minute + time.Second/2, "c1", b, a, "local", ToPort, 0},
		{"c1 may not take a back", time.Minute + time.Second/2, "c1", a, lan, "", Drop, Spoofed},
	}
	macs := NewMACs[string](time.Minute, 0)
	runTAPSteps(t, macs, pin, steps)

	macs.RemovePort("c1")
	runTAPSteps(t, macs, pin, []tapStep{
		{"c1 gone: c2 may take b", time.Minute + time.Second, "c2", b, lan, "local", ToPort, 0},
		{"b on c2", time.Minute + time.Second, "local", lan, b, "c2", ToPort, 0},
	})

	// Without pinning a MAC moves at once, as a host moving between sites
	// does.
	runTAPSteps(t, NewMACs[string](time.Minute, 0), TAPPolicy[string]{Local: "local"}, []tapStep{
		{"c1 learns a", 0, "c1", a, lan, "", Flood, 0},
		{"c2 sends as a", time.Second, "c2", a, lan, "", Flood, 0},
		{"a moved to c2", time.Second, "local", lan, a, "c2", ToPort, 0},
	})

	// Isolation and pinning together: pinning is checked first.
	runTAPSteps(t, NewMACs[string](time.Minute, 0), TAPPolicy[string]{Local: "local", Isolate: true, PinMACs: true}, []tapStep{
		{"c1 learns a", 0, "c1", a, lan, "local", ToPort, 0},
		{"c2 as a, to the lan: spoofed", 0, "c2", a, lan, "", Drop, Spoofed},
		{"a still on c1", 0, "local", lan, a, "c1", ToPort, 0},
	})
}

// TestDecideTAPNoAlloc: a decision with a policy allocates nothing, as the
// data path needs.
func TestDecideTAPNoAlloc(t *testing.T) {
	type port struct{ int }
	local, c1, c2 := new(port), new(port), new(port)
	macs := NewMACs[*port](time.Minute, 0)
	p := TAPPolicy[*port]{Local: local, Isolate: true, PinMACs: true}
	now := time.Now()
	a, b := packet.MAC{2, 0, 0, 0, 0, 0xa}, packet.MAC{2, 0, 0, 0, 0, 0xb}
	DecideTAP(macs, p, c1, a, b, now)
	DecideTAP(macs, p, c2, b, a, now)
	if n := testing.AllocsPerRun(100, func() {
		DecideTAP(macs, p, c1, a, b, now) // policy
		DecideTAP(macs, p, c2, a, b, now) // spoofed
		DecideTAP(macs, p, local, packet.MAC{2, 0, 0, 0, 0, 1}, a, now)
	}); n != 0 {
		t.Errorf("DecideTAP allocates %v times per run, want 0", n)
	}
}
