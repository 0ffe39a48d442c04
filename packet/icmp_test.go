package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

func TestBuildTooBig4(t *testing.T) {
	big := make([]byte, 1400)
	for i := range big {
		big[i] = byte(i)
	}
	tests := []struct {
		name    string
		pkt     []byte
		mtu     int
		outSize int
		quote   int // bytes of pkt quoted
	}{
		{"large DF packet", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, big), 1280, 1500, 548},
		{"small DF packet", buildTestIPv4("10.77.0.11", "192.168.50.7", protoUDP, 0x4000, big[:100]), 68, 1500, 120},
		{"padded packet quotes only the packet", append(buildTestIPv4("10.77.0.11", "10.77.0.12", protoUDP, 0x4000, big[:30]), 1, 2, 3), 576, 1500, 50},
		{"first fragment", buildTestIPv4("10.77.0.11", "192.168.50.7", protoUDP, 0x6000, big[:700]), 1000, 1500, 548},
		{"ICMP echo request", buildTestIPv4("10.77.0.11", "192.168.50.7", protoICMP, 0x4000, append([]byte{8, 0, 0, 0, 0, 1, 0, 1}, big[:1000]...)), 1000, 1500, 548},
		{"short out buffer", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, big), 1280, 100, 72},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, tt.outSize)
			n, ok := BuildTooBig(out, tt.pkt, tt.mtu)
			if !ok {
				t.Fatal("BuildTooBig refused")
			}
			if n != IPv4HeaderLen+icmpHeaderLen+tt.quote {
				t.Fatalf("length %d, want %d", n, IPv4HeaderLen+icmpHeaderLen+tt.quote)
			}
			ans := out[:n]
			h, err := ipv4.ParseHeader(ans)
			if err != nil {
				t.Fatalf("ipv4.ParseHeader: %v", err)
			}
			in, _ := ipv4.ParseHeader(tt.pkt)
			if h.Version != 4 || h.Len != 20 || h.TotalLen != n || h.TTL != 64 || h.Protocol != 1 ||
				!h.Src.Equal(in.Dst) || !h.Dst.Equal(in.Src) || h.Flags != 0 || h.FragOff != 0 {
				t.Errorf("IP header %+v; answering %v → %v", h, in.Src, in.Dst)
			}
			if refChecksum(ans[:20]) != 0xffff {
				t.Errorf("bad IPv4 header checksum %#04x", binary.BigEndian.Uint16(ans[10:12]))
			}
			if refChecksum(ans[20:]) != 0xffff {
				t.Errorf("bad ICMP checksum %#04x", binary.BigEndian.Uint16(ans[22:24]))
			}
			m, err := icmp.ParseMessage(1, ans[20:])
			if err != nil {
				t.Fatalf("icmp.ParseMessage: %v", err)
			}
			du, isDU := m.Body.(*icmp.DstUnreach)
			if m.Type != ipv4.ICMPTypeDestinationUnreachable || m.Code != 4 || !isDU {
				t.Fatalf("message %v code %d body %T", m.Type, m.Code, m.Body)
			}
			if got := int(binary.BigEndian.Uint16(ans[26:28])); got != tt.mtu {
				t.Errorf("next-hop MTU %d, want %d", got, tt.mtu)
			}
			if !bytes.Equal(du.Data, tt.pkt[:tt.quote]) {
				t.Errorf("quoted %d bytes that differ from the packet's first %d", len(du.Data), tt.quote)
			}
		})
	}
}

