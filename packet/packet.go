// Package packet reads and edits the IP packets and Ethernet frames the
// tunnel carries: it parses IPv4/IPv6 headers and Ethernet headers with
// VLAN tags, computes Internet checksums, builds ICMP "too big" answers
// and clamps the TCP MSS of SYNs. It is the one parser the core and the
// device's offloads share, so that both read a frame the same way; it
// imports nothing of this module. It does no I/O and does not allocate on
// the paths a packet takes.
package packet

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// IP protocol numbers used by the data path.
const (
	protoICMP     = 1
	protoTCP      = 6
	protoUDP      = 17
	protoICMPv6   = 58
	protoHopByHop = 0
	protoRouting  = 43
	protoFragment = 44
	protoDestOpts = 60
)

// Ethernet types and header sizes used by the data path.
const (
	// EtherTypeIPv4 is the ethertype of a frame carrying IPv4.
	EtherTypeIPv4 = 0x0800
	// EtherTypeIPv6 is the ethertype of a frame carrying IPv6.
	EtherTypeIPv6 = 0x86dd
	etherTypeVLAN = 0x8100 // 802.1Q
	etherTypeQinQ = 0x88a8 // 802.1ad
	// EthHeaderLen is the length of an untagged Ethernet header (two MACs
	// and the ethertype), without FCS.
	EthHeaderLen = 14
	// VLANTagLen is how much each 802.1Q or 802.1ad tag adds to a frame.
	VLANTagLen  = 4
	maxVLANTags = 2 // tags ParseEth skips: QinQ's outer and inner tag
	// IPv4HeaderLen is the length of an IPv4 header without options.
	IPv4HeaderLen  = 20
	ipv6HeaderLen  = 40
	maxIPv6ExtHdrs = 16 // bound on the extension headers ParseIP walks
)

// IPInfo is what the tunnel needs from an IP header: enough to route a
// packet, decide whether it may be split, and find its transport header.
type IPInfo struct {
	Version  int        // 4 or 6
	Src, Dst netip.Addr // source and destination addresses
	// Proto is the IPv4 protocol, or the IPv6 next header after skipping
	// hop-by-hop, routing, destination-options and fragment headers.
	Proto uint8
	DF    bool // IPv4 Don't Fragment; always false for IPv6
	// Fragment is true for a non-first fragment (IPv4 fragment offset > 0,
	// or an IPv6 fragment header with offset > 0): no transport header.
	Fragment bool
	// FirstFragment is true for the first fragment of a fragmented packet
	// (offset 0 with More Fragments set, IPv4 MF or the IPv6 fragment
	// header's M flag): the transport header is there but the rest of the
	// transport payload is in other packets.
	FirstFragment bool
	// HdrLen is the length of the IP header(s) up to the transport header
	// (IPv4 IHL; IPv6 fixed header plus the extension headers skipped).
	HdrLen int
	// TotalLen is the length of the IP packet according to its header
	// (IPv4 total length, IPv6 40 + payload length); always ≤ len(b).
	// Bytes of b past TotalLen are link-layer padding.
	TotalLen int
}

// ParseIP parses the IP header at the start of b. It returns false for a
// truncated or malformed packet or an unknown version: an IPv4 IHL below 5
// or past the end, a total length shorter than the header or longer than b,
// an IPv6 payload length past the end of b (so jumbograms are refused), or
// an IPv6 extension header chain that runs past the packet. It does not
// allocate.
func ParseIP(b []byte) (IPInfo, bool) {
	if len(b) < 1 {
		return IPInfo{}, false
	}
	switch b[0] >> 4 {
	case 4:
		return parseIPv4(b)
	case 6:
		return parseIPv6(b)
	}
	return IPInfo{}, false
}

