package quictun

import (
	"context"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"
	"github.com/quictun/quictun/third_party/quic-go/qlog"
	"github.com/quictun/quictun/third_party/quic-go/qlogwriter"
)

// StrayReason says why the server dropped a datagram that arrived on its
// port for no connection: junk, a scanner, a packet of a connection long
// gone. quic-go drops them; the server counts each under one reason
// (ServerStatus.Stray) and logs them at a limited rate.
//
// Not counted: short-header packets for an unknown connection that
// quic-go answers with a stateless reset (it reports no event for them;
// those it does not answer count as StrayUnknownConnection), and
// Initials, which are handshakes (HandshakeOutcome).
type StrayReason uint8

// The stray reasons.
const (
	// StrayNotQUIC: a datagram whose first byte is no QUIC packet's (both
	// top bits clear).
	StrayNotQUIC StrayReason = iota
	// StrayBadHeader: a QUIC-looking packet whose header does not parse.
	StrayBadHeader
	// StrayUnknownConnection: a packet for a connection the server does
	// not have.
	StrayUnknownConnection
	// StrayUnexpected: a long-header packet the server does not take
	// outside a connection (Handshake or 0-RTT packets, a Version
	// Negotiation packet, an Initial too small or with too short a
	// connection ID).
	StrayUnexpected
	// StrayVersion: a packet of another QUIC version (answered with a
	// Version Negotiation packet when it is large enough).
	StrayVersion
	// StrayOverload: dropped because quic-go's queue of packets to handle
	// was full (the server is overloaded; legitimate Initials may be
	// among them).
	StrayOverload
	// StrayOther: any other reason quic-go gives.
	StrayOther

	numStrayReasons
)

var strayNames = [numStrayReasons]string{
	StrayNotQUIC:           "not_quic",
	StrayBadHeader:         "bad_header",
	StrayUnknownConnection: "unknown_connection",
	StrayUnexpected:        "unexpected_packet",
	StrayVersion:           "unsupported_version",
	StrayOverload:          "overload",
	StrayOther:             "other",
}

// String returns the reason's name, e.g. "not_quic".
func (r StrayReason) String() string {
	if r < numStrayReasons {
		return strayNames[r]
	}
	return "unknown"
}

// StrayReasons returns every reason, in a stable order.
func StrayReasons() []StrayReason {
	rs := make([]StrayReason, numStrayReasons)
	for i := range rs {
		rs[i] = StrayReason(i)
	}
	return rs
}

// StrayCounts holds a count per StrayReason, indexed by it.
type StrayCounts [numStrayReasons]uint64

// Get returns the count for r.
func (c StrayCounts) Get(r StrayReason) uint64 { return c[r] }

// Total returns the sum over all reasons.
func (c StrayCounts) Total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// strayCounter counts stray datagrams. As the server transport's Tracer
// (a qlogwriter.Recorder) it hears of every packet quic-go drops outside
// a connection; readNonQUIC feeds it the datagrams quic-go hands over as
// not QUIC.
type strayCounter struct {
	counts [numStrayReasons]atomic.Uint64
	log    *slog.Logger
	logRL  *rateLimiter
}

func newStrayCounter(log *slog.Logger) *strayCounter {
	return &strayCounter{log: log, logRL: newRateLimiter(0.2, 3)}
}

// count counts one stray datagram and logs it at a limited rate.
func (c *strayCounter) count(r StrayReason, size int, remote net.Addr) {
	c.counts[r].Add(1)
	if c.logRL.allow(time.Now()) {
		attrs := []any{"reason", r.String(), "size", size}
		if remote != nil {
			attrs = append(attrs, "remote", remote.String())
		}
		c.log.Info("stray datagram dropped (logged at most once in 5 s)", attrs...)
	}
}

// snapshot returns a copy of the counts.
func (c *strayCounter) snapshot() StrayCounts {
	var out StrayCounts
	for i := range c.counts {
		out[i] = c.counts[i].Load()
	}
	return out
}

// RecordEvent implements qlogwriter.Recorder.
func (c *strayCounter) RecordEvent(ev qlogwriter.Event) {
	switch e := ev.(type) {
	case qlog.PacketDropped:
		c.count(strayReasonOf(e.Trigger), e.Raw.Length, nil)
	case qlog.VersionNegotiationSent:
		c.count(StrayVersion, 0, nil)
	}
}

// Close implements qlogwriter.Recorder.
func (c *strayCounter) Close() error { return nil }

// strayReasonOf maps quic-go's reason to ours.
func strayReasonOf(t qlog.PacketDropReason) StrayReason {
	switch t {
	case qlog.PacketDropHeaderParseError:
		return StrayBadHeader
	case qlog.PacketDropUnknownConnectionID:
		return StrayUnknownConnection
	case qlog.PacketDropUnexpectedPacket:
		return StrayUnexpected
	case qlog.PacketDropUnexpectedVersion, qlog.PacketDropUnsupportedVersion:
		return StrayVersion
	case qlog.PacketDropDOSPrevention:
		return StrayOverload
	}
	return StrayOther
}

// readNonQUIC counts the datagrams quic-go sets aside as not QUIC until
// tr is closed or ctx is done. Without a reader quic-go drops them
// uncounted.
func (c *strayCounter) readNonQUIC(ctx context.Context, tr *quic.Transport) {
	buf := make([]byte, 64<<10)
	for {
		n, addr, err := tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			return
		}
		c.count(StrayNotQUIC, n, addr)
	}
}
