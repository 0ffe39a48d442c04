package device

import (
	"net"
	"net/netip"
	"testing"
)

func TestIPLength(t *testing.T) {
	v4 := udp4(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), make([]byte, 100)) // 128 bytes
	v6 := make([]byte, 40+30)
	v6[0] = 0x60
	v6[5] = 30
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	vlan := append([]byte{0x08, 0x00}, v4...) // inner type + packet, after the tag's TCI
	tagged := ether(mac, mac, 0x8100, append([]byte{0, 5}, vlan...))
	tests := []struct {
		name string
		kind Kind
		p    []byte
		want int
	}{
		{"tun ipv4", TUN, v4, 128},
		{"tun ipv4 cut", TUN, v4[:60], 128},
		{"tun ipv6", TUN, v6, 70},
		{"tun garbage", TUN, []byte{0x00, 1, 2, 3}, 0},
		{"tun empty", TUN, nil, 0},
		{"tun short ipv4", TUN, v4[:3], 0},
		{"tap ipv4", TAP, ether(mac, mac, etherTypeIPv4, v4), 14 + 128},
		{"tap ipv6", TAP, ether(mac, mac, 0x86dd, v6), 14 + 70},
		{"tap vlan ipv4", TAP, tagged, 18 + 128},
		{"tap arp", TAP, ether(mac, mac, etherTypeARP, make([]byte, 28)), 0},
		{"tap short", TAP, make([]byte, 10), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ipLength(tt.kind, tt.p); got != tt.want {
				t.Errorf("ipLength = %d, want %d", got, tt.want)
			}
		})
	}
}
