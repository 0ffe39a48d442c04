// Package wire is quictun's wire format, protocol version 1
// (docs/PROTOCOL.md): the header byte of every datagram, the FRAGMENT
// format that carries a packet too big for one datagram (Fragmenter,
// Reassembler), and the length-prefixed JSON messages of the control
// stream (ControlMsg, WriteControl, ReadControl).
//
// It knows bytes only: no connections, devices or counters. It imports
// only the standard library so that it can be tested and fuzzed on its
// own; the core decides what a malformed datagram costs (a drop reason)
// and what a control message means.
package wire

// Version is the version of the control protocol and datagram format this
// package implements.
const Version = 1

// The datagram header.
//
// Every QUIC DATAGRAM payload starts with one header byte:
//
//	 7   6   5   4   3   2   1   0
//	+-------+-----------------------+
//	| epoch |         type          |
//	+-------+-----------------------+
//
// Bits 7–6 are the epoch: senders MUST set them to 0 in protocol version 1
// and receivers MUST ignore them. Bits 5–0 are the type:
//
//   - 0x00 PACKET: the rest of the datagram is one whole IP packet (TUN
//     mode) or Ethernet frame without FCS (TAP mode). Header: 1 byte.
//
//   - 0x01 FRAGMENT: one piece of a packet or frame too big for one
//     datagram. Header: 5 bytes, laid out below.
//
//   - 0x02 KEEPALIVE: padding sent by a client to keep the path alive in
//     a packet long enough to draw a stateless reset; receivers ignore it.
//
//   - any other type: reserved; the receiver drops and counts the datagram.
//
// The FRAGMENT header:
//
//	byte 0     header byte (type 0x01)
//	bytes 1–2  fragment id, big-endian uint16: chosen by the sender,
//	           incremented (mod 2^16) per fragmented packet, per connection
//	byte 3     index of this piece, 0-based, < count
//	byte 4     count of pieces, 2..16
//	bytes 5–   the piece, at least 1 byte
//
// All pieces of one packet carry the same id and count. Every piece but
// the last (index count−1) carries the same length L; the last carries
// 1..L bytes. The packet is the concatenation of the pieces in index
// order, at most 65553 bytes (65535 + an 18-byte VLAN-tagged Ethernet
// header). A receiver drops (and counts) a packet whose pieces disagree
// on count or length, drops an incomplete packet 2 s after its first
// piece arrived or when it needs the room (it keeps at most 8 in progress
// per connection, evicting the oldest), and ignores duplicate pieces.
// Pieces may arrive in any order.
//
// A sender uses FRAGMENT only when 1 + the packet's length exceeds the
// largest datagram the connection can send at that moment; it then uses the
// fewest pieces and spreads the bytes evenly over them, so all pieces are
// about the same size.
const (
	// TypePacket is the type of a datagram that carries one whole packet
	// after its PacketHeaderLen-byte header.
	TypePacket = 0x00
	// TypeFragment is the type of a datagram that carries one piece of a
	// packet after its FragmentHeaderLen-byte header.
	TypeFragment = 0x01
	// TypeKeepalive is the type of a padding datagram (KeepaliveLen bytes
	// long) that receivers ignore.
	TypeKeepalive = 0x02
	// TypeMask selects the type bits of a header byte; the other bits are
	// the epoch, which receivers ignore.
	TypeMask = 0x3f

	// KeepaliveLen is the length of a KEEPALIVE datagram: long enough that
	// the QUIC packet carrying it is one a server that lost the
	// connection's state may answer with a stateless reset (43 bytes or
	// more).
	KeepaliveLen = 64
	// PacketHeaderLen is the header length of a PACKET datagram. Senders
	// keep this many bytes free in front of a packet so that the header is
	// written in place, without a copy.
	PacketHeaderLen = 1
	// FragmentHeaderLen is the header length of a FRAGMENT datagram.
	FragmentHeaderLen = 5
	// MaxFragments is the most pieces one packet is split into; a sender
	// keeps this many datagram buffers for Fragmenter.Split.
	MaxFragments = 16
)

// maxReassembled is the largest packet a Reassembler rebuilds: an IP
// packet of 65535 bytes in an Ethernet frame with one VLAN tag (a 14-byte
// header and a 4-byte tag).
const maxReassembled = 65535 + 14 + 4
