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
		to, act, why, learned := DecideTAP(macs, st.from, st.src, st.dst, now)
		if to != st.to || act != st.act || why != st.why || learned != st.learned {
			t.Errorf("%s: = %q, %d, %d, learned %v; want %q, %d, %d, %v", st.name, to, act, why, learned, st.to, st.act, st.why, st.learned)
		}
	}
}
