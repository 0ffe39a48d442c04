package quictun

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/packet"
)

// The datagram header (protocol version 1).
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
//     datagram. Header: 5 bytes:
//
//     byte 0     header byte (type 0x01)
//     bytes 1–2  fragment id, big-endian uint16: chosen by the sender,
//     incremented (mod 2^16) per fragmented packet, per connection
//     byte 3     index of this piece, 0-based, < count
//     byte 4     count of pieces, 2..16
//     bytes 5–   the piece, at least 1 byte
//
//     All pieces of one packet carry the same id and count. Every piece but
//     the last (index count−1) carries the same length L; the last carries
//     1..L bytes. The packet is the concatenation of the pieces in index
//     order, at most 65553 bytes (65535 + an 18-byte VLAN-tagged Ethernet
//     header). A receiver drops (and counts) a packet whose pieces disagree
//     on count or length, drops an incomplete packet 2 s after its first
//     piece arrived or when it needs the room (it keeps at most 8 in
//     progress per connection, evicting the oldest), and ignores duplicate
//     pieces. Pieces may arrive in any order.
//
//   - 0x02 KEEPALIVE: padding sent by a client to keep the path alive in
//     a packet long enough to draw a stateless reset; receivers ignore it.
//
//   - any other type: reserved; the receiver drops and counts the datagram.
//
// A sender uses FRAGMENT only when 1 + the packet's length exceeds the
// largest datagram the connection can send at that moment; it then uses the
// fewest pieces and spreads the bytes evenly over them, so all pieces are
// about the same size.
const (
	dgTypePacket      = 0x00 // datagram type PACKET
	dgTypeFragment    = 0x01 // datagram type FRAGMENT
	dgTypeKeepalive   = 0x02 // datagram type KEEPALIVE: padding, ignored
	keepaliveLen      = 64   // length of a KEEPALIVE datagram
	dgTypeMask        = 0x3f // the type bits of the header byte
	packetHeaderLen   = 1    // header length of a PACKET datagram
	fragmentHeaderLen = 5    // header length of a FRAGMENT datagram
	maxFragments      = 16   // most pieces in one fragmented packet
	// maxReassembled is the largest packet a reassembler rebuilds: an IP
	// packet of 65535 bytes in an Ethernet frame with one VLAN tag.
	maxReassembled = 65535 + packet.EthHeaderLen + packet.VLANTagLen
)

// Errors of split and add. They are returned unwrapped (add's callers count
// them per datagram, so they must not allocate).
var (
	errEmptyPacket          = errors.New("empty packet")
	errDatagramTooSmall     = errors.New("datagram size too small for a fragment header")
	errTooManyFragments     = errors.New("packet needs more than 16 fragments")
	errFragmentBuffers      = errors.New("too few or too small fragment buffers")
	errFragmentShort        = errors.New("fragment datagram too short")
	errFragmentType         = errors.New("datagram is not a fragment")
	errFragmentHeader       = errors.New("fragment index or count out of range")
	errFragmentInconsistent = errors.New("fragment count or length disagrees with earlier pieces")
	errFragmentTooLarge     = errors.New("fragmented packet too large")
)

// fragmenter splits packets that do not fit one datagram. Its only state
// is the atomic fragment id counter, so it is safe for concurrent use: all
// senders on one connection (or on all of a hub's connections) may share
// one fragmenter and never pick the same id. The zero value is ready to use.
type fragmenter struct {
	nextID atomic.Uint32 // the next fragment id, in its low 16 bits
}

// newID returns the next fragment id.
func (f *fragmenter) newID() uint16 { return uint16(f.nextID.Add(1) - 1) }

