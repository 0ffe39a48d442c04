package quictun

// Outbound: device → QUIC, on the server.
//
//	readDevice ──► forwardTUN (dst IP → session, ─┬─► session.queue ──► sendLoop ──► SendDatagram
//	           │               access rules)      │                       └► split into fragments
//	           └─► forwardTAP (dst MAC → session, └─► too big: ICMP back to the origin
//	                           or flood)

import (
	"errors"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/hub"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// readDevice reads the server's device and hands each packet to the
// session that owns its destination. It ends when the device is closed.
func (s *Server) readDevice() {
	defer s.wg.Done()
	batch := max(s.dev.BatchSize(), 1)
	pbs := make([]*packetBuf, batch)
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range pbs {
		pbs[i] = s.bufs.get()
		bufs[i] = pbs[i].data
	}
	err := readPackets(s.dev, bufs, sizes, &s.Counters, func(i, n int) {
		pb := pbs[i]
		pb.n = n
		pbs[i] = s.bufs.get()
		bufs[i] = pbs[i].data
		if s.mode == device.TAP {
			s.forwardTAP(pb)
		} else {
			s.forwardTUN(pb)
		}
	})
	if err != nil {
		s.log.Error("device read failed; the server stops forwarding", "device", s.dev.Name(), "err", err)
		s.cancel()
	}
}

// forwardTUN routes a packet read from the device to the client that owns
// its destination.
func (s *Server) forwardTUN(pb *packetBuf) {
	info, ok := packet.ParseIP(pb.packet())
	if !ok {
		s.Counters.Drop(DropBadIP)
		s.bufs.put(pb)
		return
	}
	dst, act, why := hub.DecideTUNFromDevice(s.routes, isReady, info.Dst)
	if act == hub.Drop {
		s.Counters.Drop(hubDropReason(why))
		s.bufs.put(pb)
		return
	}
	if !s.allowed(nil, dst, pb.packet(), info) {
		s.Counters.Drop(DropPolicy)
		s.bufs.put(pb)
		return
	}
	s.sendTUN(dst, pb)
}

// sendTUN queues pb for dst, unless it is larger than dst takes in one
// piece and must not be split: then the origin gets an ICMP "too big".
func (s *Server) sendTUN(dst *session, pb *packetBuf) {
	if tooBigFor(pb.packet(), dst.peerMTU) {
		s.tooBig(pb, dst.peerMTU)
		s.bufs.put(pb)
		return
	}
	dst.enqueue(pb)
}

// mustNotSplit reports whether a packet too big for mtu is answered with
// ICMP rather than split into fragments: IPv4 with DF, and IPv6 when the
// MTU is one IPv6 accepts (Linux ignores a Packet Too Big below 1280).
func mustNotSplit(info packet.IPInfo, mtu int) bool {
	if info.Version == 4 {
		return info.DF
	}
	return mtu >= 1280
}

// tooBig answers pb with an ICMP "too big" (rate-limited), written into
// the device when pb came from it, else sent back to its origin session.
func (s *Server) tooBig(pb *packetBuf, mtu int) {
	out := s.bufs.get()
	n, ok := answerTooBig(out.data[headroom:], pb.packet(), mtu, s.icmp, &s.Counters)
	if !ok {
		s.bufs.put(out)
		return
	}
	out.n = n
	if pb.origin == nil {
		writeOne(s.dev, out.packet(), s.devScratch, &s.Counters, s.log, s.logRL)
		s.bufs.put(out)
		return
	}
	pb.origin.enqueue(out)
}

// forwardTAP switches a frame read from the device: learn its source on
// the local port, then queue it for the session that owns its destination,
// or flood it. (Frames from sessions take inboundTAP.)
func (s *Server) forwardTAP(pb *packetBuf) {
	pkt := pb.packet()
	dstMAC, srcMAC, _, _, ok := packet.ParseEth(pkt)
	if !ok {
		s.Counters.Drop(DropBadEthernet)
		s.bufs.put(pb)
		return
	}
	packet.ClampMSSFrame(pkt, tapMSS(s.cfg.PacketSize))
	dst, act, why, learned := hub.DecideTAP(s.macs, s.tapPolicy(), s.local, srcMAC, dstMAC, time.Now())
	if !learned {
		s.Counters.Drop(DropMACTableFull)
	}
	switch act {
	case hub.Drop:
		s.Counters.Drop(hubDropReason(why)) // already on its segment
		s.bufs.put(pb)
	case hub.ToPort:
		dst.enqueue(pb)
	default:
		s.flood(pb, nil)
	}
}

// flood sends a broadcast, multicast or unknown-unicast frame to every
// port but the one it came from.
func (s *Server) flood(pb *packetBuf, from *session) {
	if from != nil {
		s.deliverLocal(from, pb.packet()) // in order with its unicast frames
	}
	var arr [16]*session
	targets := s.readySessions(arr[:0], from)
	for _, t := range targets {
		t.enqueue(s.bufs.copyOf(pb.packet(), from))
	}
	s.bufs.put(pb)
}

// tapMSS is the TCP MSS that makes a full TCP segment over IPv4 in an
// untagged Ethernet frame fill one datagram at packetSize exactly (so that
// it fills a QUIC packet exactly: see connIDLen); packet.ClampMSSFrame
// takes 4 bytes more off per VLAN tag and 20 more for IPv6.
func tapMSS(packetSize int) int {
	return MaxDatagramPayload(packetSize) - wire.PacketHeaderLen - packet.EthHeaderLen - packet.IPv4HeaderLen - packet.TCPHeaderLen
}

// sendChunk is how many packets sendLoop takes from its queue at a time.
const sendChunk = 16

// sendLoop drains the session's queue into its connection. It is the only
// goroutine that calls SendDatagram for the session, so its blocking is
// the session's own backpressure.
func (ss *session) sendLoop() {
	var frag [wire.MaxFragments][]byte // made by sendPacket when first needed
	done := ss.conn.Context().Done()
	chunk := make([]*packetBuf, 0, sendChunk)
	for {
		var ok bool
		if chunk, ok = ss.queue.take(chunk[:0], done); !ok {
			return
		}
		for i, pb := range chunk {
			err := sendPacket(ss.conn, pb.data[headroom-wire.PacketHeaderLen:headroom+pb.n], &ss.maxDatagram,
				&ss.srv.frag, frag[:], &ss.Counters)
			ss.srv.bufs.put(pb)
			chunk[i] = nil
			if err != nil {
				for _, rest := range chunk[i+1:] {
					ss.srv.bufs.put(rest)
				}
				return
			}
		}
	}
}

// sendPacket sends one packet, whose 1-byte header slot is dg[0], as a
// datagram, or split into fragments when it does not fit, written into
// scratch (MaxFragments buffers, made here on first use and kept by the
// caller for the next call). It returns an error only when the connection
// is gone.
func sendPacket(conn *quic.Conn, dg []byte, maxDatagram *int, f *wire.Fragmenter, scratch [][]byte, c *Counters) error {
	n := len(dg) - wire.PacketHeaderLen
	if len(dg) <= *maxDatagram {
		dg[0] = wire.TypePacket
		err := conn.SendDatagram(dg)
		if err == nil {
			c.TxPackets.Add(1)
			c.TxBytes.Add(uint64(n))
			return nil
		}
		var tl *quic.DatagramTooLargeError
		if !errors.As(err, &tl) {
			c.Drop(DropSendError)
			return err
		}
		*maxDatagram = int(tl.MaxDatagramPayloadSize)
	}
	for i := range scratch {
		if cap(scratch[i]) < *maxDatagram {
			// First fragmented packet of this connection (or a larger
			// datagram size): most never fragment, so the pieces' buffers
			// are made when needed, not up front for every session.
			scratch[i] = make([]byte, *maxDatagram)
		}
		scratch[i] = scratch[i][:cap(scratch[i])]
	}
	k, err := f.Split(dg[wire.PacketHeaderLen:], *maxDatagram, scratch)
	if err != nil {
		c.Drop(DropSendError)
		return nil
	}
	for _, piece := range scratch[:k] {
		if err := conn.SendDatagram(piece); err != nil {
			c.Drop(DropSendError)
			var tl *quic.DatagramTooLargeError
			if errors.As(err, &tl) {
				*maxDatagram = int(tl.MaxDatagramPayloadSize)
				return nil
			}
			return err
		}
	}
	c.Fragmented.Add(1)
	c.TxPackets.Add(1)
	c.TxBytes.Add(uint64(n))
	return nil
}