func TestBuildTooBig6(t *testing.T) {
	big := make([]byte, 1500)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name  string
		pkt   []byte
		mtu   int
		quote int
	}{
		{"large packet", buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, big), 1280, 1232},
		{"small packet", buildTestIPv6("fd77::b", "fd50::7", protoUDP, nil, big[:60]), 1400, 100},
		{"with extension headers", buildTestIPv6("fd77::b", "fd50::7", protoHopByHop, extHdr(protoUDP), big[:1300]), 1300, 1232},
		{"first fragment", buildTestIPv6("fd77::b", "fd50::7", protoFragment, fragHdr(protoUDP, 0, true), big[:1300]), 1300, 1232},
		{"echo request", buildTestIPv6("fd77::b", "fd50::7", protoICMPv6, nil, append([]byte{128, 0, 0, 0, 0, 1, 0, 1}, big[:1300]...)), 1280, 1232},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, 2000)
			n, ok := BuildTooBig(out, tt.pkt, tt.mtu)
			if !ok {
				t.Fatal("BuildTooBig refused")
			}
			if n != ipv6HeaderLen+icmpHeaderLen+tt.quote {
				t.Fatalf("length %d, want %d", n, ipv6HeaderLen+icmpHeaderLen+tt.quote)
			}
			ans := out[:n]
			h, err := ipv6.ParseHeader(ans)
			if err != nil {
				t.Fatalf("ipv6.ParseHeader: %v", err)
			}
			in, _ := ipv6.ParseHeader(tt.pkt)
			if h.Version != 6 || h.PayloadLen != n-40 || h.NextHeader != 58 || h.HopLimit != 64 ||
				!h.Src.Equal(in.Dst) || !h.Dst.Equal(in.Src) || h.TrafficClass != 0 || h.FlowLabel != 0 {
				t.Errorf("IPv6 header %+v; answering %v → %v", h, in.Src, in.Dst)
			}
			src, _ := netip.AddrFromSlice(h.Src)
			dst, _ := netip.AddrFromSlice(h.Dst)
			if refChecksum(refPseudoHeader(src, dst, 58, n-40), ans[40:]) != 0xffff {
				t.Errorf("bad ICMPv6 checksum %#04x", binary.BigEndian.Uint16(ans[42:44]))
			}
			m, err := icmp.ParseMessage(58, ans[40:])
			if err != nil {
				t.Fatalf("icmp.ParseMessage: %v", err)
			}
			ptb, isPTB := m.Body.(*icmp.PacketTooBig)
			if m.Type != ipv6.ICMPTypePacketTooBig || m.Code != 0 || !isPTB {
				t.Fatalf("message %v code %d body %T", m.Type, m.Code, m.Body)
			}
			if ptb.MTU != tt.mtu {
				t.Errorf("MTU %d, want %d", ptb.MTU, tt.mtu)
			}
			if !bytes.Equal(ptb.Data, tt.pkt[:tt.quote]) {
				t.Errorf("quoted %d bytes that differ from the packet's first %d", len(ptb.Data), tt.quote)
			}
			// x/net computes the checksum itself when marshalling with the
			// pseudo-header: it must come out byte for byte the same.
			again, err := (&icmp.Message{Type: ipv6.ICMPTypePacketTooBig, Body: ptb}).Marshal(icmp.IPv6PseudoHeader(h.Src, h.Dst))
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(again, ans[40:]) {
				t.Errorf("x/net marshals checksum %#04x, we wrote %#04x", binary.BigEndian.Uint16(again[2:4]), binary.BigEndian.Uint16(ans[42:44]))
			}
		})
	}
}

