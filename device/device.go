// Package device provides the packet devices quictun moves traffic between:
// Linux TUN (layer 3, IP packets) and TAP (layer 2, Ethernet frames)
// devices, their link configuration (addresses, MTU, bridge, routes), and an
// in-memory pipe that stands in for a device in tests.
//
// Every Device is batch-shaped, like golang.zx2c4.com/wireguard/tun: Read and
// Write move several packets per call and leave headroom before each packet,
// so that the tunnel can write its own header in front without copying.
package device

import (
	"errors"
	"fmt"
)

// Kind says whether a device carries IP packets (TUN) or Ethernet frames (TAP).
type Kind int

const (
	// TUN devices carry IP packets (layer 3).
	TUN Kind = iota + 1
	// TAP devices carry Ethernet frames (layer 2).
	TAP
)

// String returns "tun" or "tap".
func (k Kind) String() string {
	switch k {
	case TUN:
		return "tun"
	case TAP:
		return "tap"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// ParseKind parses "tun" or "tap".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "tun":
		return TUN, nil
	case "tap":
		return TAP, nil
	}
	return 0, fmt.Errorf("unknown device mode %q (want tun or tap)", s)
}

// MaxNameLen is the longest interface name Linux accepts (IFNAMSIZ-1).
// Longer names are silently truncated by the kernel, so they are rejected.
const MaxNameLen = 15

// OffloadBufSize is the buffer size (with the packet at offset 16 or less)
// that lets Write of an offloading TUN coalesce TCP and UDP segments into
// one 64 KiB super-packet in place, and Write of an offloading TAP TCP
// segments into one super-frame.
const OffloadBufSize = 64 + 65535 + 64

// Coalescer is implemented by a device that may say whether its Write
// coalesces segments (GRO) into super-packets, best in place in buffers of
// OffloadBufSize capacity. A TAP opened with offloads does; one without
// does not.
type Coalescer interface {
	Coalesces() bool
}

// Coalesces reports whether d's Write coalesces segments: a Coalescer
// that says so, or any other device of kind TUN (which may be an
// offloading TUN behind a wrapper).
func Coalesces(d Device) bool {
	if c, ok := d.(Coalescer); ok {
		return c.Coalesces()
	}
	return d.Kind() == TUN
}

// ErrClosed is returned by Read and Write once the device is closed.
var ErrClosed = errors.New("device closed")

// Device is a TUN or TAP device, or an in-memory stand-in.
//
// Read and Write may be called concurrently with each other; Write may be
// called from several goroutines at once. Close unblocks a pending Read.
type Device interface {
	// Read reads up to len(bufs) packets, the i-th into bufs[i][offset:], and
	// stores its length in sizes[i]. It blocks until at least one packet is
	// available and returns the number of packets read. After Close it
	// returns ErrClosed (possibly wrapped).
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	// Write writes each bufs[i][offset:] as one packet and returns how many
	// were written. On an error with n < len(bufs), bufs[n] was refused and
	// the packets after it were not tried; an offloading TUN tries every
	// packet and returns n == len(bufs) with the error when any was
	// refused. The bytes before offset may be overwritten, and a device
	// that coalesces (an offloading TUN or TAP) may also rewrite the
	// packets' headers, grow bufs[i] within its capacity (so the capacities
	// of bufs must not overlap) and, a TUN, swap elements of bufs.
	Write(bufs [][]byte, offset int) (n int, err error)
	// Name is the interface name (e.g. "qt0").
	Name() string
	// Kind is TUN or TAP.
	Kind() Kind
	// BatchSize is the largest number of packets Read returns at once.
	BatchSize() int
	// Close closes the device. A device that existed before Open is left in
	// place; one that Open created is removed.
	Close() error
}
