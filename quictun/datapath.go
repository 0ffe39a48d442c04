package quictun

// The data path both ends run. The server runs it once per session (and
// its device reader); the client for its one connection. What differs is
// only where a packet goes once decided: the hub picks a session (or the
// device, or a flood), the client has one peer.
//
//	inbound:   ReceiveDatagram ─► inboundPath.run: header / reassembly ─► handle ─► devBatch ─► device.Write
//	outbound:  readPackets ─► tooBigFor? ─► answerTooBig (ICMP back) ─► writeOne / the origin's queue
//	                                    └─► sendPacket ─► SendDatagram (PACKET, or FRAGMENTs)

import (
	"errors"
	"log/slog"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/udp"
	"github.com/quictun/quictun/quictun/internal/wire"
	"github.com/quictun/quictun/third_party/quic-go"
)

// maxFrameLen is the largest TAP frame carried: a 1500-byte payload in
// an Ethernet header with up to two VLAN tags (802.1ad), without FCS.
const maxFrameLen = TAPMTU + packet.EthHeaderLen + 2*packet.VLANTagLen

// maxHubPacket is the largest packet the data path carries between a
// connection and a device or another connection: a full TAP frame, or the
// TUN MTU if larger.
func maxHubPacket(mtu int) int { return max(mtu, maxFrameLen) }

// inboundPath is one connection's inbound half: reassembly state and the
// batch of device writes, owned by the goroutine that runs it.
type inboundPath struct {
	reasm *wire.Reassembler
	out   *devBatch
	c     *Counters
}

// newInboundPath returns the inbound half for a connection that writes
// into dev packets of up to maxPacket bytes, counting into c.
func newInboundPath(dev device.Device, maxPacket int, c *Counters, log *slog.Logger, logRL *rateLimiter) *inboundPath {
	return &inboundPath{reasm: newReassembler(0, 0, c), out: newDevBatch(dev, maxPacket, log, logRL), c: c}
}

// run delivers conn's datagrams until the connection ends: each packet a
// datagram carries (whole, or completed by its last FRAGMENT) is counted
// and given to handle, which adds what is for the device to p.out. A
// separate goroutine drains quic-go's small receive queue into a larger
// one (startInbound), so a slow device write never makes quic-go drop.
func (p *inboundPath) run(conn *quic.Conn, gate *udp.RxGate, handle func(pkt []byte)) {
	p.out.drain(startInbound(conn, gate, p.c), func(dg []byte) {
		pkt, ok := decodeDatagram(dg, p.reasm, p.c)
		if !ok {
			return
		}
		p.c.RxPackets.Add(1)
		p.c.RxBytes.Add(uint64(len(pkt)))
		handle(pkt)
	}, p.c)
}

// readPackets reads batches from dev until it fails or is closed (nil) and
// calls handle for each packet: its index in bufs and its length. Packets
// start at offset headroom in their buffer, so the datagram header is
// written in front of them without a copy. What the device itself dropped
// (a TAP read that could not be split, say) is added to c after each read.
// The caller owns bufs: the server swaps in a fresh buffer for each packet
// it keeps, the client sends before the next read and reuses them.
func readPackets(dev device.Device, bufs [][]byte, sizes []int, c *Counters, handle func(i, n int)) error {
	drops := newDeviceDrops(dev)
	for {
		n, err := dev.Read(bufs, sizes, headroom)
		drops.sync(c)
		if err != nil {
			if errors.Is(err, device.ErrClosed) {
				return nil
			}
			return err
		}
		for i := range n {
			handle(i, sizes[i])
		}
	}
}

// tooBigFor reports whether a TUN packet read for a peer that takes
// packets of up to mtu bytes in one piece must be answered with ICMP
// instead of being sent: it is larger and must not be split (see
// mustNotSplit). It parses pkt only when it is larger than mtu.
func tooBigFor(pkt []byte, mtu int) bool {
	if len(pkt) <= mtu {
		return false
	}
	info, ok := packet.ParseIP(pkt)
	return ok && mustNotSplit(info, mtu)
}

// answerTooBig writes into out the ICMP "too big" (carrying mtu) that
// answers pkt, which is dropped either way. It counts TooBig when it
// answers, DropTooBigUnanswered when the rate limit or the rules of
// packet.BuildTooBig (no answer to ICMP errors, later fragments,
// multicast) leave pkt unanswered.
func answerTooBig(out, pkt []byte, mtu int, rl *rateLimiter, c *Counters) (n int, ok bool) {
	if !rl.allow(time.Now()) {
		c.Drop(DropTooBigUnanswered)
		return 0, false
	}
	n, ok = packet.BuildTooBig(out, pkt, mtu)
	if !ok {
		c.Drop(DropTooBigUnanswered)
		return 0, false
	}
	c.TooBig.Add(1)
	return n, true
}

// writeOne writes one packet into dev outside a devBatch (an ICMP answer,
// a packet delivered outside an inbound loop). scratch is a one-element
// slice owned by the calling goroutine, so the call does not allocate. A
// refused write is counted and logged at a limited rate.
func writeOne(dev device.Device, pkt []byte, scratch [][]byte, c *Counters, log *slog.Logger, logRL *rateLimiter) {
	scratch[0] = pkt
	_, err := dev.Write(scratch, 0)
	scratch[0] = nil
	if err != nil {
		c.Drop(DropDeviceError)
		if logRL.allow(time.Now()) {
			log.Warn("device write failed", "device", dev.Name(), "err", err)
		}
	}
}
