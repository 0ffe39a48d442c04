package quictun

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/quictun/quictun/device"
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

// Ethernet types used by the data path.
const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100 // 802.1Q
	etherTypeQinQ  = 0x88a8 // 802.1ad
	ethHeaderLen   = 14
	vlanTagLen     = 4
	maxVLANTags    = 2
	ipv4HeaderLen  = 20
	ipv6HeaderLen  = 40
	maxIPv6ExtHdrs = 16 // bound on the extension headers parseIP walks
)

// ipInfo is what the tunnel needs from an IP header.
type ipInfo struct {
	version  int        // 4 or 6
	src, dst netip.Addr // source and destination addresses
	// proto is the IPv4 protocol, or the IPv6 next header after skipping
	// hop-by-hop, routing, destination-options and fragment headers.
	proto uint8
	df    bool // IPv4 Don't Fragment; always false for IPv6
	// fragment is true for a non-first fragment (IPv4 fragment offset > 0,
	// or an IPv6 fragment header with offset > 0): no transport header.
	fragment bool
	// firstFragment is true for the first fragment of a fragmented packet
	// (offset 0 with More Fragments set, IPv4 MF or the IPv6 fragment
	// header's M flag): the transport header is there but the rest of the
	// transport payload is in other packets.
	firstFragment bool
	// hdrLen is the length of the IP header(s) up to the transport header
	// (IPv4 IHL; IPv6 fixed header plus the extension headers skipped).
	hdrLen int
	// totalLen is the length of the IP packet according to its header
	// (IPv4 total length, IPv6 40 + payload length); always ≤ len(b).
	// Bytes of b past totalLen are link-layer padding.
	totalLen int
}

// parseIP parses the IP header at the start of b. It returns false for a
// truncated or malformed packet or an unknown version: an IPv4 IHL below 5
// or past the end, a total length shorter than the header or longer than b,
// an IPv6 payload length past the end of b (so jumbograms are refused), or
// an IPv6 extension header chain that runs past the packet. It does not
// allocate.
func parseIP(b []byte) (ipInfo, bool) {
	if len(b) < 1 {
		return ipInfo{}, false
	}
	switch b[0] >> 4 {
	case 4:
		return parseIPv4(b)
	case 6:
		return parseIPv6(b)
	}
	return ipInfo{}, false
}

// parseIPv4 is parseIP for a packet whose version nibble is 4.
func parseIPv4(b []byte) (ipInfo, bool) {
	if len(b) < ipv4HeaderLen {
		return ipInfo{}, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < ipv4HeaderLen || ihl > total || total > len(b) {
		return ipInfo{}, false
	}
	flags := binary.BigEndian.Uint16(b[6:8])
	offset := flags & 0x1fff
	return ipInfo{
		version:       4,
		src:           netip.AddrFrom4([4]byte(b[12:16])),
		dst:           netip.AddrFrom4([4]byte(b[16:20])),
		proto:         b[9],
		df:            flags&0x4000 != 0,
		fragment:      offset != 0,
		firstFragment: offset == 0 && flags&0x2000 != 0,
		hdrLen:        ihl,
		totalLen:      total,
	}, true
}

// parseIPv6 is parseIP for a packet whose version nibble is 6.
func parseIPv6(b []byte) (ipInfo, bool) {
	if len(b) < ipv6HeaderLen {
		return ipInfo{}, false
	}
	total := ipv6HeaderLen + int(binary.BigEndian.Uint16(b[4:6]))
	if total > len(b) {
		return ipInfo{}, false
	}
	info := ipInfo{
		version:  6,
		src:      netip.AddrFrom16([16]byte(b[8:24])),
		dst:      netip.AddrFrom16([16]byte(b[24:40])),
		totalLen: total,
	}
	next := b[6]
	off := ipv6HeaderLen
	for range maxIPv6ExtHdrs {
		switch next {
		case protoHopByHop, protoRouting, protoDestOpts:
			if off+8 > total {
				return ipInfo{}, false
			}
			l := (int(b[off+1]) + 1) * 8
			if off+l > total {
				return ipInfo{}, false
			}
			next = b[off]
			off += l
			continue
		case protoFragment:
			if off+8 > total {
				return ipInfo{}, false
			}
			fo := binary.BigEndian.Uint16(b[off+2 : off+4])
			if fo>>3 != 0 {
				info.fragment = true
			} else if fo&1 != 0 {
				info.firstFragment = true
			}
			next = b[off]
			off += 8
			if info.fragment {
				// No further headers follow in a non-first fragment.
				info.proto = next
				info.hdrLen = off
				return info, true
			}
			continue
		}
		info.proto = next
		info.hdrLen = off
		return info, true
	}
	return ipInfo{}, false
}

// mac is an Ethernet (EUI-48) address.
type mac [6]byte

// isMulticast reports whether m has the group bit set (multicast, which
// includes broadcast ff:ff:ff:ff:ff:ff).
func (m mac) isMulticast() bool { return m[0]&1 != 0 }

// String formats m as six colon-separated lower-case hex bytes.
func (m mac) String() string { return net.HardwareAddr(m[:]).String() }

// parseEth parses the Ethernet header at the start of frame. It skips up to
// maxVLANTags 802.1Q (0x8100) or 802.1ad (0x88a8) tags (QinQ: an outer and
// an inner tag), returning the ethertype that follows them and payloadOff
// just past them; a third tag is not skipped and comes back as its TPID. ok
// is false for a frame too short to hold the header and its tags.
func parseEth(frame []byte) (dst, src mac, ethertype uint16, payloadOff int, ok bool) {
	if len(frame) < ethHeaderLen {
		return dst, src, 0, 0, false
	}
	dst = mac(frame[0:6])
	src = mac(frame[6:12])
	ethertype = binary.BigEndian.Uint16(frame[12:14])
	payloadOff = ethHeaderLen
	for range maxVLANTags {
		if ethertype != etherTypeVLAN && ethertype != etherTypeQinQ {
			break
		}
		if len(frame) < payloadOff+vlanTagLen {
			return dst, src, 0, 0, false
		}
		ethertype = binary.BigEndian.Uint16(frame[payloadOff+2 : payloadOff+4])
		payloadOff += vlanTagLen
	}
	return dst, src, ethertype, payloadOff, true
}

// inetChecksum returns the Internet checksum of b.
func inetChecksum(b []byte) uint16 { return ^device.ChecksumFold(device.ChecksumAdd(0, b)) }

// pseudoHeaderSum returns the running sum of the TCP/UDP/ICMPv6
// pseudo-header for addresses src and dst (both IPv4 or both IPv6),
// protocol proto and upper-layer length n.
func pseudoHeaderSum(src, dst netip.Addr, proto uint8, n int) uint64 {
	var sum uint64
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		sum = device.ChecksumAdd(sum, s[:])
		sum = device.ChecksumAdd(sum, d[:])
	} else {
		s, d := src.As16(), dst.As16()
		sum = device.ChecksumAdd(sum, s[:])
		sum = device.ChecksumAdd(sum, d[:])
	}
	return sum + uint64(proto) + uint64(n)
}
