package quictun

import (
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/quictun/internal/hub"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// session is one client's connection on the server.
type session struct {
	srv    *Server
	conn   *quic.Conn
	stream *quic.Stream // the control stream, once the exchange is done
	id     qcrypto.Identity
	name   string
	log    *slog.Logger
	addrs  []netip.Prefix // assigned tunnel addresses
	leased []netip.Addr   // those of addrs leased from a pool

	// peerMTU is the largest packet (TUN) sent to this client in one piece:
	// the smaller of what our datagrams carry and what the client asked for.
	peerMTU int
	// maxDatagram is the largest datagram payload we send on conn.
	maxDatagram int

	queue *queue[*packetBuf] // outbound, drained by sendLoop
	ready atomic.Bool        // set once the client said ready; cleared when it ends

	// scratch is the inbound goroutine's one-element slice for device writes.
	scratch [][]byte
	// out batches the inbound goroutine's TUN device writes (nil until
	// inboundLoop runs).
	out *devBatch

	undoRoutes func() error // removes the kernel routes of id.Routes; only touched by register/remove

	// pushed are the routes the client was last sent (in its config, then
	// in routes messages); only touched by admit, then by pushRoutes.
	pushed []netip.Prefix

	stats sessionStats

	// rules is what the access rules in force say about this client; made
	// again at its first packet after they change (peerRules).
	rules atomic.Pointer[hub.PeerRules]

	// Counters of this session.
	Counters
}

func newSession(s *Server, conn *quic.Conn, id qcrypto.Identity, log *slog.Logger) *session {
	return &session{
		stats:       sessionStats{connectedAt: time.Now()},
		srv:         s,
		conn:        conn,
		id:          id,
		name:        id.Name,
		log:         log,
		peerMTU:     s.cfg.MTU,
		maxDatagram: MaxDatagramPayload(s.cfg.PacketSize),
		queue:       newQueue[*packetBuf](s.cfg.QueueLen),
		scratch:     make([][]byte, 1),
	}
}

// allowed returns the prefixes this client may use as a source and that
// route to it: its tunnel addresses and the networks in its certificate.
func (ss *session) allowed() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(ss.addrs)+len(ss.id.Routes))
	for _, p := range ss.addrs {
		out = append(out, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()))
	}
	return append(out, ss.id.Routes...)
}

// enqueue hands pb to the sender without blocking; a full queue drops it
// (and counts it) so one slow client cannot stall the others.
func (ss *session) enqueue(pb *packetBuf) {
	if !ss.queue.push(pb) {
		ss.Drop(DropQueueFull)
		ss.srv.bufs.put(pb)
	}
}

// run carries the session's traffic until its connection ends.
func (ss *session) run() {
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		ss.sendLoop()
	}()
	go func() {
		defer wg.Done()
		ss.watchPath(2 * time.Second)
	}()
	go func() {
		defer wg.Done()
		ss.controlLoop()
	}()
	go func() {
		defer wg.Done()
		ss.pushRoutes()
	}()
	ss.ready.Store(true)
	// A revocation that came while the session was being set up passed it
	// by (the server closes only ready sessions when the set changes):
	// check once more, now that it is ready.
	ss.srv.closeIfRevoked(ss)
	ss.inboundLoop()
	ss.ready.Store(false)
	wg.Wait()
	ss.queue.close()
	ss.queue.drainAll(ss.srv.bufs.put)
}

// watchPath logs when the client's address changes (QUIC connection
// migration after a network change or NAT rebinding): quic-go follows the
// client by itself, and an operator wants to see it happen.
func (ss *session) watchPath(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := ss.conn.RemoteAddr().String()
	for {
		select {
		case <-ss.conn.Context().Done():
			return
		case <-t.C:
			if now := ss.conn.RemoteAddr().String(); now != last {
				ss.stats.remoteChanges.Add(1)
				ss.log.Info("client address changed (connection migrated)", "from", last, "to", now)
				last = now
			}
		}
	}
}

// controlLoop reads control messages after setup; the client closing its
// control stream or saying goaway ends the session.
func (ss *session) controlLoop() {
	for {
		m, err := wire.ReadControl(ss.stream)
		if err != nil {
			if ss.conn.Context().Err() == nil {
				ss.conn.CloseWithError(CloseNormal, "control stream closed")
			}
			return
		}
		switch m.Type {
		case wire.MsgGoAway:
			ss.log.Info("client going away", "reason", m.Message)
			ss.conn.CloseWithError(CloseNormal, "goodbye")
			return
		default:
			ss.log.Debug("ignoring control message", "type", m.Type)
		}
	}
}
