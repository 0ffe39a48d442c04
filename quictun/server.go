package quictun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/hub"
	"github.com/quictun/quictun/quictun/internal/udp"
	"github.com/quictun/quictun/quictun/internal/wire"
	"github.com/quictun/quictun/state"
)

// controlTimeout bounds the control exchange after the handshake.
const controlTimeout = 10 * time.Second

// Server is the hub: one device, many clients.
type Server struct {
	cfg  ServerConfig
	log  *slog.Logger
	dev  device.Device
	mode device.Kind
	tr   *quic.Transport
	pc   net.PacketConn // the socket: ours, or ServerConfig.Conn
	gate *udp.RxGate    // nil on a socket we were given
	own  bool           // pc is ours to close
	ln   *quic.Listener
	bufs *bufPool

	routes *hub.Routes[*session] // TUN: tunnel addresses and client routes → session
	macs   *hub.MACs[*session]   // TAP: MAC → session, or local for the device
	local  *session              // TAP: the port that stands for the device
	leases state.Leases
	live   *liveConfig     // pushed routes and pools, which change while running
	policy serverPolicy    // access rules (TUN), which change while running
	frag   wire.Fragmenter // fragment ids, shared by all senders
	icmp   *rateLimiter
	// devScratch is the device reader's one-element slice for device writes.
	devScratch [][]byte
	logRL      *rateLimiter

	// isolate and pinMACs are the TAP switch's policy (tapPolicy), which
	// SetTAPPolicy changes while frames are switched.
	isolate, pinMACs atomic.Bool

	// Counters of the server as a whole: packets read from the device
	// that no session owns, socket reads held back (udp.RxGate), and the like.
	Counters Counters
	stats    serverStats  // handshakes, and the counters of sessions gone
	certs    watchedCerts // the server's own certificate and the CAs
	expiry   expiryWarner
	guard    *handshakeGuard // handshakes in flight: Retry and the per-source limit
	stray    *strayCounter   // datagrams for no connection, by reason

	mu       sync.Mutex
	sessions map[string]*session // by identity name; guarded by mu
	countMu  sync.Mutex          // serializes cfg.SessionsChanged calls
	closed   bool                // guarded by mu

	wg     sync.WaitGroup
	ctx    context.Context
	cancel context.CancelFunc
}

// NewServer checks cfg and opens the UDP socket (so a port in use fails
// before any device is touched). Call Serve to run it.
func NewServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := newHub(cfg)
	if cfg.Conn != nil {
		s.pc = cfg.Conn
	} else {
		sock, err := udp.Listen(cfg.Listen, s.log, s.Counters.socket())
		if err != nil {
			return nil, err
		}
		s.pc, s.gate, s.own = sock, sock.Gate(), true
	}
	s.guard = newHandshakeGuard(cfg.Handshakes, &s.stats, s.log)
	s.stray = newStrayCounter(s.log)
	s.tr = &quic.Transport{Conn: s.pc, ConnectionIDLength: connIDLen, StatelessResetKey: cfg.StatelessResetKey,
		ConnContext: s.guard.connContext, VerifySourceAddress: s.guard.verifySourceAddress, Tracer: s.stray}
	qc := quicConfig(cfg.PacketSize, cfg.Keepalive, cfg.IdleTimeout, 5*time.Second)
	ln, err := s.tr.Listen(logRefusals(cfg.TLS, s.log, newRateLimiter(10, 20), &s.stats), qc)
	if err != nil {
		s.closeConn()
		return nil, fmt.Errorf("listen on %s: %w", s.pc.LocalAddr(), err)
	}
	s.ln = ln
	return s, nil
}

// newHub builds the forwarding state of a server for cfg (validated, with
// defaults filled in) without opening a socket: NewServer binds it, and
// tests and benchmarks drive it as it is.
func newHub(cfg ServerConfig) *Server {
	s := &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		mode:       cfg.Mode,
		routes:     new(hub.Routes[*session]),
		macs:       hub.NewMACs[*session](0, 0),
		local:      &session{name: "(local device)"},
		leases:     cfg.Leases,
		live:       newLiveConfig(cfg),
		icmp:       newRateLimiter(100, 200),
		logRL:      newRateLimiter(1, 10),
		sessions:   make(map[string]*session),
		bufs:       newBufPool(maxHubPacket(cfg.MTU)),
		devScratch: make([][]byte, 1),
		certs:      watchedCerts{own: ownLeaf(cfg.TLS), ownKind: CertServer, cas: cfg.CACerts},
		expiry:     expiryWarner{log: cfg.Logger},
	}
	s.isolate.Store(cfg.IsolateClients)
	s.pinMACs.Store(cfg.PinMACs)
	s.policy.setRules(cfg.Rules, cfg.ClientToClient, cfg.Networks)
	return s
}