// split writes the datagrams carrying pkt into out[i] (caller-provided
// buffers with a capacity of at least maxDatagram bytes each, not
// overlapping pkt) and returns how many, each out[i] resliced to its
// length. A pkt that fits (1 + len(pkt) ≤ maxDatagram) becomes one PACKET
// datagram; a bigger one becomes 2..16 FRAGMENT datagrams of about equal
// size. It returns an error, writing nothing, if pkt is empty, if
// maxDatagram ≤ fragmentHeaderLen, if more than maxFragments pieces would
// be needed, or if out has too few or too small buffers. It does not
// allocate.
func (f *fragmenter) split(pkt []byte, maxDatagram int, out [][]byte) (int, error) {
	if len(pkt) == 0 {
		return 0, errEmptyPacket
	}
	if maxDatagram <= fragmentHeaderLen {
		return 0, errDatagramTooSmall
	}
	if packetHeaderLen+len(pkt) <= maxDatagram {
		if len(out) < 1 || cap(out[0]) < packetHeaderLen+len(pkt) {
			return 0, errFragmentBuffers
		}
		d := out[0][:packetHeaderLen+len(pkt)]
		d[0] = dgTypePacket
		copy(d[packetHeaderLen:], pkt)
		out[0] = d
		return 1, nil
	}
	room := maxDatagram - fragmentHeaderLen
	count := (len(pkt) + room - 1) / room
	if count > maxFragments {
		return 0, errTooManyFragments
	}
	pieceLen := (len(pkt) + count - 1) / count
	count = (len(pkt) + pieceLen - 1) / pieceLen // evening out may save a piece
	if len(out) < count {
		return 0, errFragmentBuffers
	}
	for i := range count {
		if cap(out[i]) < fragmentHeaderLen+pieceLen {
			return 0, errFragmentBuffers
		}
	}
	id := f.newID()
	for i := range count {
		piece := pkt[i*pieceLen : min(len(pkt), (i+1)*pieceLen)]
		d := out[i][:fragmentHeaderLen+len(piece)]
		d[0] = dgTypeFragment
		binary.BigEndian.PutUint16(d[1:3], id)
		d[3] = byte(i)
		d[4] = byte(count)
		copy(d[fragmentHeaderLen:], piece)
		out[i] = d
	}
	return count, nil
}

// Defaults for newReassembler.
const (
	defaultReassemblySlots   = 8
	defaultReassemblyTimeout = 2 * time.Second
	// reassemblyStaleIDs is how far (in ids, mod 2^16) a packet in progress
	// may fall behind the newest id seen before it is dropped as expired:
	// its missing pieces are lost, and its id must be free again long
	// before the 16-bit counter wraps around to it.
	reassemblyStaleIDs = 4096
)

// reassembler rebuilds fragmented packets. It keeps a bounded number of
// packets in progress (slots), each bounded to maxReassembled bytes. An
// incomplete packet is dropped (counted as expired) when it is older than
// the timeout at the next add, when its slot is needed for a new packet and
// it is the oldest, or when its id falls more than 4096 behind the id of a
// newer fragment. Duplicate pieces are ignored; a piece whose count or
// length disagrees with the earlier pieces drops that packet (counted as
// malformed).
//
// Slot buffers are allocated on first use, sized to the packet, and reused,
// so a connection that never fragments costs no buffer memory and steady
// state allocates nothing. Not safe for concurrent use (one per inbound
// goroutine), except stats.
type reassembler struct {
	timeout time.Duration
	slots   []reasmSlot

	completed, expired, malformed atomic.Uint64
	// counters, if set, also counts each expiry as DropFragmentExpired.
	counters *Counters
}

// fragmentDropReason names the drop reason for an error of
// reassembler.add.
func fragmentDropReason(err error) DropReason {
	switch err {
	case errFragmentShort:
		return DropFragmentShort
	case errFragmentHeader:
		return DropFragmentHeader
	case errFragmentInconsistent:
		return DropFragmentInconsistent
	case errFragmentTooLarge:
		return DropFragmentTooLarge
	}
	return DropMalformedDatagram
}

// reasmSlot is one packet in progress.
type reasmSlot struct {
	inUse    bool
	id       uint16
	count    int       // pieces expected
	have     uint32    // bit i set: piece i arrived
	nHave    int       // pieces arrived
	pieceLen int       // length of every piece but the last; 0 until one arrived
	lastLen  int       // length of the last piece; 0 until it arrived
	started  time.Time // when the first piece arrived
	buf      []byte    // pieces 0..count-2 at index*pieceLen; the packet when complete
	last     []byte    // the last piece, until the packet is complete
}

// newReassembler returns a reassembler with room for slots packets in
// progress that drops an incomplete packet timeout after its first piece.
// Zero (or negative) values mean 8 slots and 2 seconds.
func newReassembler(slots int, timeout time.Duration) *reassembler {
	if slots <= 0 {
		slots = defaultReassemblySlots
	}
	if timeout <= 0 {
		timeout = defaultReassemblyTimeout
	}
	return &reassembler{timeout: timeout, slots: make([]reasmSlot, slots)}
}

