package quictun

import (
	"context"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/quictun/internal/udp"
)

// DropReason says why a packet, frame or datagram was dropped. Every drop
// in the data path is counted under exactly one reason; String gives the
// name that logs, status and metrics use (docs/OPERATIONS.md lists them).
type DropReason uint8

// The drop reasons. Outbound means device → QUIC, inbound QUIC → device.
const (
	// DropMalformedDatagram: an inbound datagram that is empty, a PACKET
	// with no packet after its header, or of a reserved type.
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
	// not own (TUN), or, with ServerConfig.PinMACs, a frame whose source
	// MAC the switch holds live on another port (TAP).
	DropSpoofed
	// DropNoRoute: no session owns the destination.
	DropNoRoute
	// DropLinkLocal: a kernel's own link-local chatter (e.g. IPv6 router
	// solicitations, IGMP and MLD reports), which the hub does not route:
	// a client's, or the server's on its device (then counted on the
	// server's own counters).
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
	// DropPolicy: a packet the administrator's policy forbids: a TUN packet
	// the access rules deny (ServerConfig.Rules, ClientToClient), or a frame
	// from one client to another with ServerConfig.IsolateClients.
	DropPolicy

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
	DropPolicy:               "policy",
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

// HandshakeOutcome says how a client's attempt to bring a tunnel up on
// the server ended: its TLS handshake (from the certificate check on) and
// the control exchange after it. Each attempt is counted under exactly one
// outcome (ServerStatus.Handshakes); Result and Reason give the names that
// metrics use (docs/OPERATIONS.md lists them). TLS handshakes that fail
// before the server looks at the client's certificate (a wrong protocol,
// a scanner) never reach the server's code and are not counted.
type HandshakeOutcome uint8

// The handshake outcomes.
const (
	// HandshakeSuccess: the tunnel came up.
	HandshakeSuccess HandshakeOutcome = iota
	// HandshakeNoCertificate: the client sent no certificate.
	HandshakeNoCertificate
	// HandshakeUnknownAuthority: the client's certificate is not signed
	// by the CA the server trusts.
	HandshakeUnknownAuthority
	// HandshakeCertificateExpired: the client's certificate has expired
	// or is not valid yet.
	HandshakeCertificateExpired
	// HandshakeBadCertificate: the certificate checks refused the client
	// for another reason (not made for a client, a broken chain).
	HandshakeBadCertificate
	// HandshakeCertificateUnusable: the certificate verified but names no
	// identity quictun can use (crypto.IdentityOf failed).
	HandshakeCertificateUnusable
	// HandshakeRevoked: the client's certificate is revoked.
	HandshakeRevoked
	// HandshakeModeMismatch: the client asked for another mode.
	HandshakeModeMismatch
	// HandshakeUnsupportedVersion: the client speaks a protocol version
	// the server does not.
	HandshakeUnsupportedVersion
	// HandshakeNoAddress: the server has no tunnel address for the client.
	HandshakeNoAddress
	// HandshakeAddressInUse: the client's address is held by another
	// identity.
	HandshakeAddressInUse
	// HandshakeProtocol: the client broke the control exchange or did not
	// finish it in time (or the server was shutting down).
	HandshakeProtocol
	// HandshakeAborted: the connection ended during the control exchange:
	// the client went away.
	HandshakeAborted
	// HandshakeRetry: a client was asked to prove its address with a QUIC
	// Retry before the handshake goes on (HandshakeLimits); the same
	// client's attempt then counts again under its outcome, so this one
	// is not an attempt's end but a step.
	HandshakeRetry
	// HandshakeSourceLimit: refused because its source had too many
	// handshakes in flight (HandshakeLimits.MaxPerSource).
	HandshakeSourceLimit
	// HandshakeTimeout: the handshake did not complete in time (a
	// half-open handshake: Initials that never finish).
	HandshakeTimeout
	// HandshakeAcceptQueueFull: the handshake completed but quic-go's
	// accept queue was full, and quic-go refused the client.
	HandshakeAcceptQueueFull

	numHandshakeOutcomes
)

// handshakeNames holds each outcome's result and reason.
var handshakeNames = [numHandshakeOutcomes][2]string{
	HandshakeSuccess:             {"success", ""},
	HandshakeNoCertificate:       {"refused", "no_certificate"},
	HandshakeUnknownAuthority:    {"refused", "unknown_authority"},
	HandshakeCertificateExpired:  {"refused", "certificate_expired"},
	HandshakeBadCertificate:      {"refused", "bad_certificate"},
	HandshakeCertificateUnusable: {"refused", "certificate_unusable"},
	HandshakeRevoked:             {"refused", "revoked"},
	HandshakeModeMismatch:        {"refused", CodeModeMismatch},
	HandshakeUnsupportedVersion:  {"refused", CodeVersion},
	HandshakeNoAddress:           {"refused", CodeNoAddress},
	HandshakeAddressInUse:        {"refused", CodeAddressInUse},
	HandshakeProtocol:            {"failed", "protocol"},
	HandshakeAborted:             {"failed", "aborted"},
	HandshakeRetry:               {"retry", "address_validation"},
	HandshakeSourceLimit:         {"refused", "source_limit"},
	HandshakeTimeout:             {"failed", "handshake_timeout"},
	HandshakeAcceptQueueFull:     {"refused", "accept_queue_full"},
}

// Result returns "success", "refused" (the server said no) or "failed"
// (the exchange did not complete).
func (o HandshakeOutcome) Result() string {
	if o < numHandshakeOutcomes {
		return handshakeNames[o][0]
	}
	return "unknown"
}

// Reason returns why a handshake was refused or failed, e.g. "revoked";
// "" for HandshakeSuccess.
func (o HandshakeOutcome) Reason() string {
	if o < numHandshakeOutcomes {
		return handshakeNames[o][1]
	}
	return "unknown"
}

// String returns the reason, or "success".
func (o HandshakeOutcome) String() string {
	if o == HandshakeSuccess {
		return "success"
	}
	return o.Reason()
}

// HandshakeOutcomes returns every outcome, in a stable order.
func HandshakeOutcomes() []HandshakeOutcome {
	out := make([]HandshakeOutcome, numHandshakeOutcomes)
	for i := range out {
		out[i] = HandshakeOutcome(i)
	}
	return out
}

// HandshakeCounts holds a count per HandshakeOutcome, indexed by it.
type HandshakeCounts [numHandshakeOutcomes]uint64

// Get returns the count for o.
func (h HandshakeCounts) Get(o HandshakeOutcome) uint64 { return h[o] }

// handshakeBounds are the upper bounds of the handshake-time buckets: a
// handshake on a LAN takes a few milliseconds, across a continent a few
// round trips of up to 100 ms or more, and one whose Initial was lost
// seconds (retransmitted at ~0.2/0.6/1.4/3 s).
var handshakeBounds = [...]time.Duration{
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second,
}

// DurationHistogram is a copy of a histogram of durations (handshake
// times).
type DurationHistogram struct {
	// Bounds are the buckets' upper bounds, ascending.
	Bounds [len(handshakeBounds)]time.Duration
	// Counts[i] is the number of observations in bucket i: at most
	// Bounds[i] and more than Bounds[i-1]. The last holds those over
	// every bound. Not cumulative.
	Counts [len(handshakeBounds) + 1]uint64
	// Sum is the sum of all observations.
	Sum time.Duration
}

// Count returns the number of observations.
func (h DurationHistogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// durationRecorder is the atomic histogram behind a DurationHistogram.
type durationRecorder struct {
	counts [len(handshakeBounds) + 1]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// observe records d.
func (r *durationRecorder) observe(d time.Duration) {
	i := 0
	for i < len(handshakeBounds) && d > handshakeBounds[i] {
		i++
	}
	r.counts[i].Add(1)
	r.sum.Add(int64(d))
}

// snapshot returns a copy.
func (r *durationRecorder) snapshot() DurationHistogram {
	h := DurationHistogram{Bounds: handshakeBounds, Sum: time.Duration(r.sum.Load())}
	for i := range r.counts {
		h.Counts[i] = r.counts[i].Load()
	}
	return h
}

// Traffic sums the counters of one or many sessions.
type Traffic struct {
	// Packets and bytes each way, as in SessionInfo.
	TxPackets, TxBytes, RxPackets, RxBytes uint64
	// Drops by reason.
	Drops DropCounts
	// RemoteChanges counts the clients' address changes (migrations).
	RemoteChanges uint64
}

// add adds a session's counters and address changes to t.
func (t *Traffic) add(c *Counters, remoteChanges int64) {
	t.TxPackets += c.TxPackets.Load()
	t.TxBytes += c.TxBytes.Load()
	t.RxPackets += c.RxPackets.Load()
	t.RxBytes += c.RxBytes.Load()
	for i := range t.Drops {
		t.Drops[i] += c.Dropped(DropReason(i))
	}
	t.RemoteChanges += uint64(remoteChanges)
}

// serverStats is what a server counts besides its Counters: handshakes by
// outcome and their times, and what the sessions that are gone carried.
type serverStats struct {
	handshakes    [numHandshakeOutcomes]atomic.Uint64
	handshakeTime durationRecorder

	// retired sums the final counters of the sessions that left
	// Server.sessions, so that totals over all sessions never go down;
	// guarded by Server.mu.
	retired Traffic
}

// count counts one handshake with outcome o.
func (st *serverStats) count(o HandshakeOutcome) { st.handshakes[o].Add(1) }

// succeeded counts a tunnel that came up on conn and the time since the
// client's first packet.
func (st *serverStats) succeeded(conn *quic.Conn) {
	st.count(HandshakeSuccess)
	if start, ok := conn.Context().Value(handshakeStartKey{}).(time.Time); ok {
		st.handshakeTime.observe(time.Since(start))
	}
}

// setupFailed counts a control exchange that did not bring the tunnel up:
// refused by the server (a *RemoteError with its code), broken by the
// client (the server closed the connection), or abandoned by it.
func (st *serverStats) setupFailed(err error, conn *quic.Conn) {
	var re *RemoteError
	if errors.As(err, &re) {
		switch re.Code {
		case CodeModeMismatch:
			st.count(HandshakeModeMismatch)
		case CodeVersion:
			st.count(HandshakeUnsupportedVersion)
		case CodeNoAddress:
			st.count(HandshakeNoAddress)
		case CodeAddressInUse:
			st.count(HandshakeAddressInUse)
		default:
			st.count(HandshakeProtocol)
		}
		return
	}
	var ae *quic.ApplicationError
	if cause := context.Cause(conn.Context()); errors.As(cause, &ae) && !ae.Remote {
		st.count(HandshakeProtocol)
		return
	}
	st.count(HandshakeAborted)
}

// certRefused counts a handshake whose client certificate the server's
// TLS checks refused with err.
func (st *serverStats) certRefused(certs []*x509.Certificate, err error, now time.Time) {
	var ua x509.UnknownAuthorityError
	var ve *qcrypto.ValidityError
	switch {
	case len(certs) == 0:
		st.count(HandshakeNoCertificate)
	case now.After(certs[0].NotAfter) || now.Before(certs[0].NotBefore), errors.As(err, &ve):
		// errors.As: the leaf is valid but its CA is not (crypto.VerifyChain).
		st.count(HandshakeCertificateExpired)
	case errors.As(err, &ua):
		st.count(HandshakeUnknownAuthority)
	default:
		st.count(HandshakeBadCertificate)
	}
}

// retire adds the final counters of a session leaving Server.sessions to
// the retired sums. The caller holds Server.mu.
func (st *serverStats) retire(ss *session) {
	st.retired.add(&ss.Counters, ss.stats.remoteChanges.Load())
}

// handshakeStartKey keys the time a connection's first packet arrived in
// its context.
type handshakeStartKey struct{}
