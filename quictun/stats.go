package quictun

import (
	"sync/atomic"

	"github.com/quictun/quictun/quictun/internal/udp"
)

// DropReason says why a packet, frame or datagram was dropped. Every drop
// in the data path is counted under exactly one reason; String gives the
// name that logs, status and metrics use (docs/OPERATIONS.md lists them).
type DropReason uint8

// The drop reasons. Outbound means device → QUIC, inbound QUIC → device.
const (
	// DropMalformedDatagram: an inbound datagram that is empty or of a
	// reserved type.
	DropMalformedDatagram DropReason = iota
	// DropFragmentShort: a FRAGMENT datagram shorter than its header plus
	// one byte.
	DropFragmentShort
	// DropFragmentHeader: a FRAGMENT whose index or count is out of range.
	DropFragmentHeader
	// DropFragmentInconsistent: a FRAGMENT whose count or length disagrees
	// with earlier pieces of the same packet.
	DropFragmentInconsistent
	// DropFragmentTooLarge: the pieces would make a packet larger than the
	// largest one the protocol allows.
	DropFragmentTooLarge
	// DropFragmentExpired: an incomplete packet given up (timed out, stale
	// id, or evicted for room).
	DropFragmentExpired
	// DropBadIP: a TUN packet that is not a well-formed IPv4 or IPv6
	// packet.
	DropBadIP
	// DropBadEthernet: a TAP frame too short for an Ethernet header.
	DropBadEthernet
	// DropSpoofed: an inbound packet whose source address the client does
	// not own.
	DropSpoofed
	// DropNoRoute: no session owns the destination.
	DropNoRoute
	// DropLinkLocal: a client kernel's own link-local chatter (e.g. IPv6
	// router solicitations), which the hub does not route.
	DropLinkLocal
	// DropLoop: a packet a client sent to one of its own addresses (TUN),
	// or a frame to a MAC on the port it came from, already on its
	// segment (TAP).
	DropLoop
	// DropOversize: a packet larger than the buffers of the path it takes
	// (a reassembled packet too big to forward, a device write of a
	// packet over the device's limit).
	DropOversize
	// DropTooBigUnanswered: too big for one datagram and not answered with
	// ICMP (an ICMP error itself, a non-first fragment, multicast, or the
	// answer's rate limit).
	DropTooBigUnanswered
	// DropQueueFull: a session's outbound queue was full (a slow peer).
	DropQueueFull
	// DropInboundFull: the inbound queue was full (the device too slow).
	DropInboundFull
	// DropNoConn: the client had no connection at the moment.
	DropNoConn
	// DropSendError: the connection refused the datagram.
	DropSendError
	// DropTransientSend: the UDP socket failed a send with a transient
	// error (network unreachable, no address, …): taken as loss.
	DropTransientSend
	// DropDeviceError: the device refused a write.
	DropDeviceError
	// DropMACTableFull: a TAP source address not learned because the MAC
	// table was full (the frame itself is still switched).
	DropMACTableFull
	// DropDeviceRead: frames the TAP device dropped on read (malformed or
	// unsupported offload), as the device counts them.
	DropDeviceRead

	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformedDatagram:    "malformed_datagram",
	DropFragmentShort:        "fragment_short",
	DropFragmentHeader:       "fragment_header",
	DropFragmentInconsistent: "fragment_inconsistent",
	DropFragmentTooLarge:     "fragment_too_large",
	DropFragmentExpired:      "fragment_expired",
	DropBadIP:                "bad_ip",
	DropBadEthernet:          "bad_ethernet",
	DropSpoofed:              "spoofed",
	DropNoRoute:              "no_route",
	DropLinkLocal:            "link_local",
	DropLoop:                 "loop",
	DropOversize:             "oversize",
	DropTooBigUnanswered:     "too_big_unanswered",
	DropQueueFull:            "queue_full",
	DropInboundFull:          "inbound_full",
	DropNoConn:               "no_conn",
	DropSendError:            "send_error",
	DropTransientSend:        "transient_send",
	DropDeviceError:          "device_error",
	DropMACTableFull:         "mac_table_full",
	DropDeviceRead:           "device_read",
}