// add takes one FRAGMENT datagram (the whole payload including its 5-byte
// header) that arrived at now. It returns the complete packet when the last
// missing piece arrives, or nil. The packet is valid until the next call to
// add. An error means dg was malformed or disagreed with earlier pieces (it
// is counted in stats); it is for counting, not fatal. Steady state does not
// allocate.
func (r *reassembler) add(dg []byte, now time.Time) ([]byte, error) {
	if len(dg) < fragmentHeaderLen+1 {
		r.malformed.Add(1)
		return nil, errFragmentShort
	}
	if dg[0]&dgTypeMask != dgTypeFragment {
		r.malformed.Add(1)
		return nil, errFragmentType
	}
	id := binary.BigEndian.Uint16(dg[1:3])
	index, count := int(dg[3]), int(dg[4])
	if count < 2 || count > maxFragments || index >= count {
		r.malformed.Add(1)
		return nil, errFragmentHeader
	}
	piece := dg[fragmentHeaderLen:]
	isLast := index == count-1
	if (isLast && len(piece) > maxReassembled) || (!isLast && (count-1)*len(piece) >= maxReassembled) {
		r.malformed.Add(1)
		return nil, errFragmentTooLarge
	}

	s := r.slotFor(id, now)
	if s.inUse && s.count != count {
		r.drop(s)
		r.malformed.Add(1)
		return nil, errFragmentInconsistent
	}
	if !s.inUse {
		*s = reasmSlot{inUse: true, id: id, count: count, started: now, buf: s.buf, last: s.last}
	}
	bit := uint32(1) << index
	if s.have&bit != 0 {
		return nil, nil // duplicate
	}
	if isLast {
		if s.pieceLen != 0 && len(piece) > s.pieceLen ||
			s.pieceLen != 0 && (count-1)*s.pieceLen+len(piece) > maxReassembled {
			r.drop(s)
			r.malformed.Add(1)
			return nil, errFragmentInconsistent
		}
		s.lastLen = len(piece)
		s.last = growBuf(s.last, len(piece))
		copy(s.last, piece)
	} else {
		switch {
		case s.pieceLen == 0:
			if s.lastLen > len(piece) || (count-1)*len(piece)+s.lastLen > maxReassembled {
				r.drop(s)
				r.malformed.Add(1)
				return nil, errFragmentInconsistent
			}
			s.pieceLen = len(piece)
			s.buf = growBuf(s.buf, min(count*len(piece), maxReassembled))
		case s.pieceLen != len(piece):
			r.drop(s)
			r.malformed.Add(1)
			return nil, errFragmentInconsistent
		}
		copy(s.buf[index*s.pieceLen:], piece)
	}
	s.have |= bit
	s.nHave++
	if s.nHave < s.count {
		return nil, nil
	}
	total := (s.count-1)*s.pieceLen + s.lastLen
	pkt := s.buf[:total]
	copy(pkt[(s.count-1)*s.pieceLen:], s.last[:s.lastLen])
	s.inUse = false
	r.completed.Add(1)
	return pkt, nil
}

// slotFor returns the slot holding id, or a fresh one for it (not yet
// marked in use). On the way it expires packets that are too old or whose
// id is stale; if no slot is free it evicts the oldest packet.
func (r *reassembler) slotFor(id uint16, now time.Time) *reasmSlot {
	var match, free, oldest *reasmSlot
	for i := range r.slots {
		s := &r.slots[i]
		if s.inUse && s.id != id {
			if behind := id - s.id; now.Sub(s.started) > r.timeout ||
				(behind > reassemblyStaleIDs && behind < 1<<15) {
				r.drop(s)
				r.expire()
			}
		}
		switch {
		case !s.inUse:
			if free == nil {
				free = s
			}
		case s.id == id:
			match = s
		case oldest == nil || s.started.Before(oldest.started):
			oldest = s
		}
	}
	switch {
	case match != nil:
		if now.Sub(match.started) > r.timeout {
			r.drop(match)
			r.expire()
		}
		return match
	case free != nil:
		return free
	}
	r.drop(oldest)
	r.expire()
	return oldest
}

// expire counts one incomplete packet given up, also as a drop in the
// counters the reassembler was given (if any).
func (r *reassembler) expire() {
	r.expired.Add(1)
	if r.counters != nil {
		r.counters.Drop(DropFragmentExpired)
	}
}

// drop frees a slot, keeping its buffers.
func (r *reassembler) drop(s *reasmSlot) { s.inUse = false }

// stats returns how many packets were rebuilt, how many incomplete ones were
// dropped (timed out, stale or evicted), and how many datagrams were
// malformed or inconsistent (each dropping its packet in progress, if any).
// Safe to call concurrently with add.
func (r *reassembler) stats() (completed, expired, malformed uint64) {
	return r.completed.Load(), r.expired.Load(), r.malformed.Load()
}

// growBuf returns b resliced to n bytes, reallocated if its capacity is too
// small (rounded up to 2 KiB so similar sizes reuse it).
func growBuf(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, (n+2047)&^2047)
	}
	return b[:n]
}
