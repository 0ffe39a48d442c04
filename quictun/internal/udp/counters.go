package udp

import "sync/atomic"

// Counters count what the socket does that the tunnel's figures must
// show. All fields are atomic; the zero value is ready. The caller owns
// them, not the socket, so that they outlive it: a client opens a socket
// per connection and counts over all of them. The core embeds them in its
// own counters and reports TransientSend as a drop reason.
type Counters struct {
	// TransientSend counts sends that failed with a transient error and
	// were reported to quic-go as sent, so the packet was lost (see Conn).
	TransientSend atomic.Uint64
	// RxHeldBack counts socket reads held back for quic-go's datagram
	// queue to drain (see RxGate).
	RxHeldBack atomic.Uint64
	// RxGateTimeouts counts those of them ended by the time limit.
	RxGateTimeouts atomic.Uint64
}