// MTU returns the device MTU the server runs with (and announces to
// clients, who may ask for less).
func (s *Server) MTU() int { return s.cfg.MTU }

// Addr returns the UDP address the server listens on.
func (s *Server) Addr() string { return s.pc.LocalAddr().String() }

// closeConn closes the socket if it is ours (quic-go does not close a
// socket it was given, and neither do we close the caller's).
func (s *Server) closeConn() error {
	if !s.own {
		return nil
	}
	return s.pc.Close()
}

// Serve runs the server on dev until ctx is done or Close is called. It
// returns nil after a clean shutdown. The caller closes dev after Serve
// returns; Wait then waits for the device reader.
func (s *Server) Serve(ctx context.Context, dev device.Device) error {
	if dev.Kind() != s.mode {
		return fmt.Errorf("device %s is a %s device, the server runs in %s mode", dev.Name(), dev.Kind(), s.mode)
	}
	s.dev = dev
	s.mu.Lock()
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.mu.Unlock()
	defer s.cancel()
	s.log.Info("listening", "addr", s.Addr(), "mode", s.mode.String(), "device", s.dev.Name(),
		"mtu", s.cfg.MTU, "packet_size", s.cfg.PacketSize)
	s.wg.Add(6)
	go s.readDevice()
	go s.ageMACs()
	go s.maintain()
	go s.watchExpiry()
	go s.policyClock()
	go func() {
		defer s.wg.Done()
		s.stray.readNonQUIC(s.ctx, s.tr)
	}()
	// The loop does nothing but hand each connection to its goroutine:
	// quic-go refuses clients whose handshake completed while its accept
	// queue is full.
	for {
		conn, err := s.ln.Accept(s.ctx)
		if err != nil {
			s.shutdown()
			if s.ctx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("accept: %w", err)
		}
		s.guard.accepted(conn)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handle(conn)
		}()
	}
}

// Close stops the server: every client gets an application close
// (CloseShutdown) so it knows at once.
//
// Before Serve, Close releases the UDP socket.
func (s *Server) Close() error {
	s.mu.Lock()
	serving := s.cancel != nil
	s.mu.Unlock()
	if serving {
		s.cancel()
		return nil
	}
	s.ln.Close()
	s.tr.Close()
	return s.closeConn()
}

// shutdown closes every session and the transport and waits for all
// goroutines except the device reader's, which ends when the caller closes
// the device.
func (s *Server) shutdown() {
	s.guard.closing.Store(true)
	s.mu.Lock()
	s.closed = true
	var all []*session
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.conn.CloseWithError(CloseShutdown, "server shutting down")
	}
	s.ln.Close()
	s.tr.Close()
	s.closeConn()
}

// Wait waits until every goroutine of the server has ended. The device
// reader ends only once the device is closed.
func (s *Server) Wait() { s.wg.Wait() }

// ageMACs expires the TAP switch's table.
func (s *Server) ageMACs() {
	defer s.wg.Done()
	if s.mode != device.TAP {
		return
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.macs.Expire(now)
		}
	}
}

// leaseRenewal is how often the server renews the pool leases of its
// sessions.
const leaseRenewal = time.Minute

// maintain renews the sessions' leases and closes the sessions of clients
// whose certificates are revoked, until the server stops.
func (s *Server) maintain() {
	defer s.wg.Done()
	var changed <-chan struct{}
	if s.cfg.Revocations != nil {
		changed = s.cfg.Revocations.Changed()
	}
	t := time.NewTicker(leaseRenewal)
	defer t.Stop()
	var arr [64]*session
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			for _, ss := range s.readySessions(arr[:0], nil) {
				for _, a := range ss.leased {
					if err := s.leases.Renew(ss.name, a); err != nil {
						ss.log.Warn("could not renew the client's address lease", "addr", a, "err", err)
					}
				}
			}
		case <-changed:
			for _, ss := range s.readySessions(arr[:0], nil) {
				s.closeIfRevoked(ss)
			}
		}
	}
}

// closeIfRevoked closes ss with CloseRevoked if its client's certificate
// is revoked now, and reports whether it did.
func (s *Server) closeIfRevoked(ss *session) bool {
	certs := ss.conn.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 || !s.revoked(certs[0].SerialNumber) {
		return false
	}
	ss.log.Warn("closing the session of a revoked certificate", "serial", certs[0].SerialNumber.Text(16))
	ss.conn.CloseWithError(CloseRevoked, "certificate revoked")
	return true
}