// String returns the reason's name, e.g. "queue_full".
func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// DropReasons returns every reason, in a stable order.
func DropReasons() []DropReason {
	rs := make([]DropReason, numDropReasons)
	for i := range rs {
		rs[i] = DropReason(i)
	}
	return rs
}

// Counters count what crosses a session (or the client's tunnel) and
// every packet dropped, by reason: nothing is dropped without a count.
// All fields are atomic; the zero value is ready.
type Counters struct {
	TxPackets, TxBytes atomic.Uint64 // outbound: sent as datagrams
	RxPackets, RxBytes atomic.Uint64 // inbound: received and delivered
	Fragmented         atomic.Uint64 // outbound packets split into fragments
	Reassembled        atomic.Uint64 // inbound packets rebuilt from fragments
	TooBig             atomic.Uint64 // too big and answered with ICMP

	// The UDP socket's own counters: package udp counts into them, and
	// could not count into this package's without importing the core.
	// Embedded, so they read as c.RxHeldBack (socket reads held back for
	// quic-go's datagram queue to drain) and c.RxGateTimeouts (those of
	// them ended by the time limit); a session's stay zero. TransientSend
	// is a drop: Dropped, Drops, DroppedTotal and Snapshot report it as
	// DropTransientSend.
	udp.Counters

	drops [numDropReasons]atomic.Uint64
}

// socket returns the counters the UDP socket counts into.
func (c *Counters) socket() *udp.Counters { return &c.Counters }

// Drop counts one drop for reason r. It does not allocate.
func (c *Counters) Drop(r DropReason) { c.drops[r].Add(1) }

// Dropped returns how many drops were counted for reason r.
func (c *Counters) Dropped(r DropReason) uint64 {
	n := c.drops[r].Load()
	if r == DropTransientSend {
		n += c.TransientSend.Load()
	}
	return n
}

// Drops returns every reason's count (zeros included), indexed by
// DropReason.
func (c *Counters) Drops() [numDropReasons]uint64 {
	var out [numDropReasons]uint64
	for i := range out {
		out[i] = c.Dropped(DropReason(i))
	}
	return out
}

// DroppedTotal returns the sum over all reasons.
func (c *Counters) DroppedTotal() uint64 {
	var n uint64
	for i := range c.drops {
		n += c.Dropped(DropReason(i))
	}
	return n
}

// Snapshot returns the counters as a map for logs and status output;
// zero counters are left out. Drops appear as "drop_<reason>".
func (c *Counters) Snapshot() map[string]uint64 {
	m := make(map[string]uint64)
	add := func(k string, n uint64) {
		if n != 0 {
			m[k] = n
		}
	}
	add("tx_packets", c.TxPackets.Load())
	add("tx_bytes", c.TxBytes.Load())
	add("rx_packets", c.RxPackets.Load())
	add("rx_bytes", c.RxBytes.Load())
	add("fragmented", c.Fragmented.Load())
	add("reassembled", c.Reassembled.Load())
	add("too_big", c.TooBig.Load())
	add("rx_held_back", c.RxHeldBack.Load())
	add("rx_gate_timeouts", c.RxGateTimeouts.Load())
	for i := range c.drops {
		add("drop_"+dropNames[i], c.Dropped(DropReason(i)))
	}
	return m
}

// deviceDrops carries a device's own drop count (frames a TAP could not
// read: see device.TunTap.Dropped) into Counters as DropDeviceRead, so
// they show while the tunnel runs, not only at exit. It is used by the one
// goroutine that reads the device.
type deviceDrops struct {
	dev  interface{ Dropped() uint64 } // nil: the device counts nothing
	seen uint64
}

// newDeviceDrops returns a deviceDrops for dev.
func newDeviceDrops(dev any) deviceDrops {
	d, _ := dev.(interface{ Dropped() uint64 })
	return deviceDrops{dev: d}
}

// sync adds what the device dropped since the last call to c.
func (d *deviceDrops) sync(c *Counters) {
	if d.dev == nil {
		return
	}
	if n := d.dev.Dropped(); n > d.seen {
		c.drops[DropDeviceRead].Add(n - d.seen)
		d.seen = n
	}
}
