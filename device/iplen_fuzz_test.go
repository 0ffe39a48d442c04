package device

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/quictun/quictun/packet"
)

// headerLength reads, from scratch, the length the IPv4 total length or
// the IPv6 payload length field at the start of p gives the packet; told
// is false when p is too short for the field or not IPv4 or IPv6.
func headerLength(p []byte) (n int, told bool) {
	switch {
	case len(p) >= 6 && p[0]>>4 == 6:
		return 40 + int(binary.BigEndian.Uint16(p[4:])), true
	case len(p) >= 4 && p[0]>>4 == 4:
		return int(binary.BigEndian.Uint16(p[2:])), true
	}
	return 0, false
}

// FuzzIPLength checks ipLength, which tells a frame cut by a short read,
// against the headers read from scratch: on TUN the length field of the
// IPv4 or IPv6 header (ParseIP's TotalLen whenever ParseIP takes the
// packet, whatever its padding), on TAP the same after the Ethernet header
// and every VLAN tag etherPayload skips, which packet.ParseEtherType finds
// too; and a packet cut short still gives the length it should have had.
func FuzzIPLength(f *testing.F) {
	v4 := udp4(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), make([]byte, 100))
	v6 := make([]byte, 40+30)
	v6[0], v6[5] = 0x60, 30
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, p := range [][]byte{v4, v6, v4[:60], {0x45, 0, 0}} {
		f.Add(p, uint16(len(p)))
		f.Add(ether(mac, mac, etherTypeIPv4, p), uint16(3))
		f.Add(ether(mac, mac, 0x8100, append([]byte{0, 5, 0x86, 0xdd}, p...)), uint16(20))
	}
	f.Fuzz(func(t *testing.T, p []byte, cut uint16) {
		tun := ipLength(TUN, p)
		want, told := headerLength(p)
		if tun != want || (!told && tun != 0) {
			t.Fatalf("TUN length %d, header says %d (%v)", tun, want, told)
		}
		if info, ok := packet.ParseIP(p); ok && tun != info.TotalLen {
			t.Fatalf("TUN length %d, ParseIP's %d", tun, info.TotalLen)
		}
		if c := int(cut); tun > 0 && c >= 6 && c < len(p) && ipLength(TUN, p[:c]) != tun {
			t.Fatalf("cut to %d bytes: length %d, uncut %d", c, ipLength(TUN, p[:c]), tun)
		}

		tap := ipLength(TAP, p)
		off, et, ok := etherPayload(p)
		pet, poff, pok := packet.ParseEtherType(p, anyVLANTags)
		isIP := pok && (pet == packet.EtherTypeIPv4 || pet == packet.EtherTypeIPv6)
		if ok != isIP || (ok && (off != poff || et != pet)) {
			t.Fatalf("etherPayload %d %#04x %v, ParseEtherType %d %#04x %v", off, et, ok, poff, pet, pok)
		}
		switch {
		case !ok:
			if tap != 0 {
				t.Fatalf("TAP length %d of a frame without IP", tap)
			}
		default:
			l, told := headerLength(p[off:])
			if !told && tap != 0 {
				t.Fatalf("TAP length %d without an IP length field", tap)
			}
			if told && tap != off+l {
				t.Fatalf("TAP length %d, header at %d says %d", tap, off, l)
			}
		}
	})
}
