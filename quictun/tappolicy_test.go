package quictun

import (
	"crypto/tls"
	"errors"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
)

// ethFrame returns a 60-byte ARP-typed Ethernet frame from src to dst.
func ethFrame(dst, src packet.MAC) []byte {
	f := make([]byte, 60)
	copy(f, dst[:])
	copy(f[6:], src[:])
	f[12], f[13] = 0x08, 0x06
	return f
}

// countingDevice is a discardDevice that counts the frames written to it.
type countingDevice struct {
	*discardDevice
	written atomic.Int64
}

func (d *countingDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.written.Add(int64(len(bufs)))
	return len(bufs), nil
}

// TestTAPIsolation runs frames through the server's TAP paths with
// IsolateClients: a client's broadcast reaches the device and no other
// client, the device's broadcast reaches every client, and switching it
// off live floods a client's broadcast to the others again.
func TestTAPIsolation(t *testing.T) {
	s, c1 := benchHub(t, device.TAP)
	c1.log = s.log
	dev := &countingDevice{discardDevice: newDiscard(device.TAP)}
	s.dev = dev
	c2 := addSession(s, "c2", "10.77.0.12/24")
	if err := s.SetTAPPolicy(true, true); err != nil {
		t.Fatal(err)
	}
	bcast := packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	a, b, lan := packet.MAC{2, 0, 0, 0, 0, 0xa}, packet.MAC{2, 0, 0, 0, 0, 0xb}, packet.MAC{2, 0, 0, 0, 0, 1}
	drain := func(ss *session) int {
		n := 0
		ss.queue.drainAll(func(pb *packetBuf) { s.bufs.put(pb); n++ })
		return n
	}

	s.inboundTAP(c1, ethFrame(bcast, a))
	if got := dev.written.Load(); got != 1 {
		t.Errorf("c1's broadcast: %d frames written to the device, want 1", got)
	}
	if n := drain(c2); n != 0 {
		t.Errorf("c1's broadcast reached c2 (%d frames) with clients isolated", n)
	}

	pb := s.bufs.get()
	pb.n = copy(pb.data[headroom:], ethFrame(bcast, lan))
	s.forwardTAP(pb)
	if n1, n2 := drain(c1), drain(c2); n1 != 1 || n2 != 1 {
		t.Errorf("the device's broadcast reached c1 %d and c2 %d times, want 1 and 1", n1, n2)
	}

	s.inboundTAP(c2, ethFrame(a, b)) // to c1's MAC: policy
	if n := drain(c1); n != 0 || c2.Dropped(DropPolicy) != 1 {
		t.Errorf("c2 → c1 isolated: c1 got %d, c2's policy drops %d; want 0 and 1", n, c2.Dropped(DropPolicy))
	}

	if err := s.SetTAPPolicy(false, false); err != nil {
		t.Fatal(err)
	}
	s.inboundTAP(c1, ethFrame(bcast, a))
	if n := drain(c2); n != 1 {
		t.Errorf("not isolated: c1's broadcast reached c2 %d times, want 1", n)
	}
	if got := dev.written.Load(); got != 2 {
		t.Errorf("not isolated: %d frames written to the device in all, want 2", got)
	}
}

// TestTAPPolicyTUN: the TAP switch's policy is refused on a TUN server,
// naming the field, at start and live.
func TestTAPPolicyTUN(t *testing.T) {
	s, _ := benchHub(t, device.TUN)
	var ce *ConfigError
	if err := s.SetTAPPolicy(true, false); !errors.As(err, &ce) || ce.Field != "IsolateClients" {
		t.Errorf("SetTAPPolicy(isolate) on TUN: %v, want a ConfigError for IsolateClients", err)
	}
	if err := s.SetTAPPolicy(false, true); !errors.As(err, &ce) || ce.Field != "PinMACs" {
		t.Errorf("SetTAPPolicy(pin) on TUN: %v, want a ConfigError for PinMACs", err)
	}
	if p := s.tapPolicy(); p.Isolate || p.PinMACs {
		t.Errorf("a refused SetTAPPolicy changed the policy: %+v", p)
	}
	cfg := ServerConfig{Mode: device.TUN, TLS: &tls.Config{}, Listen: ":0",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")}, IsolateClients: true}
	if err := cfg.Validate(); !errors.As(err, &ce) || ce.Field != "IsolateClients" {
		t.Errorf("Validate with IsolateClients on TUN: %v, want a ConfigError for IsolateClients", err)
	}
}

// TestTAPPolicyNoAlloc keeps the TAP paths free of allocations with the
// policy on: a client's frame to the device, and one dropped as policy.
func TestTAPPolicyNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items on purpose)")
	}
	s, c1 := benchHub(t, device.TAP)
	c2 := addSession(s, "c2", "10.77.0.12/24")
	if err := s.SetTAPPolicy(true, true); err != nil {
		t.Fatal(err)
	}
	a, b, lan := packet.MAC{2, 0, 0, 0, 0, 0xa}, packet.MAC{2, 0, 0, 0, 0, 0xb}, packet.MAC{2, 0, 0, 0, 0, 1}
	s.macs.Learn(lan, s.local, time.Now())
	s.macs.Learn(b, c2, time.Now())
	toLAN, toB := ethFrame(lan, a), ethFrame(b, a)
	if n := testing.AllocsPerRun(1000, func() {
		s.inboundTAP(c1, toLAN)
		s.inboundTAP(c1, toB)
	}); n != 0 {
		t.Errorf("%v allocs per pair of frames, want 0", n)
	}
	if c1.Dropped(DropPolicy) == 0 || c2.queue.len() != 0 {
		t.Errorf("policy drops %d, c2 handed %d frames; want some and none", c1.Dropped(DropPolicy), c2.queue.len())
	}
}

// TestTAPPinnedReconnect: under PinMACs another client may not use a
// client's MAC, but the client itself, reconnecting with the same
// identity, may at once (its old session's entries leave with it).
func TestTAPPinnedReconnect(t *testing.T) {
	s := startServer(t, device.TAP, ServerConfig{PinMACs: true})
	macA := []byte{0x02, 0, 0, 0, 0, 0xa}
	frame := func(src []byte, tag string) []byte {
		f := make([]byte, 60)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		copy(f[6:], src)
		f[12], f[13] = 0x88, 0xb5 // local experimental ethertype
		copy(f[14:], tag)
		return f
	}
	first := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	first.peer.write(t, frame(macA, "first"))
	if s.peer.next(5*time.Second, hasPayload([]byte("first"))) == nil {
		t.Fatal("client1's broadcast did not reach the server's device")
	}
	other := startClient(t, s, "client2", "ca", ClientConfig{}, true)
	other.peer.write(t, frame(macA, "other"))
	if s.peer.next(300*time.Millisecond, hasPayload([]byte("other"))) != nil {
		t.Error("client2 sent with client1's MAC and its frame reached the device")
	}
	again := startClient(t, s, "client1", "ca", ClientConfig{}, true)
	again.peer.write(t, frame(macA, "again"))
	if s.peer.next(5*time.Second, hasPayload([]byte("again"))) == nil {
		t.Error("client1 reconnected: its first frame with its own MAC did not reach the device")
	}
	if n := s.session("client2").Dropped(DropSpoofed); n != 1 {
		t.Errorf("client2's spoofed drops: %d, want 1", n)
	}
}