// revoked reports whether the certificate with this serial is revoked.
func (s *Server) revoked(serial *big.Int) bool {
	return s.cfg.Revocations != nil && s.cfg.Revocations.IsRevoked(serial)
}

// handle runs one client connection from handshake to close.
func (s *Server) handle(conn *quic.Conn) {
	remote := conn.RemoteAddr().String()
	certs := conn.ConnectionState().TLS.PeerCertificates
	if len(certs) == 0 {
		s.stats.count(HandshakeNoCertificate)
		conn.CloseWithError(CloseProtocol, "no client certificate")
		return
	}
	id, err := qcrypto.IdentityOf(certs[0])
	if err != nil {
		s.stats.count(HandshakeCertificateUnusable)
		s.log.Warn("client refused", "remote", remote, "reason", "certificate unusable", "err", err)
		conn.CloseWithError(CloseRefused, "certificate unusable: "+err.Error())
		return
	}
	if s.revoked(certs[0].SerialNumber) {
		s.stats.count(HandshakeRevoked)
		s.log.Warn("client refused", "peer", id.Name, "remote", remote, "reason", "certificate revoked",
			"serial", certs[0].SerialNumber.Text(16), "resumed", conn.ConnectionState().TLS.DidResume,
			"fingerprint", id.Fingerprint)
		conn.CloseWithError(CloseRevoked, "certificate revoked")
		return
	}
	log := s.log.With("peer", id.Name, "remote", remote)
	ss, err := s.admit(conn, id, log)
	if err != nil {
		s.stats.setupFailed(err, conn)
		var re *RemoteError
		if errors.As(err, &re) {
			log.Warn("client refused", "reason", re.Message)
		} else if errors.Is(err, errShuttingDown) {
			log.Warn("client refused", "reason", err.Error())
		} else if conn.Context().Err() == nil {
			log.Warn("client setup failed", "err", err)
		}
		return
	}
	ss.run()
	s.remove(ss)
	reason := context.Cause(conn.Context())
	log.Info("client disconnected", append([]any{"reason", closeReason(reason)}, countersAttrs(&ss.Counters)...)...)
}