// parseIPv4 is ParseIP for a packet whose version nibble is 4.
func parseIPv4(b []byte) (IPInfo, bool) {
	if len(b) < IPv4HeaderLen {
		return IPInfo{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < IPv4HeaderLen || ihl > total || total > len(b) {
		return IPInfo{}, false
	}
	flags := binary.BigEndian.Uint16(b[6:8])
	offset := flags & 0x1fff
	return IPInfo{
		Version:       4,
		Src:           netip.AddrFrom4([4]byte(b[12:16])),
		Dst:           netip.AddrFrom4([4]byte(b[16:20])),
		Proto:         b[9],
		DF:            flags&0x4000 != 0,
		Fragment:      offset != 0,
		FirstFragment: offset == 0 && flags&0x2000 != 0,
		HdrLen:        ihl,
		TotalLen:      total,
	}, true
}

// parseIPv6 is ParseIP for a packet whose version nibble is 6.
func parseIPv6(b []byte) (IPInfo, bool) {
	if len(b) < ipv6HeaderLen {
		return IPInfo{}, false
	}
	total := ipv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	if total > len(b) {
		return IPInfo{}, false
	}
	info := IPInfo{
		Version:  6,
		Src:      netip.AddrFrom16([16]byte(b[8:24])),
		Dst:      netip.AddrFrom16([16]byte(b[24:40])),
		TotalLen: total,
	}
	next := b[6]
	off := ipv6HeaderLen
	for range maxIPv6ExtHdrs {
		switch next {
		case protoHopByHop, protoRouting, protoDestOpts:
			if off+8 > total {
				return IPInfo{}, false
			}
			l := (int(b[off+1]) + 1) * 8
			if off+l > total {
				return IPInfo{}, false
			}
			next = b[off]
			off += l
			continue
		case protoFragment:
			if off+8 > total {
				return IPInfo{}, false
			}
			fo := binary.BigEndian.Uint16(b[off+2 : off+4])
			if fo>>3 != 0 {
				info.Fragment = true
			} else if fo&1 != 0 {
				info.FirstFragment = true
			}
			next = b[off]
			off += 8
			if info.Fragment {
				// No further headers follow in a non-first fragment.
				info.Proto = next
				info.HdrLen = off
				return info, true
			}
			continue
		}
		info.Proto = next
		info.HdrLen = off
		return info, true
	}
	return IPInfo{}, false
}

// MAC is an Ethernet (EUI-48) address.
type MAC [6]byte

// IsMulticast reports whether m has the group bit set (multicast, which
// includes broadcast ff:ff:ff:ff:ff:ff).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

// String formats m as six colon-separated lower-case hex bytes.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// ParseEth parses the Ethernet header at the start of frame. It skips up to
// two 802.1Q (0x8100) or 802.1ad (0x88a8) tags (QinQ: an outer and an
// inner tag), returning the ethertype that follows them and payloadOff
// just past them; a third tag is not skipped and comes back as its TPID. ok
// is false (and the rest zero) for a frame too short to hold the header
// and its tags. It is ParseEtherType with a limit of two tags, plus the
// addresses.
func ParseEth(frame []byte) (dst, src MAC, ethertype uint16, payloadOff int, ok bool) {
	// Small enough to be inlined, with ParseEtherType, into the hub's TAP
	// paths, which call it for every frame.
	ethertype, payloadOff, ok = ParseEtherType(frame, maxVLANTags)
	if !ok {
		return dst, src, 0, 0, false
	}
	return MAC(frame[0:6]), MAC(frame[6:12]), ethertype, payloadOff, true
}

// ParseEtherType returns the ethertype of the Ethernet frame and
// payloadOff, the offset just past its header and its first maxTags
// 802.1Q (0x8100) or 802.1ad (0x88a8) tags; a tag beyond those is not
// skipped and comes back as its TPID. ok is false for a frame too short to
// hold the header and the tags skipped. The limit is the caller's: ParseEth
// (what the core switches and clamps by) stops after two tags; a caller
// that must find the IP header of any frame passes a larger one. It does
// not allocate.
func ParseEtherType(frame []byte, maxTags int) (ethertype uint16, payloadOff int, ok bool) {
	// Each round reads the (ether)type field that ends at payloadOff.
	for payloadOff = EthHeaderLen; payloadOff <= len(frame); payloadOff += VLANTagLen {
		ethertype = binary.BigEndian.Uint16(frame[payloadOff-2:])
		if (ethertype != etherTypeVLAN && ethertype != etherTypeQinQ) || maxTags <= 0 {
			return ethertype, payloadOff, true
		}
		maxTags--
	}
	return 0, 0, false
}

// inetChecksum returns the Internet checksum of b.
func inetChecksum(b []byte) uint16 { return ^ChecksumFold(ChecksumAdd(0, b)) }

// pseudoHeaderSum returns the running sum of the TCP/UDP/ICMPv6
// pseudo-header for addresses src and dst (both IPv4 or both IPv6),
// protocol proto and upper-layer length n.
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, n int) uint64 {
	var sum uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = ChecksumAdd(sum, s[:])
		sum = ChecksumAdd(sum, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		sum = ChecksumAdd(sum, s[:])
		sum = ChecksumAdd(sum, d[:])
	}
	return sum + uint64(proto) + uint64(n)
}