func TestBuildTooBigRefuses(t *testing.T) {
	p := make([]byte, 1400)
	icmp4 := func(typ byte) []byte {
		return buildTestIPv4("10.77.0.11", "192.168.50.7", protoICMP, 0x4000, append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, p[:600]...))
	}
	icmp6 := func(typ byte) []byte {
		return buildTestIPv6("fd77::b", "fd50::7", protoICMPv6, nil, append([]byte{typ, 0, 0, 0, 0, 0, 0, 0}, p[:1300]...))
	}
	tcp4 := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, p)
	tcp6 := buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, p)
	tests := []struct {
		name string
		pkt  []byte
		mtu  int
	}{
		{"malformed", tcp4[:30], 1280},
		{"unknown version", append([]byte{0x70}, tcp4[1:]...), 1280},
		{"v4 without DF", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0, p), 1280},
		{"v4 non-first fragment", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000|100, p), 1280},
		{"v4 dest unreachable", icmp4(3), 1280},
		{"v4 source quench", icmp4(4), 1280},
		{"v4 redirect", icmp4(5), 1280},
		{"v4 time exceeded", icmp4(11), 1280},
		{"v4 parameter problem", icmp4(12), 1280},
		{"v4 ICMP without a type byte", buildTestIPv4("10.77.0.11", "192.168.50.7", protoICMP, 0x4000, nil), 1280},
		{"v4 to broadcast", buildTestIPv4("10.77.0.11", "255.255.255.255", protoUDP, 0x4000, p), 1280},
		{"v4 to multicast", buildTestIPv4("10.77.0.11", "239.1.2.3", protoUDP, 0x4000, p), 1280},
		{"v4 from unspecified", buildTestIPv4("0.0.0.0", "192.168.50.7", protoUDP, 0x4000, p), 1280},
		{"v4 from multicast", buildTestIPv4("224.0.0.5", "192.168.50.7", protoUDP, 0x4000, p), 1280},
		{"v4 MTU below 68", tcp4, 67},
		{"v4 MTU above 65535", tcp4, 70000},
		{"v6 destination unreachable", icmp6(1), 1280},
		{"v6 packet too big", icmp6(2), 1280},
		{"v6 time exceeded", icmp6(3), 1280},
		{"v6 error type 127", icmp6(127), 1280},
		{"v6 non-first fragment", buildTestIPv6("fd77::b", "fd50::7", protoFragment, fragHdr(protoTCP, 8, true), p), 1280},
		{"v6 to multicast", buildTestIPv6("fd77::b", "ff02::1", protoUDP, nil, p), 1280},
		{"v6 from unspecified", buildTestIPv6("::", "fd50::7", protoUDP, nil, p), 1280},
		{"v6 from multicast", buildTestIPv6("ff05::2", "fd50::7", protoUDP, nil, p), 1280},
		{"v6 MTU below 1280", tcp6, 1279},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := make([]byte, 1500)
			if n, ok := BuildTooBig(out, tt.pkt, tt.mtu); ok {
				t.Errorf("BuildTooBig answered (%d bytes), want refusal", n)
			}
		})
	}
	// Informational messages are answered.
	out := make([]byte, 1500)
	if _, ok := BuildTooBig(out, icmp4(8), 1000); !ok {
		t.Error("v4 echo request not answered")
	}
	if _, ok := BuildTooBig(out, icmp6(128), 1280); !ok {
		t.Error("v6 echo request not answered")
	}
	if _, ok := BuildTooBig(out[:35], tcp4, 1000); ok {
		t.Error("answered into a buffer too small for 8 quoted bytes")
	}
}

func TestBuildTooBigNoAlloc(t *testing.T) {
	p4 := buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, make([]byte, 1400))
	p6 := buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, make([]byte, 1400))
	out := make([]byte, 1500)
	if n := testing.AllocsPerRun(100, func() {
		BuildTooBig(out, p4, 1280)
		BuildTooBig(out, p6, 1280)
	}); n != 0 {
		t.Errorf("BuildTooBig allocates %v times per run, want 0", n)
	}
}

func BenchmarkBuildTooBig(b *testing.B) {
	for _, tc := range []struct {
		name string
		pkt  []byte
	}{
		{"v4", buildTestIPv4("10.77.0.11", "192.168.50.7", protoTCP, 0x4000, make([]byte, 1400))},
		{"v6", buildTestIPv6("fd77::b", "fd50::7", protoTCP, nil, make([]byte, 1400))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			out := make([]byte, 1500)
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := BuildTooBig(out, tc.pkt, 1280); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
