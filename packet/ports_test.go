package packet

import "testing"

func TestPorts(t *testing.T) {
	tcp := []byte{0x1f, 0x90, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x02, 0, 0, 0, 0, 0, 0}
	echo := []byte{icmpEchoRequest, 0, 0, 0, 0x12, 0x34, 0, 1}
	tests := []struct {
		name     string
		pkt      []byte
		src, dst uint16
		ok       bool
	}{
		{"tcp", buildTestIPv4("10.0.0.1", "10.0.0.2", protoTCP, 0, tcp), 8080, 22, true},
		{"udp", buildTestIPv4("10.0.0.1", "10.0.0.2", protoUDP, 0, []byte{0, 53, 0x30, 0x39, 0, 8, 0, 0}), 53, 12345, true},
		{"udp v6 after an extension header", buildTestIPv6("fd00::1", "fd00::2", protoDestOpts, extHdr(protoUDP), []byte{0, 53, 0, 54, 0, 8, 0, 0}), 53, 54, true},
		{"icmp echo request", buildTestIPv4("10.0.0.1", "10.0.0.2", protoICMP, 0, echo), 0x1234, 0, true},
		{"icmp echo reply", buildTestIPv4("10.0.0.1", "10.0.0.2", protoICMP, 0, []byte{icmpEchoReply, 0, 0, 0, 0, 7, 0, 1}), 0, 7, true},
		{"icmpv6 echo request", buildTestIPv6("fd00::1", "fd00::2", protoICMPv6, nil, []byte{icmpv6EchoRequest, 0, 0, 0, 0, 9, 0, 1}), 9, 0, true},
		{"icmp unreachable", buildTestIPv4("10.0.0.1", "10.0.0.2", protoICMP, 0, []byte{3, 1, 0, 0, 0, 0, 0, 0}), 0, 0, false},
		{"icmpv6 echo type on ICMPv4", buildTestIPv4("10.0.0.1", "10.0.0.2", protoICMP, 0, []byte{icmpv6EchoRequest, 0, 0, 0, 0, 9, 0, 1}), 0, 0, false},
		{"tcp cut short", buildTestIPv4("10.0.0.1", "10.0.0.2", protoTCP, 0, []byte{0, 1, 0}), 0, 0, false},
		{"non-first fragment", buildTestIPv4("10.0.0.1", "10.0.0.2", protoUDP, 10, []byte{0, 53, 0, 54, 0, 8, 0, 0}), 0, 0, false},
		{"other protocol", buildTestIPv4("10.0.0.1", "10.0.0.2", 47, 0, []byte{0, 53, 0, 54}), 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok := ParseIP(tt.pkt)
			if !ok {
				t.Fatal("ParseIP failed")
			}
			src, dst, ok := Ports(tt.pkt, info)
			if src != tt.src || dst != tt.dst || ok != tt.ok {
				t.Errorf("Ports = %d, %d, %v; want %d, %d, %v", src, dst, ok, tt.src, tt.dst, tt.ok)
			}
		})
	}
}