// admit runs the control exchange and registers the session. On a refusal
// it has told the client why and closed the connection.
func (s *Server) admit(conn *quic.Conn, id qcrypto.Identity, log *slog.Logger) (*session, error) {
	ctx, cancel := context.WithTimeout(conn.Context(), controlTimeout)
	defer cancel()
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		conn.CloseWithError(CloseProtocol, "no control stream")
		return nil, fmt.Errorf("accept control stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { stream.CancelRead(0); stream.CancelWrite(0) })
	defer stop()
	hello, err := wire.ReadControl(stream)
	if err != nil {
		conn.CloseWithError(CloseProtocol, "bad hello")
		return nil, err
	}
	refuse := func(code, format string, args ...any) (*session, error) {
		msg := fmt.Sprintf(format, args...)
		_ = wire.WriteControl(stream, &wire.ControlMsg{Type: wire.MsgError, Code: code, Message: msg})
		stream.Close()
		// A CONNECTION_CLOSE sent now would overtake the stream data, and
		// the client would see only the close's reason phrase. The client
		// closes the connection once it has read the message; wait for
		// that, for a bounded time.
		linger := time.NewTimer(refusalLinger)
		select {
		case <-conn.Context().Done():
		case <-linger.C:
		}
		linger.Stop()
		conn.CloseWithError(CloseRefused, msg)
		return nil, &RemoteError{Code: code, Message: msg}
	}
	if hello.Type != wire.MsgHello {
		conn.CloseWithError(CloseProtocol, "expected hello")
		return nil, fmt.Errorf("expected hello, got %q", hello.Type)
	}
	if hello.Version < 1 {
		return refuse(CodeVersion, "protocol version %d is not supported (this server speaks %d)", hello.Version, ProtocolVersion)
	}
	if hello.Mode != "" && hello.Mode != s.mode.String() {
		return refuse(CodeModeMismatch, "the server runs in %s mode but the client asked for %s mode", s.mode, hello.Mode)
	}
	ss := newSession(s, conn, id, log)
	if hello.MTU > 0 && s.mode == device.TUN {
		ss.peerMTU = min(ss.peerMTU, hello.MTU)
	}
	addrs, err := s.addressesFor(id, ss)
	if err != nil {
		s.releaseLeases(ss) // from the pools that did have an address
		var re *RemoteError
		if errors.As(err, &re) {
			return refuse(re.Code, "%s", re.Message)
		}
		return refuse(CodeNoAddress, "%v", err)
	}
	ss.addrs = addrs
	if err := s.register(ss); err != nil {
		s.releaseLeases(ss)
		if errors.Is(err, errShuttingDown) {
			conn.CloseWithError(CloseShutdown, err.Error())
			return nil, err
		}
		var re *RemoteError
		errors.As(err, &re)
		return refuse(re.Code, "%s", re.Message)
	}
	var gws []netip.Addr
	for _, n := range s.cfg.Networks {
		gws = append(gws, n.Addr())
	}
	mtu := s.cfg.MTU
	if s.mode == device.TUN {
		mtu = ss.peerMTU
	}
	// What changes after this, pushRoutes sends once the session runs.
	ss.pushed, _ = s.live.pushedRoutes()
	cfgMsg := &wire.ControlMsg{
		Type: wire.MsgConfig, Version: ProtocolVersion, Mode: s.mode.String(), MTU: mtu,
		Addresses: addrs, Gateways: gws, Routes: ss.pushed, Name: id.Name,
		KeepaliveMS: s.cfg.Keepalive.Milliseconds(), IdleMS: s.cfg.IdleTimeout.Milliseconds(),
	}
	if err := wire.WriteControl(stream, cfgMsg); err != nil {
		s.remove(ss)
		return nil, err
	}
	ready, err := wire.ReadControl(stream)
	if err != nil || ready.Type != wire.MsgReady {
		s.remove(ss)
		conn.CloseWithError(CloseProtocol, "expected ready")
		if err == nil {
			err = fmt.Errorf("expected ready, got %q", ready.Type)
		}
		return nil, err
	}
	stop()
	s.stats.succeeded(conn)
	ss.stream = stream
	log.Info("client connected", "addresses", fmtPrefixes(addrs), "mtu", mtu,
		"resumed", conn.ConnectionState().TLS.DidResume, "fingerprint", id.Fingerprint)
	s.checkClientExpiry(conn, ss.name, time.Now())
	return ss, nil
}

// addressesFor returns a client's tunnel addresses: those in its
// certificate, else one from each pool.
func (s *Server) addressesFor(id qcrypto.Identity, ss *session) ([]netip.Prefix, error) {
	var out []netip.Prefix
	if len(id.Addrs) > 0 {
		for _, a := range id.Addrs {
			n := networkOf(s.cfg.Networks, a)
			switch {
			case n.IsValid():
				out = append(out, netip.PrefixFrom(a, n.Bits()))
			case s.mode == device.TAP:
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
			default:
				return nil, &RemoteError{Code: CodeNoAddress, Message: fmt.Sprintf(
					"the certificate address %s of %q is outside the server's networks (%s)", a, id.Name, fmtPrefixes(s.cfg.Networks))}
			}
			s.leases.Reserve(a)
		}
		return out, nil
	}
	pools := s.live.addressPools()
	if s.mode == device.TAP && len(pools) == 0 {
		return nil, nil // a bridged site needs no tunnel address
	}
	if len(pools) == 0 {
		return nil, &RemoteError{Code: CodeNoAddress, Message: fmt.Sprintf(
			"the certificate of %q carries no tunnel address and the server has no address pool to assign one from", id.Name)}
	}
	for _, p := range pools {
		a, err := s.leases.Assign(id.Name, p, func(a netip.Addr) bool {
			owner, ok := s.routes.LookupExact(netip.PrefixFrom(a, a.BitLen()))
			return ok && owner.name != id.Name || s.isServerAddr(a)
		})
		if err != nil {
			return nil, &RemoteError{Code: CodeNoAddress, Message: fmt.Sprintf("no address for %q: %v", id.Name, err)}
		}
		ss.leased = append(ss.leased, a)
		bits := p.Bits()
		if n := networkOf(s.cfg.Networks, a); n.IsValid() {
			bits = n.Bits()
		}
		out = append(out, netip.PrefixFrom(a, bits))
	}
	return out, nil
}

func (s *Server) isServerAddr(a netip.Addr) bool {
	for _, n := range s.cfg.Networks {
		if n.Addr() == a {
			return true
		}
	}
	return false
}

// errShuttingDown is register's answer once the server is closing: the
// client is told as every connected one is (CloseShutdown), so that it
// redials, not refused for good.
var errShuttingDown = errors.New("server shutting down")

// register makes ss the session of its identity (replacing an older one at
// once) and installs its routes.
func (s *Server) register(ss *session) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errShuttingDown
	}
	if s.mode == device.TUN {
		for _, p := range ss.allowed() {
			if owner, ok := s.routes.LookupExact(p); ok && owner.name != ss.name {
				s.mu.Unlock()
				return &RemoteError{Code: CodeAddressInUse, Message: fmt.Sprintf(
					"%s of %q is already in use by %q", p, ss.name, owner.name)}
			}
		}
	}
	old := s.sessions[ss.name]
	if old != nil {
		s.stats.retire(old)
	}
	s.sessions[ss.name] = ss
	if s.mode == device.TUN {
		for _, p := range ss.allowed() {
			s.routes.Insert(p, ss)
		}
	}
	s.mu.Unlock()
	if old != nil && s.mode == device.TAP {
		// The same client on a new connection: its MACs are its own. Left
		// on the old session until that one is removed, pinning
		// (PinMACs) would refuse the new one's first frames.
		s.macs.RemovePort(old)
	}
	s.sessionsChanged()
	if old != nil {
		old.log.Info("client replaced by a new connection of the same identity")
		old.conn.CloseWithError(CloseReplaced, "replaced by a newer connection")
	}
	if s.cfg.AddRoutes != nil && len(ss.id.Routes) > 0 {
		undo, err := s.cfg.AddRoutes(ss.id.Routes)
		if err != nil {
			ss.log.Warn("could not route the client's networks via the device", "routes", fmtPrefixes(ss.id.Routes), "err", err)
		} else {
			ss.undoRoutes = undo
		}
	}
	return nil
}

