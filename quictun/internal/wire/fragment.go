package wire

import (
	"encoding/binary"
	"errors"
	"sync/atomic"
	"time"
)

// Errors of Fragmenter.Split: the caller passed something it cannot
// send. They are returned unwrapped.
var (
	// ErrEmptyPacket: Split was given an empty packet.
	ErrEmptyPacket = errors.New("empty packet")
	// ErrDatagramTooSmall: the largest datagram cannot hold a FRAGMENT
	// header and one byte.
	ErrDatagramTooSmall = errors.New("datagram size too small for a fragment header")
	// ErrTooManyFragments: the packet needs more than MaxFragments pieces
	// at this datagram size.
	ErrTooManyFragments = errors.New("packet needs more than 16 fragments")
	// ErrFragmentBuffers: the caller's datagram buffers are too few or too
	// small for the pieces.
	ErrFragmentBuffers = errors.New("too few or too small fragment buffers")
)

// Errors of Reassembler.Add, one per way a FRAGMENT datagram can be bad,
// so that a receiver can count each cause apart. They are returned
// unwrapped, since wrapping would allocate and Add runs once per datagram,
// so callers may compare them with ==.
var (
	// ErrFragmentShort: the datagram is shorter than a FRAGMENT header
	// and one byte of piece.
	ErrFragmentShort = errors.New("fragment datagram too short")
	// ErrFragmentType: the datagram's type is not FRAGMENT.
	ErrFragmentType = errors.New("datagram is not a fragment")
	// ErrFragmentHeader: the count is outside 2..MaxFragments, or the
	// index is not below it.
	ErrFragmentHeader = errors.New("fragment index or count out of range")
	// ErrFragmentInconsistent: the piece's count or length disagrees with
	// earlier pieces of the same packet; the packet in progress is dropped.
	ErrFragmentInconsistent = errors.New("fragment count or length disagrees with earlier pieces")
	// ErrFragmentTooLarge: the packet the pieces make would exceed 65553
	// bytes, the largest packet the format carries. Add knows it from one
	// piece (every piece but the last is at least as long as the last) or
	// from a piece and the last; in the second case the packet in progress
	// is dropped.
	ErrFragmentTooLarge = errors.New("fragmented packet too large")
)

// Fragmenter turns packets into datagrams: one PACKET datagram when the
// packet fits, FRAGMENT datagrams when it does not. Its only state is the
// atomic fragment id counter, so it is safe for concurrent use: all
// senders on one connection (or on all of a hub's connections) may share
// one Fragmenter and never pick the same id. The zero value is ready to
// use.
type Fragmenter struct {
	nextID atomic.Uint32 // the next fragment id, in its low 16 bits
}

// newID returns the next fragment id.
func (f *Fragmenter) newID() uint16 { return uint16(f.nextID.Add(1) - 1) }

// Split writes the datagrams carrying pkt into out[i] (caller-provided
// buffers with a capacity of at least maxDatagram bytes each, not
// overlapping pkt) and returns how many, each out[i] resliced to its
// length. A pkt that fits (1 + len(pkt) ≤ maxDatagram) becomes one PACKET
// datagram; a bigger one becomes 2..16 FRAGMENT datagrams of about equal
// size. It returns an error, writing nothing, if pkt is empty, if
// maxDatagram ≤ FragmentHeaderLen, if more than MaxFragments pieces would
// be needed, or if out has too few or too small buffers. It does not
// allocate: the datagrams are written into the caller's buffers.
func (f *Fragmenter) Split(pkt []byte, maxDatagram int, out [][]byte) (int, error) {
	if len(pkt) == 0 {
		return 0, ErrEmptyPacket
	}
	if maxDatagram <= FragmentHeaderLen {
		return 0, ErrDatagramTooSmall
	}
	if PacketHeaderLen+len(pkt) <= maxDatagram {
		if len(out) < 1 || cap(out[0]) < PacketHeaderLen+len(pkt) {
			return 0, ErrFragmentBuffers
		}
		d := out[0][:PacketHeaderLen+len(pkt)]
		d[0] = TypePacket
		copy(d[PacketHeaderLen:], pkt)
		out[0] = d
		return 1, nil
	}
	room := maxDatagram - FragmentHeaderLen
	count := (len(pkt) + room - 1) / room
	if count > MaxFragments {
		return 0, ErrTooManyFragments
	}
	pieceLen := (len(pkt) + count - 1) / count
	count = (len(pkt) + pieceLen - 1) / pieceLen // evening out may save a piece
	if len(out) < count {
		return 0, ErrFragmentBuffers
	}
	for i := range count {
		if cap(out[i]) < FragmentHeaderLen+pieceLen {
			return 0, ErrFragmentBuffers
		}
	}
	id := f.newID()
	for i := range count {
		piece := pkt[i*pieceLen : min(len(pkt), (i+1)*pieceLen)]
		d := out[i][:FragmentHeaderLen+len(piece)]
		d[0] = TypeFragment
		binary.BigEndian.PutUint16(d[1:3], id)
		d[3] = byte(i)
		d[4] = byte(count)
		copy(d[FragmentHeaderLen:], piece)
		out[i] = d
	}
	return count, nil
}

// Defaults for NewReassembler.
const (
	defaultReassemblySlots   = 8
	defaultReassemblyTimeout = 2 * time.Second
	// reassemblyStaleIDs is how far (in ids, mod 2^16) a packet in progress
	// may fall behind the newest id seen before it is dropped as expired:
	// its missing pieces are lost, and its id must be free again long
	// before the 16-bit counter wraps around to it.
	reassemblyStaleIDs = 4096
)

