package packet

import "encoding/binary"

// TCP header fields clampMSS reads.
const (
	// TCPHeaderLen is the length of a TCP header without options.
	TCPHeaderLen = 20
	tcpFlagSYN   = 0x02
	tcpOptEnd    = 0
	tcpOptNOP    = 1
	tcpOptMSS    = 2
	tcpOptMSSLen = 4
	// ipv6ExtraHeader is how much longer an IPv6 header is than an IPv4
	// one: clampMSS lowers an IPv6 SYN's MSS by this much more.
	ipv6ExtraHeader = ipv6HeaderLen - IPv4HeaderLen
)

// clampMSS lowers the MSS option of a TCP SYN (or SYN-ACK) in the IP packet
// pkt to at most mss, fixing the TCP checksum incrementally (RFC 1624). It
// returns true if it changed the packet. Non-TCP, non-SYN, fragments (first
// or not), malformed packets, and a SYN without an MSS option (or with one
// already ≤ the limit) give false and are left untouched.
//
// mss is the limit for IPv4; for IPv6 the limit is mss−20, since the IPv6
// header is 20 bytes longer, so that a full segment makes an IP packet of
// at most mss+40 bytes in either family (as OpenVPN's mssfix does): for
// an inner IP MTU, mss is the MTU − 40. An mss of 0 or less, or an IPv6
// limit below 1 byte, changes nothing. It does not allocate.
func clampMSS(pkt []byte, mss int) bool {
	info, ok := ParseIP(pkt)
	if !ok || info.Proto != protoTCP || info.Fragment || info.FirstFragment {
		return false
	}
	if info.Version == 6 {
		mss -= ipv6ExtraHeader
	}
	if mss <= 0 {
		return false
	}
	mss = min(mss, 0xffff)
	tcp := pkt[info.HdrLen:info.TotalLen]
	if len(tcp) < TCPHeaderLen || tcp[13]&tcpFlagSYN == 0 {
		return false
	}
	dataOff := int(tcp[12]>>4) * 4
	if dataOff < TCPHeaderLen || dataOff > len(tcp) {
		return false
	}
	opts := tcp[TCPHeaderLen:dataOff]
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return false
		}
		l := int(opts[i+1])
		if l < 2 || i+l > len(opts) {
			return false
		}
		if opts[i] == tcpOptMSS {
			if l != tcpOptMSSLen {
				return false
			}
			off := TCPHeaderLen + i + 2 // of the MSS value in tcp
			if int(binary.BigEndian.Uint16(tcp[off:])) <= mss {
				return false
			}
			setTCPUint16(tcp, off, uint16(mss))
			return true
		}
		i += l
	}
	return false
}

// setTCPUint16 stores v big-endian at tcp[off:off+2] and updates the TCP
// checksum (tcp[16:18]) incrementally, per RFC 1624 eqn. 3:
// HC' = ~(~HC + ~m + m'), over the 16-bit words of tcp that the two bytes
// touch (one word at an even offset, two at an odd one).
func setTCPUint16(tcp []byte, off int, v uint16) {
	start, end := off&^1, (off+2+1)&^1 // aligned words covering the field
	sum := uint64(^binary.BigEndian.Uint16(tcp[16:18]))
	for w := start; w < end; w += 2 {
		sum += uint64(^binary.BigEndian.Uint16(tcp[w:]))
	}
	binary.BigEndian.PutUint16(tcp[off:], v)
	for w := start; w < end; w += 2 {
		sum += uint64(binary.BigEndian.Uint16(tcp[w:]))
	}
	binary.BigEndian.PutUint16(tcp[16:18], ^ChecksumFold(sum))
}

// ClampMSSFrame lowers the MSS option of a TCP SYN (or SYN-ACK) carried
// over IPv4 or IPv6 in an Ethernet frame, after up to two 802.1Q/802.1ad
// tags, so that the peers' full segments fit the tunnel; it fixes the TCP
// checksum incrementally (RFC 1624) and reports whether it changed the
// frame. mss is the limit for IPv4 in an untagged frame; each tag takes
// its 4 bytes off it, and IPv6 20 more for its longer header, so that a
// full segment makes a frame of the same length whatever its tags and
// family (as OpenVPN's mssfix does). Anything else is left untouched and
// gives false: non-TCP, non-SYN, fragments (first or not), malformed
// packets, a SYN without an MSS option or with one already ≤ the limit, a
// frame whose IP version does not match its ethertype, and an mss (or
// IPv6 limit) below 1. It does not allocate.
func ClampMSSFrame(frame []byte, mss int) bool {
	_, _, et, off, ok := ParseEth(frame)
	if !ok || off >= len(frame) {
		return false
	}
	switch v := frame[off] >> 4; {
	case et == EtherTypeIPv4 && v == 4, et == EtherTypeIPv6 && v == 6:
		return clampMSS(frame[off:], mss-(off-EthHeaderLen))
	}
	return false
}
