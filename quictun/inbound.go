package quictun

// Inbound: QUIC → device, on the server.
//
//	ReceiveDatagram ──► header / reassembly ──► TUN: source must be the client's ──► access rules ──► device.Write
//	                                        │                                                   └► another client's queue
//	                                        └─► TAP: learn source MAC ──► device / another client / flood

import (
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/hub"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// inboundLoop delivers the session's datagrams until its connection ends,
// through the inbound path both ends run (datapath.go); the hub's part is
// the decision where each packet goes.
func (ss *session) inboundLoop() {
	s := ss.srv
	in := newInboundPath(s.dev, maxHubPacket(s.cfg.MTU), &ss.Counters, ss.log, s.logRL)
	ss.out = in.out
	in.run(ss.conn, s.gate, func(pkt []byte) {
		if s.mode == device.TAP {
			s.inboundTAP(ss, pkt)
		} else {
			s.inboundTUN(ss, pkt)
		}
	})
}

// decodeDatagram returns the packet a datagram carries: the rest of a
// PACKET datagram, or a packet completed by a FRAGMENT. ok is false when
// there is nothing to deliver yet (or the datagram was bad: counted).
func decodeDatagram(dg []byte, reasm *wire.Reassembler, c *Counters) (pkt []byte, ok bool) {
	if len(dg) < 1 {
		c.Drop(DropMalformedDatagram)
		return nil, false
	}
	switch dg[0] & wire.TypeMask {
	case wire.TypePacket:
		if len(dg) == wire.PacketHeaderLen {
			break // a PACKET of nothing: no sender makes one
		}
		return dg[wire.PacketHeaderLen:], true
	case wire.TypeKeepalive:
		return nil, false
	case wire.TypeFragment:
		p, err := reasm.Add(dg, time.Now())
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
	info, ok := packet.ParseIP(pkt)
	if !ok {
		ss.Drop(DropBadIP)
		return
	}
	dst, act, why := hub.DecideTUNFromClient(s.routes, isReady, ss, info.Src, info.Dst)
	switch act {
	case hub.Drop:
		ss.Drop(hubDropReason(why))
		if why == hub.Spoofed && s.logRL.allow(time.Now()) {
			ss.log.Warn("dropped packet with a source address the client does not own", "src", info.Src, "dst", info.Dst)
		}
	case hub.ToPort:
		if !s.allowed(ss, dst, pkt, info) {
			ss.Drop(DropPolicy)
			return
		}
		pb := s.bufs.copyOf(pkt, ss)
		if pb == nil {
			ss.Drop(DropOversize) // reassembled, larger than the hub forwards
			return
		}
		s.sendTUN(dst, pb)
	default:
		if !s.allowed(ss, nil, pkt, info) {
			ss.Drop(DropPolicy)
			return
		}
		s.deliverLocal(ss, pkt)
	}
}

// isReady reports whether a session takes packets (its client said ready).
func isReady(ss *session) bool { return ss.ready.Load() }

// hubDropReason is the reason a packet the hub's decisions dropped for r
// is counted under.
func hubDropReason(r hub.Reason) DropReason {
	switch r {
	case hub.Spoofed:
		return DropSpoofed
	case hub.NoRoute:
		return DropNoRoute
	case hub.LinkLocal:
		return DropLinkLocal
	case hub.Loop:
		return DropLoop
	case hub.Denied:
		return DropPolicy
	}
	// The hub has no other reasons (TestDropReasons provokes each); one
	// added there must be added here too, or it is counted as no_route.
	return DropNoRoute
}

// deliverLocal hands a packet from session ss to the device: into the
// session's device batch (written when its inbound loop flushes, so that
// an offloading device can coalesce a burst), or at once outside the loop.
func (s *Server) deliverLocal(ss *session, pkt []byte) {
	if ss.out != nil {
		ss.out.add(pkt, &ss.Counters)
		return
	}
	writeOne(s.dev, pkt, ss.scratch, &ss.Counters, ss.log, s.logRL)
}

// inboundTAP learns where a client's frame came from and switches it.
func (s *Server) inboundTAP(ss *session, pkt []byte) {
	dstMAC, srcMAC, _, _, ok := packet.ParseEth(pkt)
	if !ok {
		ss.Drop(DropBadEthernet)
		return
	}
	dst, act, why, learned := hub.DecideTAP(s.macs, s.tapPolicy(), ss, srcMAC, dstMAC, time.Now())
	if !learned {
		ss.Drop(DropMACTableFull)
	}
	switch {
	case act == hub.Drop:
		ss.Drop(hubDropReason(why))
		if why == hub.Spoofed && s.logRL.allow(time.Now()) {
			holder := "unknown"
			if p, ok := s.macs.Lookup(srcMAC, time.Now()); ok {
				holder = p.name
			}
			ss.log.Warn("dropped frame with a source MAC pinned to another port", "src", srcMAC, "held_by", holder)
		}
		return
	case act == hub.ToPort && dst == s.local:
		s.deliverLocal(ss, pkt)
		return
	case act == hub.ToPort:
		s.forwardFrame(ss, dst, pkt)
		return
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
