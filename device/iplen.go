package device

import "encoding/binary"

// ipLength returns the length that the IP header at the start of p (TUN), or
// after the Ethernet header and any VLAN tags (TAP), gives for the whole
// packet or frame, or 0 if p holds no IPv4 or IPv6 header to tell.
func ipLength(kind Kind, p []byte) int {
	hdr := 0
	if kind == TAP {
		off, _, ok := etherPayload(p)
		if !ok {
			return 0
		}
		hdr = off
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

// etherPayload returns the offset of the IP header in an Ethernet frame,
// past any 802.1Q/802.1ad tags, and its ethertype (0x0800 or 0x86dd), or
// ok false if the frame carries neither IPv4 nor IPv6.
func etherPayload(frame []byte) (off int, etherType uint16, ok bool) {
	for off = 12; off+2 <= len(frame); off += 4 {
		switch et := binary.BigEndian.Uint16(frame[off:]); et {
		case 0x8100, 0x88a8:
			continue
		case 0x0800, 0x86dd:
			return off + 2, et, true
		default:
			return 0, 0, false
		}
	}
	return 0, 0, false
}
