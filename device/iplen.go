package device

import (
	"encoding/binary"
	"math"

	"github.com/quictun/quictun/packet"
)

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

// anyVLANTags is the tag limit etherPayload passes to
// packet.ParseEtherType: no limit short of the frame's end. The core
// switches and clamps frames by their first two tags (packet.ParseEth),
// but a checksum to complete, a super-frame to split or a frame cut by a
// short read must have its IP header found under however many tags the
// VLAN devices stacked on the TAP put there.
const anyVLANTags = math.MaxInt

// etherPayload returns the offset of the IP header in an Ethernet frame,
// past every 802.1Q/802.1ad tag, and its ethertype (0x0800 or 0x86dd), or
// ok false if the frame carries neither IPv4 nor IPv6.
func etherPayload(frame []byte) (off int, etherType uint16, ok bool) {
	et, off, ok := packet.ParseEtherType(frame, anyVLANTags)
	if !ok || (et != packet.EtherTypeIPv4 && et != packet.EtherTypeIPv6) {
		return 0, 0, false
	}
	return off, et, true
}
