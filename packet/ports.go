package packet

import "encoding/binary"

// ICMP echo types, whose identifier Ports reports.
const (
	icmpEchoReply     = 0
	icmpEchoRequest   = 8
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// Ports returns the transport ports of the IP packet b parsed as info:
// the source and destination ports of TCP and UDP, and for an ICMP or
// ICMPv6 echo its identifier: an echo request gives (id, 0) and an echo
// reply (0, id), so that a request and its reply (which carries the
// request's identifier) look like the two directions of one port pair, as
// a connection's packets do, while a request in the other direction does
// not. ok
// is false for other protocols and ICMP messages, for a non-first fragment
// (no transport header) and for a transport header cut short. It does not
// allocate.
func Ports(b []byte, info IPInfo) (src, dst uint16, ok bool) {
	if info.Fragment {
		return 0, 0, false
	}
	t := b[info.HdrLen:info.TotalLen]
	switch info.Proto {
	case protoTCP, protoUDP:
		if len(t) < 4 {
			return 0, 0, false
		}
		return binary.BigEndian.Uint16(t), binary.BigEndian.Uint16(t[2:]), true
	case protoICMP, protoICMPv6:
		if len(t) < 8 {
			return 0, 0, false
		}
		id := binary.BigEndian.Uint16(t[4:])
		switch {
		case info.Proto == protoICMP && t[0] == icmpEchoRequest, info.Proto == protoICMPv6 && t[0] == icmpv6EchoRequest:
			return id, 0, true
		case info.Proto == protoICMP && t[0] == icmpEchoReply, info.Proto == protoICMPv6 && t[0] == icmpv6EchoReply:
			return 0, id, true
		}
	}
	return 0, 0, false
}