// Reassembler rebuilds fragmented packets. It keeps a bounded number of
// packets in progress (slots), each bounded to 65553 bytes, so the memory
// a peer can make it hold is bounded too. An incomplete packet is dropped
// (expired) when it is older than the timeout at the next Add, when its
// slot is needed for a new packet and it is the oldest, or when its id
// falls more than 4096 behind the id of a newer fragment. Duplicate pieces
// are ignored; a piece whose count or length disagrees with the earlier
// pieces drops that packet (ErrFragmentInconsistent).
//
// Slot buffers are allocated on first use, sized to the packet, and reused,
// so a connection that never fragments costs no buffer memory and steady
// state allocates nothing. Not safe for concurrent use: each inbound
// goroutine has its own.
type Reassembler struct {
	timeout  time.Duration
	slots    []reasmSlot
	onExpire func() // called for each incomplete packet given up, if not nil
	// limit is the largest packet rebuilt: maxReassembled. Tests lower it,
	// so that the fuzzer reaches it with small inputs.
	limit int
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

// NewReassembler returns a Reassembler with room for slots packets in
// progress that drops an incomplete packet timeout after its first piece.
// Zero (or negative) values mean 8 slots and 2 seconds, the values of
// docs/PROTOCOL.md. onExpire, if not nil, is called on the goroutine
// calling Add for each incomplete packet given up: an expiry is not an
// error of the datagram being added (it is the loss of another packet's
// pieces), so it is reported on the side, for the caller to count.
func NewReassembler(slots int, timeout time.Duration, onExpire func()) *Reassembler {
	if slots <= 0 {
		slots = defaultReassemblySlots
	}
	if timeout <= 0 {
		timeout = defaultReassemblyTimeout
	}
	return &Reassembler{
		timeout:  timeout,
		slots:    make([]reasmSlot, slots),
		onExpire: onExpire,
		limit:    maxReassembled,
	}
}

// Add takes one FRAGMENT datagram (the whole payload including its 5-byte
// header) that arrived at now. It returns the complete packet when the last
// missing piece arrives, or nil. The packet is valid until the next call to
// Add: it is the slot's buffer, reused for the next packet. An error is one
// of the ErrFragment variables, unwrapped, saying what was wrong with dg;
// it is for counting, not fatal. Steady state does not allocate.
func (r *Reassembler) Add(dg []byte, now time.Time) ([]byte, error) {
	if len(dg) < FragmentHeaderLen+1 {
		return nil, ErrFragmentShort
	}
	if dg[0]&TypeMask != TypeFragment {
		return nil, ErrFragmentType
	}
	id := binary.BigEndian.Uint16(dg[1:3])
	index, count := int(dg[3]), int(dg[4])
	if count < 2 || count > MaxFragments || index >= count {
		return nil, ErrFragmentHeader
	}
	piece := dg[FragmentHeaderLen:]
	isLast := index == count-1
	// Every piece but the last is at least as long as the last, and the
	// last is at least 1 byte: one piece bounds the packet from below.
	if (isLast && count*len(piece) > r.limit) || (!isLast && (count-1)*len(piece) >= r.limit) {
		return nil, ErrFragmentTooLarge
	}

	s := r.slotFor(id, now)
	if s.inUse && s.count != count {
		r.drop(s)
		return nil, ErrFragmentInconsistent
	}
	if !s.inUse {
		*s = reasmSlot{inUse: true, id: id, count: count, started: now, buf: s.buf, last: s.last}
	}
	bit := uint32(1) << index
	if s.have&bit != 0 {
		return nil, nil // duplicate
	}
	if isLast {
		if s.pieceLen != 0 && len(piece) > s.pieceLen {
			r.drop(s)
			return nil, ErrFragmentInconsistent
		}
		if s.pieceLen != 0 && (count-1)*s.pieceLen+len(piece) > r.limit {
			r.drop(s)
			return nil, ErrFragmentTooLarge
		}
		s.lastLen = len(piece)
		s.last = growBuf(s.last, len(piece))
		copy(s.last, piece)
	} else {
		switch {
		case s.pieceLen == 0:
			if s.lastLen > len(piece) {
				r.drop(s)
				return nil, ErrFragmentInconsistent
			}
			if (count-1)*len(piece)+s.lastLen > r.limit {
				r.drop(s)
				return nil, ErrFragmentTooLarge
			}
			s.pieceLen = len(piece)
			s.buf = growBuf(s.buf, min(count*len(piece), r.limit))
		case s.pieceLen != len(piece):
			r.drop(s)
			return nil, ErrFragmentInconsistent
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
	return pkt, nil
}

// slotFor returns the slot holding id, or a fresh one for it (not yet
// marked in use). On the way it expires packets that are too old or whose
// id is stale; if no slot is free it evicts the oldest packet.
func (r *Reassembler) slotFor(id uint16, now time.Time) *reasmSlot {
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

// expire tells onExpire of one incomplete packet given up.
func (r *Reassembler) expire() {
	if r.onExpire != nil {
		r.onExpire()
	}
}

// drop frees a slot, keeping its buffers.
func (r *Reassembler) drop(s *reasmSlot) { s.inUse = false }

// growBuf returns b resliced to n bytes, reallocated if its capacity is too
// small (rounded up to 2 KiB so similar sizes reuse it).
func growBuf(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, (n+2047)&^2047)
	}
	return b[:n]
}
