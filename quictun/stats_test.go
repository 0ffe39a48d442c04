package quictun

import (
	"encoding/binary"
	"maps"
	"net/netip"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/hub"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// addSession adds a ready session named name owning addr to a hub built
// by benchHub.
func addSession(s *Server, name, addr string) *session {
	ss := &session{srv: s, name: name, peerMTU: s.cfg.MTU, maxDatagram: MaxDatagramPayload(DefaultPacketSize),
		queue: newQueue[*packetBuf](64), id: qcrypto.Identity{Name: name}, scratch: make([][]byte, 1)}
	ss.addrs = []netip.Prefix{netip.MustParsePrefix(addr)}
	ss.log = s.log
	ss.ready.Store(true)
	s.sessions[name] = ss
	for _, p := range ss.allowed() {
		s.routes.Insert(p, ss)
	}
	return ss
}

// fragment returns a FRAGMENT datagram.
func fragment(id uint16, index, count byte, piece []byte) []byte {
	dg := []byte{wire.TypeFragment, 0, 0, index, count}
	binary.BigEndian.PutUint16(dg[1:], id)
	return append(dg, piece...)
}

// icmpError4 returns an IPv4 ICMP Destination Unreachable of n bytes with
// DF set: a packet that is never answered with another ICMP error.
func icmpError4(src, dst string, n int) []byte {
	b := udp4(src, dst, make([]byte, n-28), true)
	b[9] = 1 // ICMP
	setIPv4Checksum(b)
	b[20], b[21] = 3, 4 // destination unreachable, fragmentation needed
	return b
}

// TestDropReasons provokes each drop reason the hub's decisions and the
// datagram decoder can meet and checks that it, and only it, was counted.
// (Reasons that need a socket or a device are provoked where those are
// tested: transient_send in internal/udp's conn_linux_test.go (see also
// TestCountersSocket), device_error and
// oversize on device writes in devbatch_test.go, queue_full and send_error
// in tunnel_test.go. inbound_full, no_conn and device_read have no test
// yet.)
func TestDropReasons(t *testing.T) {
	tests := []struct {
		name    string
		mode    device.Kind
		want    DropReason
		onLocal bool // counted on the server's own counters, not the session's
		do      func(t *testing.T, s *Server, c1, c2 *session)
	}{
		{"empty datagram", device.TUN, DropMalformedDatagram, false, func(t *testing.T, s *Server, c1, c2 *session) {
			decodeDatagram(nil, newReassembler(0, 0, nil), &c1.Counters)
		}},
		{"reserved type", device.TUN, DropMalformedDatagram, false, func(t *testing.T, s *Server, c1, c2 *session) {
			decodeDatagram([]byte{0x3f, 1, 2}, newReassembler(0, 0, nil), &c1.Counters)
		}},
		{"fragment short", device.TUN, DropFragmentShort, false, func(t *testing.T, s *Server, c1, c2 *session) {
			decodeDatagram([]byte{wire.TypeFragment, 0, 1}, newReassembler(0, 0, nil), &c1.Counters)
		}},
		{"fragment header", device.TUN, DropFragmentHeader, false, func(t *testing.T, s *Server, c1, c2 *session) {
			decodeDatagram(fragment(1, 3, 2, []byte{1}), newReassembler(0, 0, nil), &c1.Counters)
		}},
		{"fragment inconsistent", device.TUN, DropFragmentInconsistent, false, func(t *testing.T, s *Server, c1, c2 *session) {
			r := newReassembler(0, 0, nil)
			decodeDatagram(fragment(1, 0, 2, make([]byte, 100)), r, &c1.Counters)
			decodeDatagram(fragment(1, 1, 3, make([]byte, 100)), r, &c1.Counters)
		}},
		{"fragment too large", device.TUN, DropFragmentTooLarge, false, func(t *testing.T, s *Server, c1, c2 *session) {
			decodeDatagram(fragment(1, 0, 16, make([]byte, 4400)), newReassembler(0, 0, nil), &c1.Counters)
		}},
		{"fragment expired", device.TUN, DropFragmentExpired, false, func(t *testing.T, s *Server, c1, c2 *session) {
			r := newReassembler(1, time.Minute, &c1.Counters)
			decodeDatagram(fragment(1, 0, 2, make([]byte, 100)), r, &c1.Counters)
			decodeDatagram(fragment(2, 0, 2, make([]byte, 100)), r, &c1.Counters) // evicts id 1
		}},
		{"bad ip", device.TUN, DropBadIP, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.inboundTUN(c1, []byte{0x45, 0, 0})
		}},
		{"bad ip from the device", device.TUN, DropBadIP, true, func(t *testing.T, s *Server, c1, c2 *session) {
			pb := s.bufs.get()
			pb.n = copy(pb.data[headroom:], []byte{0x60, 0})
			s.forwardTUN(pb)
		}},
		{"bad ethernet", device.TAP, DropBadEthernet, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.inboundTAP(c1, make([]byte, 10))
		}},
		{"spoofed", device.TUN, DropSpoofed, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.inboundTUN(c1, udp4("10.77.0.99", "10.77.0.1", []byte("x"), false))
		}},
		{"no route", device.TUN, DropNoRoute, true, func(t *testing.T, s *Server, c1, c2 *session) {
			pb := s.bufs.get()
			pb.n = copy(pb.data[headroom:], udp4("10.77.0.1", "10.99.0.1", []byte("x"), false))
			s.forwardTUN(pb)
		}},
		{"link local", device.TUN, DropLinkLocal, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.inboundTUN(c1, udp6("fe80::1", "ff02::2", []byte("x")))
		}},
		{"loop", device.TUN, DropLoop, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.inboundTUN(c1, udp4("10.77.0.11", "10.77.0.11", []byte("x"), false))
		}},
		{"oversize client to client", device.TUN, DropOversize, false, func(t *testing.T, s *Server, c1, c2 *session) {
			// What a client's 8000-byte packet in FRAGMENT pieces becomes
			// once reassembled: larger than the hub's buffers.
			s.inboundTUN(c1, udp4("10.77.0.11", "10.77.0.12", make([]byte, 8000), false))
		}},
		{"oversize frame to a session", device.TAP, DropOversize, false, func(t *testing.T, s *Server, c1, c2 *session) {
			m2 := packet.MAC{2, 0, 0, 0, 0, 2}
			s.macs.Learn(m2, c2, time.Now())
			frame := make([]byte, 8000)
			copy(frame, m2[:])
			copy(frame[6:], []byte{2, 0, 0, 0, 0, 1})
			frame[12], frame[13] = 0x08, 0x00
			s.inboundTAP(c1, frame)
		}},
		{"oversize frame flooded", device.TAP, DropOversize, false, func(t *testing.T, s *Server, c1, c2 *session) {
			frame := make([]byte, 8000)
			copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06})
			s.inboundTAP(c1, frame)
		}},
		{"too big, not answerable", device.TUN, DropTooBigUnanswered, true, func(t *testing.T, s *Server, c1, c2 *session) {
			c2.peerMTU = 1000
			pb := s.bufs.get()
			pb.n = copy(pb.data[headroom:], icmpError4("10.77.0.1", "10.77.0.12", 1200))
			s.forwardTUN(pb)
		}},
		{"queue full", device.TUN, DropQueueFull, false, func(t *testing.T, s *Server, c1, c2 *session) {
			for i := 0; i <= c1.queue.max; i++ {
				pb := s.bufs.get()
				pb.n = copy(pb.data[headroom:], udp4("10.77.0.1", "10.77.0.11", []byte("x"), false))
				s.forwardTUN(pb)
			}
		}},
		{"spoofed MAC", device.TAP, DropSpoofed, false, func(t *testing.T, s *Server, c1, c2 *session) {
			if err := s.SetTAPPolicy(false, true); err != nil {
				t.Fatal(err)
			}
			s.macs.Learn(packet.MAC{2, 0, 0, 0, 0, 2}, c2, time.Now())
			// c1 broadcasting as c2: neither learned nor flooded to c2.
			s.inboundTAP(c1, ethFrame(packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, packet.MAC{2, 0, 0, 0, 0, 2}))
		}},
		{"policy: isolated clients", device.TAP, DropPolicy, false, func(t *testing.T, s *Server, c1, c2 *session) {
			if err := s.SetTAPPolicy(true, false); err != nil {
				t.Fatal(err)
			}
			s.macs.Learn(packet.MAC{2, 0, 0, 0, 0, 2}, c2, time.Now())
			s.inboundTAP(c1, ethFrame(packet.MAC{2, 0, 0, 0, 0, 2}, packet.MAC{2, 0, 0, 0, 0, 1}))
		}},
		{"policy", device.TUN, DropPolicy, false, func(t *testing.T, s *Server, c1, c2 *session) {
			if err := s.SetRules([]Rule{{Action: Deny, From: Endpoint{Kind: NameEndpoint, Name: "c1"}}}, Allow); err != nil {
				t.Fatal(err)
			}
			s.inboundTUN(c1, udp4("10.77.0.11", "10.77.0.12", []byte("x"), false))
		}},
		{"mac table full", device.TAP, DropMACTableFull, false, func(t *testing.T, s *Server, c1, c2 *session) {
			s.macs = hub.NewMACs[*session](time.Minute, 1)
			for i := byte(1); i <= 2; i++ {
				frame := make([]byte, 60)
				copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, i, 0x08, 0x06})
				s.inboundTAP(c1, frame)
			}
			c2.queue.drainAll(s.bufs.put) // the broadcasts, flooded as they should be
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c1 := benchHub(t, tt.mode)
			c1.log = s.log
			c2 := addSession(s, "c2", "10.77.0.12/24")
			tt.do(t, s, c1, c2)
			counted := &c1.Counters
			if tt.onLocal {
				counted = &s.Counters
			}
			if got := counted.Dropped(tt.want); got < 1 {
				t.Errorf("%s counted %d times, want at least 1", tt.want, got)
			}
			for _, c := range []*Counters{&s.Counters, &c1.Counters, &c2.Counters} {
				for _, r := range DropReasons() {
					if n := c.Dropped(r); n != 0 && (r != tt.want || c != counted) {
						t.Errorf("also counted %s %d times", r, n)
					}
				}
			}
			if n := c2.queue.len(); n != 0 {
				t.Errorf("c2 was handed %d packets, want none", n)
			}
		})
	}
}

