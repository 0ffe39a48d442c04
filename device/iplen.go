package device

import "encoding/binary"

// ipLength returns the length that the IP header at the start of p (TUN), or
// after the Ethernet header and any VLAN tags (TAP), gives for the whole
// packet or frame, or 0 if p holds no IPv4 or IPv6 header to tell.
func ipLength(kind Kind, p []byte) int {
	hdr := 0
	if kind == TAP {
		hdr = 12
		for {
			if len(p) < hdr+2 {
				return 0
			}
			switch binary.BigEndian.Uint16(p[hdr:]) {
			case 0x8100, 0x88a8: // 802.1Q, 802.1ad tag
				hdr += 4
				continue
			case 0x0800, 0x86dd:
				hdr += 2
			default:
				return 0
			}
			break
		}
	}
	ip := p[hdr:]
	if len(ip) < 1 {
		return 0
	}
	switch ip[0] >> 4 {
	case 4:
		if len(ip) < 4 {
			return 0
		}
		return hdr + int(binary.BigEndian.Uint16(ip[2:]))
	case 6:
		if len(ip) < 6 {
			return 0
		}
		return hdr + 40 + int(binary.BigEndian.Uint16(ip[4:]))
	}
	return 0
}