// releaseLeases gives back the pool addresses ss leased: it left, or was
// refused after they were leased.
func (s *Server) releaseLeases(ss *session) {
	for _, a := range ss.leased {
		s.leases.Release(ss.name, a)
	}
}

// remove forgets ss: its routes and MACs (not its successor's) and its
// place in the identity map if it still holds it.
func (s *Server) remove(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.name] == ss {
		delete(s.sessions, ss.name)
		s.stats.retire(ss)
	}
	s.routes.RemoveValue(ss)
	s.mu.Unlock()
	s.sessionsChanged()
	s.macs.RemovePort(ss)
	s.releaseLeases(ss)
	if ss.undoRoutes != nil {
		if err := ss.undoRoutes(); err != nil {
			ss.log.Warn("could not remove the client's routes", "err", err)
		}
		ss.undoRoutes = nil
	}
}

// sessionsChanged tells cfg.SessionsChanged the number of sessions. The
// count is read under countMu, so the last call always has the current one.
func (s *Server) sessionsChanged() {
	if s.cfg.SessionsChanged == nil {
		return
	}
	s.countMu.Lock()
	defer s.countMu.Unlock()
	s.mu.Lock()
	n := len(s.sessions)
	s.mu.Unlock()
	s.cfg.SessionsChanged(n)
}

// readySessions appends every ready session except skip to dst.
func (s *Server) readySessions(dst []*session, skip *session) []*session {
	s.mu.Lock()
	for _, ss := range s.sessions {
		if ss != skip && ss.ready.Load() {
			dst = append(dst, ss)
		}
	}
	s.mu.Unlock()
	return dst
}

// networkOf returns the network in nets that contains a, or the zero Prefix.
func networkOf(nets []netip.Prefix, a netip.Addr) netip.Prefix {
	for _, n := range nets {
		if n.Masked().Contains(a) {
			return n
		}
	}
	return netip.Prefix{}
}

func fmtPrefixes(ps []netip.Prefix) string {
	s := ""
	for i, p := range ps {
		if i > 0 {
			s += ","
		}
		s += p.String()
	}
	return s
}

// closeReason renders why a connection ended, for a log line.
func closeReason(err error) string {
	var ae *quic.ApplicationError
	var ie *quic.IdleTimeoutError
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &ae):
		who := "this side"
		if ae.Remote {
			who = "the peer"
		}
		switch quic.ApplicationErrorCode(ae.ErrorCode) {
		case CloseNormal:
			return "closed by " + who
		case CloseReplaced:
			return "replaced by a newer connection"
		case CloseShutdown:
			return "server shutting down"
		case CloseRevoked:
			return "certificate revoked"
		case CloseKicked:
			return kickReason
		}
		return fmt.Sprintf("closed by %s: %s", who, ae.ErrorMessage)
	case errors.As(err, &ie):
		return "idle timeout (no packets from the peer)"
	}
	return err.Error()
}

// countersAttrs renders non-zero counters as sorted slog attributes.
func countersAttrs(c *Counters) []any {
	snap := c.Snapshot()
	keys := make([]string, 0, len(snap))
	for k := range snap {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		out = append(out, k, snap[k])
	}
	return out
}
