package quictun

import (
	"time"

	"github.com/quictun/quictun/quictun/internal/wire"
)

// newReassembler returns a reassembler (see wire.NewReassembler for slots
// and timeout) that counts each incomplete packet it gives up in c as
// DropFragmentExpired, if c is not nil.
func newReassembler(slots int, timeout time.Duration, c *Counters) *wire.Reassembler {
	var onExpire func()
	if c != nil {
		onExpire = func() { c.Drop(DropFragmentExpired) }
	}
	return wire.NewReassembler(slots, timeout, onExpire)
}

// fragmentDropReason names the drop reason for an error of
// wire.Reassembler.Add. The errors are compared with == because Add returns
// them unwrapped, and errors.Is would cost more per datagram for nothing.
func fragmentDropReason(err error) DropReason {
	switch err {
	case wire.ErrFragmentShort:
		return DropFragmentShort
	case wire.ErrFragmentHeader:
		return DropFragmentHeader
	case wire.ErrFragmentInconsistent:
		return DropFragmentInconsistent
	case wire.ErrFragmentTooLarge:
		return DropFragmentTooLarge
	}
	return DropMalformedDatagram // wire.ErrFragmentType: not a FRAGMENT at all
}
