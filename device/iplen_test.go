package device

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/quictun/quictun/packet"
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

// TestEtherPayloadAsCore checks that the device finds the IP header of a
// VLAN-tagged or QinQ frame where the core does: etherPayload and
// ipLength against packet.ParseEth, by which the hub switches frames and
// clamps their MSS. Both go through packet.ParseEtherType; only past two
// tags does the device look further than the core.
func TestEtherPayloadAsCore(t *testing.T) {
	v4 := udp4(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), make([]byte, 100)) // 128 bytes
	v6 := make([]byte, 40+30)
	v6[0] = 0x60
	v6[5] = 30
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	// frame tags ip with the TPIDs given, outer first, then the ethertype et.
	frame := func(et uint16, ip []byte, tpids ...uint16) []byte {
		f := append(append([]byte{}, mac...), mac...)
		for i, tpid := range tpids {
			f = binary.BigEndian.AppendUint16(f, tpid)
			f = binary.BigEndian.AppendUint16(f, uint16(10+i)) // VLAN ID
		}
		f = binary.BigEndian.AppendUint16(f, et)
		return append(f, ip...)
	}
	tests := []struct {
		name string
		f    []byte
		ip   []byte
		et   uint16
		off  int
	}{
		{"untagged IPv4", frame(packet.EtherTypeIPv4, v4), v4, packet.EtherTypeIPv4, 14},
		{"802.1Q IPv4", frame(packet.EtherTypeIPv4, v4, 0x8100), v4, packet.EtherTypeIPv4, 18},
		{"802.1Q IPv6", frame(packet.EtherTypeIPv6, v6, 0x8100), v6, packet.EtherTypeIPv6, 18},
		{"QinQ (802.1ad, 802.1Q) IPv4", frame(packet.EtherTypeIPv4, v4, 0x88a8, 0x8100), v4, packet.EtherTypeIPv4, 22},
		{"QinQ (802.1ad, 802.1Q) IPv6", frame(packet.EtherTypeIPv6, v6, 0x88a8, 0x8100), v6, packet.EtherTypeIPv6, 22},
		{"two 802.1Q tags IPv4", frame(packet.EtherTypeIPv4, v4, 0x8100, 0x8100), v4, packet.EtherTypeIPv4, 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, et, off, ok := packet.ParseEth(tt.f)
			if !ok || et != tt.et || off != tt.off {
				t.Fatalf("core: packet.ParseEth = %#04x at %d, %v; want %#04x at %d", et, off, ok, tt.et, tt.off)
			}
			doff, det, dok := etherPayload(tt.f)
			if !dok || det != et || doff != off {
				t.Errorf("device: etherPayload = %#04x at %d, %v; the core has %#04x at %d", det, doff, dok, et, off)
			}
			if got, want := ipLength(TAP, tt.f), off+len(tt.ip); got != want {
				t.Errorf("device: ipLength = %d, want %d (IP header at %d, as the core has it)", got, want, off)
			}
		})
	}

	// Three tags: the core stops after two (the third tag's TPID comes
	// back as the ethertype); the device still finds the IP header.
	f := frame(packet.EtherTypeIPv4, v4, 0x88a8, 0x8100, 0x8100)
	if _, _, et, off, ok := packet.ParseEth(f); !ok || et != 0x8100 || off != 22 {
		t.Errorf("three tags: packet.ParseEth = %#04x at %d, %v; want the third tag (0x8100) at 22", et, off, ok)
	}
	if off, et, ok := etherPayload(f); !ok || et != packet.EtherTypeIPv4 || off != 26 {
		t.Errorf("three tags: etherPayload = %#04x at %d, %v; want IPv4 at 26", et, off, ok)
	}
	if got := ipLength(TAP, f); got != 26+len(v4) {
		t.Errorf("three tags: ipLength = %d, want %d", got, 26+len(v4))
	}
}

func TestEtherPayloadNoAlloc(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	f := ether(mac, mac, 0x88a8, []byte{0, 10, 0x81, 0x00, 0, 11, 0x08, 0x00, 0x45, 0, 0, 20})
	if n := testing.AllocsPerRun(100, func() {
		etherPayload(f)
		ipLength(TAP, f)
	}); n != 0 {
		t.Errorf("etherPayload/ipLength allocate %v times per run, want 0", n)
	}
}