// TestDropReasonNames checks that every reason has a distinct name, as
// metrics and status need.
func TestDropReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range DropReasons() {
		n := r.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Errorf("reason %d has name %q (empty, unknown or repeated)", r, n)
		}
		seen[n] = true
	}
	var c Counters
	c.Drop(DropQueueFull)
	if c.Snapshot()["drop_queue_full"] != 1 || c.DroppedTotal() != 1 {
		t.Errorf("snapshot %v, total %d; want drop_queue_full 1, total 1", c.Snapshot(), c.DroppedTotal())
	}
	if n := testing.AllocsPerRun(100, func() { c.Drop(DropNoRoute) }); n != 0 {
		t.Errorf("Drop allocates %v times, want 0", n)
	}
}

// TestCountersSocket: what the UDP socket counts (package udp, into the
// udp.Counters embedded here) shows in Counters as if counted by the core:
// transient sends as DropTransientSend in every view of the drops.
func TestCountersSocket(t *testing.T) {
	var c Counters
	sc := c.socket()
	sc.TransientSend.Add(2)
	sc.RxHeldBack.Add(3)
	sc.RxGateTimeouts.Add(1)
	c.Drop(DropNoConn)
	if got := c.Dropped(DropTransientSend); got != 2 {
		t.Errorf("Dropped(DropTransientSend) = %d, want 2", got)
	}
	if d := DropCounts(c.Drops()); d.Get(DropTransientSend) != 2 || d.Get(DropNoConn) != 1 || d.Total() != 3 {
		t.Errorf("Drops: transient_send %d, no_conn %d, total %d; want 2, 1, 3", d.Get(DropTransientSend), d.Get(DropNoConn), d.Total())
	}
	if got := c.DroppedTotal(); got != 3 {
		t.Errorf("DroppedTotal = %d, want 3", got)
	}
	want := map[string]uint64{"drop_transient_send": 2, "drop_no_conn": 1, "rx_held_back": 3, "rx_gate_timeouts": 1}
	if got := c.Snapshot(); !maps.Equal(got, want) {
		t.Errorf("Snapshot = %v, want %v", got, want)
	}
}
