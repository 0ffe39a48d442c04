package packet

import (
	"encoding/binary"
	"net/netip"
)

// Limits of BuildTooBig's answers.
const (
	icmpv4MaxAnswer = 576  // RFC 1812 4.3.2.3: an ICMPv4 error is at most 576 bytes
	icmpv6MaxAnswer = 1280 // RFC 4443 2.4 (c): at most the IPv6 minimum MTU
	icmpHeaderLen   = 8
	minMTUv4        = 68   // RFC 791: the smallest MTU an IPv4 link may have
	minMTUv6        = 1280 // RFC 8200: Linux ignores a Packet Too Big below it
	icmpTTL         = 64
)

// ICMP types BuildTooBig writes or must not answer.
const (
	icmpv4DestUnreach   = 3
	icmpv4FragNeeded    = 4 // code of icmpv4DestUnreach
	icmpv6PacketTooBig  = 2
	icmpv6InfoThreshold = 128 // ICMPv6 types below this are errors
)

// BuildTooBig writes into out an ICMPv4 Destination Unreachable /
// Fragmentation Needed (type 3 code 4, next-hop MTU = mtu) or an ICMPv6
// Packet Too Big (type 2, MTU = mtu) answering pkt, and returns its length.
//
// The answer goes to pkt's source and comes FROM pkt's destination address
// (a non-local address, so the receiving kernel does not drop it as a
// martian). It quotes as much of pkt (up to pkt's own length per its IP
// header) as fits in 576 bytes total (IPv4) or 1280 bytes total (IPv6), and
// no more than fits in out. Checksums are correct (ICMPv6 with the
// pseudo-header); TTL/hop limit 64; the IPv4 header has no options, ID 0,
// and neither DF nor MF.
//
// ok is false (nothing to send) when pkt is: malformed; itself an ICMPv4
// error (types 3, 4, 5, 11, 12) or ICMPv6 error (types below 128), or too
// short to tell; a fragment other than the first; to a multicast or
// broadcast destination (IPv4 255.255.255.255 and 224.0.0.0/4, IPv6
// ff00::/8); from an unspecified, multicast or broadcast source; IPv4
// without DF (the caller fragments those instead); when mtu is below 68
// (IPv4) or 1280 (IPv6) — Linux ignores a Packet Too Big below 1280, so for
// IPv6 the caller must fragment at our layer instead — or above 65535; or
// when out cannot hold the headers plus 8 quoted bytes. out must not
// overlap pkt. It does not allocate.
func BuildTooBig(out []byte, pkt []byte, mtu int) (n int, ok bool) {
	info, ok := ParseIP(pkt)
	if !ok || info.Fragment || mtu > 0xffff {
		return 0, false
	}
	if !tooBigAnswerable(info, pkt) {
		return 0, false
	}
	if info.Version == 4 {
		if !info.DF || mtu < minMTUv4 {
			return 0, false
		}
		return buildTooBig4(out, pkt[:info.TotalLen], info, mtu)
	}
	if mtu < minMTUv6 {
		return 0, false
	}
	return buildTooBig6(out, pkt[:info.TotalLen], info, mtu)
}

// tooBigAnswerable applies the address and ICMP-error rules of BuildTooBig.
func tooBigAnswerable(info IPInfo, pkt []byte) bool {
	if !info.Src.IsValid() || info.Src.IsUnspecified() || info.Src.IsMulticast() ||
		info.Dst.IsMulticast() || isLimitedBroadcast(info.Dst) || isLimitedBroadcast(info.Src) {
		return false
	}
	switch {
	case info.Version == 4 && info.Proto == protoICMP:
		if info.HdrLen >= info.TotalLen {
			return false
		}
		switch pkt[info.HdrLen] {
		case 3, 4, 5, 11, 12:
			return false
		}
	case info.Version == 6 && info.Proto == protoICMPv6:
		if info.HdrLen >= info.TotalLen || pkt[info.HdrLen] < icmpv6InfoThreshold {
			return false
		}
	}
	return true
}

// isLimitedBroadcast reports whether a is 255.255.255.255.
func isLimitedBroadcast(a netip.Addr) bool {
	return a.Is4() && a.As4() == [4]byte{255, 255, 255, 255}
}

// buildTooBig4 writes the ICMPv4 Fragmentation Needed answering pkt.
func buildTooBig4(out, pkt []byte, info IPInfo, mtu int) (int, bool) {
	const hdr = IPv4HeaderLen + icmpHeaderLen
	quote := min(len(pkt), icmpv4MaxAnswer-hdr, len(out)-hdr)
	if quote < 8 {
		return 0, false
	}
	n := hdr + quote
	ip := out[:IPv4HeaderLen]
	ip[0] = 0x45
	ip[1] = 0 // TOS
	binary.BigEndian.PutUint16(ip[2:4], uint16(n))
	binary.BigEndian.PutUint32(ip[4:8], 0) // ID, flags, fragment offset
	ip[8] = icmpTTL
	ip[9] = protoICMP
	ip[10], ip[11] = 0, 0
	dst, src := info.Src.As4(), info.Dst.As4() // answer from pkt's destination to its source
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:12], inetChecksum(ip))

	icmp := out[IPv4HeaderLen:n]
	icmp[0] = icmpv4DestUnreach
	icmp[1] = icmpv4FragNeeded
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[4:6], 0) // unused
	binary.BigEndian.PutUint16(icmp[6:8], uint16(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	binary.BigEndian.PutUint16(icmp[2:4], inetChecksum(icmp))
	return n, true
}

// buildTooBig6 writes the ICMPv6 Packet Too Big answering pkt.
func buildTooBig6(out, pkt []byte, info IPInfo, mtu int) (int, bool) {
	const hdr = ipv6HeaderLen + icmpHeaderLen
	quote := min(len(pkt), icmpv6MaxAnswer-hdr, len(out)-hdr)
	if quote < 8 {
		return 0, false
	}
	n := hdr + quote
	ip := out[:ipv6HeaderLen]
	binary.BigEndian.PutUint32(ip[0:4], 6<<28) // version, traffic class 0, flow label 0
	binary.BigEndian.PutUint16(ip[4:6], uint16(n-ipv6HeaderLen))
	ip[6] = protoICMPv6
	ip[7] = icmpTTL
	dst, src := info.Src.As16(), info.Dst.As16()
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])

	icmp := out[ipv6HeaderLen:n]
	icmp[0] = icmpv6PacketTooBig
	icmp[1] = 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint32(icmp[4:8], uint32(mtu))
	copy(icmp[icmpHeaderLen:], pkt[:quote])
	sum := pseudoHeaderSum(info.Dst, info.Src, protoICMPv6, len(icmp))
	binary.BigEndian.PutUint16(icmp[2:4], ^ChecksumFold(ChecksumAdd(sum, icmp)))
	return n, true
}
