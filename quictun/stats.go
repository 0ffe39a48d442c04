package quictun

import "sync/atomic"

// Counters count what crosses a session (or the client's tunnel) and
// every packet dropped, by reason: nothing is dropped without a count.
type Counters struct {
	TxPackets, TxBytes atomic.Uint64 // outbound: sent as datagrams
	RxPackets, RxBytes atomic.Uint64 // inbound: received and delivered
	Fragmented         atomic.Uint64 // outbound packets split into fragments
	Reassembled        atomic.Uint64 // inbound packets rebuilt from fragments
	TooBig             atomic.Uint64 // too big and answered with ICMP
	DropQueueFull      atomic.Uint64 // outbound queue full (slow peer)
	DropInboundFull    atomic.Uint64 // inbound queue full (device too slow)
	DropSpoofed        atomic.Uint64 // inbound source not the peer's
	DropNoRoute        atomic.Uint64 // no session owns the destination
	DropMalformed      atomic.Uint64 // unparsable packet or datagram
	DropNoConn         atomic.Uint64 // client: no connection at the moment
	DropSendError      atomic.Uint64 // the connection refused the datagram
	DropDeviceError    atomic.Uint64 // the device refused a write
	RxHeldBack         atomic.Uint64 // socket reads held back for quic-go's datagram queue to drain (rxGate)
	RxGateTimeouts     atomic.Uint64 // of those, ended by the time limit
}

// Snapshot returns the counters as a map for logs and status output;
// zero counters are left out.
func (c *Counters) Snapshot() map[string]uint64 {
	m := make(map[string]uint64)
	add := func(k string, v *atomic.Uint64) {
		if n := v.Load(); n != 0 {
			m[k] = n
		}
	}
	add("tx_packets", &c.TxPackets)
	add("tx_bytes", &c.TxBytes)
	add("rx_packets", &c.RxPackets)
	add("rx_bytes", &c.RxBytes)
	add("fragmented", &c.Fragmented)
	add("reassembled", &c.Reassembled)
	add("too_big", &c.TooBig)
	add("drop_queue_full", &c.DropQueueFull)
	add("drop_inbound_full", &c.DropInboundFull)
	add("drop_spoofed", &c.DropSpoofed)
	add("drop_no_route", &c.DropNoRoute)
	add("drop_malformed", &c.DropMalformed)
	add("drop_no_conn", &c.DropNoConn)
	add("drop_send_error", &c.DropSendError)
	add("drop_device_error", &c.DropDeviceError)
	add("rx_held_back", &c.RxHeldBack)
	add("rx_gate_timeouts", &c.RxGateTimeouts)
	return m
}
