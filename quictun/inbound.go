package quictun

// Inbound: QUIC → device, on the server.
//
//	ReceiveDatagram ──► header / reassembly ──► TUN: source must be the client's ──► device.Write
//	                                        │                                    └► another client's queue
//	                                        └─► TAP: learn source MAC ──► device / another client / flood

import (
	"time"

	"github.com/quictun/quictun/device"
)

// inboundLoop delivers the session's datagrams until its connection ends.
// A separate goroutine drains quic-go's small receive queue into ours
// (startInbound), so a slow device write never makes quic-go drop.
func (ss *session) inboundLoop() {
	s := ss.srv
	reasm := newReassembler(0, 0)
	reasm.counters = &ss.Counters
	ss.out = newDevBatch(s.dev, max(s.cfg.MTU, TAPMTU+22), ss.log, s.logRL)
	ss.out.drain(startInbound(ss.conn, s.udp.gate, &ss.Counters), func(dg []byte) {
		pkt, ok := decodeDatagram(dg, reasm, &ss.Counters)
		if !ok {
			return
		}
		ss.RxPackets.Add(1)
		ss.RxBytes.Add(uint64(len(pkt)))
		if s.mode == device.TAP {
			s.inboundTAP(ss, pkt)
		} else {
			s.inboundTUN(ss, pkt)
		}
	}, &ss.Counters)
}

// decodeDatagram returns the packet a datagram carries: the rest of a
// PACKET datagram, or a packet completed by a FRAGMENT. ok is false when
// there is nothing to deliver yet (or the datagram was bad: counted).
func decodeDatagram(dg []byte, reasm *reassembler, c *Counters) (pkt []byte, ok bool) {
	if len(dg) < 1 {
		c.Drop(DropMalformedDatagram)
		return nil, false
	}
	switch dg[0] & dgTypeMask {
	case dgTypePacket:
		return dg[packetHeaderLen:], len(dg) > packetHeaderLen
	case dgTypeKeepalive:
		return nil, false
	case dgTypeFragment:
		p, err := reasm.add(dg, time.Now())
		if err != nil {
			c.Drop(fragmentDropReason(err))
			return nil, false
		}
		if p == nil {
			return nil, false
		}
		c.Reassembled.Add(1)
		return p, true
	}
	c.Drop(DropMalformedDatagram)
	return nil, false
}

// inboundTUN checks that a client's packet comes from one of its own
// addresses, then delivers it to the device or, when another client owns
// the destination, to that client.
func (s *Server) inboundTUN(ss *session, pkt []byte) {
	info, ok := parseIP(pkt)
	if !ok {
		ss.Drop(DropBadIP)
		return
	}
	if info.src.IsLinkLocalUnicast() || info.dst.IsLinkLocalMulticast() {
		// The client kernel's own link chatter (IPv6 router solicitations
		// from its link-local address): not for the hub, not spoofing.
		ss.Drop(DropLinkLocal)
		return
	}
	if owner, ok := s.routes.lookup(info.src); !ok || owner != ss {
		ss.Drop(DropSpoofed)
		if s.logRL.allow(time.Now()) {
			ss.log.Warn("dropped packet with a source address the client does not own", "src", info.src, "dst", info.dst)
		}
		return
	}
	if dst, ok := s.routes.lookup(info.dst); ok && dst.ready.Load() {
		if dst == ss {
			ss.Drop(DropLoop) // to itself: a routing loop
			return
		}
		pb := s.bufs.copyOf(pkt, ss)
		if pb == nil {
			ss.Drop(DropOversize) // reassembled, larger than the hub forwards
			return
		}
		s.sendTUN(dst, pb, info)
		return
	}
	s.deliverLocal(ss, pkt)
}

// deliverLocal hands a packet from session ss to the device: into the
// session's device batch (written when its inbound loop flushes, so that
// an offloading device can coalesce a burst), or at once outside the loop.
func (s *Server) deliverLocal(ss *session, pkt []byte) {
	if ss.out != nil {
		ss.out.add(pkt, &ss.Counters)
		return
	}
	s.writeDevice(pkt, &ss.Counters, ss.scratch)
}

// inboundTAP learns where a client's frame came from and switches it.
func (s *Server) inboundTAP(ss *session, pkt []byte) {
	dstMAC, srcMAC, _, _, ok := parseEth(pkt)
	if !ok {
		ss.Drop(DropBadEthernet)
		return
	}
	now := time.Now()
	if !s.macs.learn(srcMAC, ss, now) {
		ss.Drop(DropMACTableFull)
	}
	if !dstMAC.isMulticast() {
		if dst, ok := s.macs.lookup(dstMAC, now); ok {
			switch dst {
			case ss:
			case s.local:
				s.deliverLocal(ss, pkt)
			default:
				s.forwardFrame(ss, dst, pkt)
			}
			return
		}
	}
	pb := s.bufs.copyOf(pkt, ss)
	if pb == nil {
		ss.Drop(DropOversize)
		return
	}
	s.flood(pb, ss)
}

// forwardFrame queues a frame from session ss for session dst, or counts
// it when it is larger than the hub forwards.
func (s *Server) forwardFrame(ss, dst *session, pkt []byte) {
	pb := s.bufs.copyOf(pkt, ss)
	if pb == nil {
		ss.Drop(DropOversize)
		return
	}
	dst.enqueue(pb)
}
