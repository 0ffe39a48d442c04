package quictun

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	qcrypto "github.com/quictun/quictun/crypto"
)

// DropCounts holds a count per DropReason, indexed by it.
type DropCounts [numDropReasons]uint64

// Get returns the count for r.
func (d DropCounts) Get(r DropReason) uint64 { return d[r] }

// Total returns the sum over all reasons.
func (d DropCounts) Total() uint64 {
	var n uint64
	for _, v := range d {
		n += v
	}
	return n
}

// NonZero returns the reasons with a count, by name.
func (d DropCounts) NonZero() map[string]uint64 {
	m := make(map[string]uint64)
	for i, v := range d {
		if v != 0 {
			m[dropNames[i]] = v
		}
	}
	return m
}

// SessionInfo is a copy of one tunnel session's state, safe to keep and
// read at any time: nothing in it refers back into the core.
type SessionInfo struct {
	// Name is the peer's identity (its certificate's CommonName): on the
	// server the client's, on a client the name the server knows it by.
	Name string
	// Fingerprint is the lower-case hex SHA-256 of the peer's certificate.
	Fingerprint string
	// NotAfter is when the peer's certificate expires.
	NotAfter time.Time
	// Addresses are the client's tunnel addresses.
	Addresses []netip.Prefix
	// Routes are the networks routed to the client (from its certificate
	// on the server; on a client, those the server pushes, as installed:
	// they follow Server.SetRoutes).
	Routes []netip.Prefix
	// Remote is the peer's UDP address now; RemoteChanges counts how often
	// it changed during the connection (connection migration, NAT
	// rebinding) as seen by a 2-second poll on the server; always 0 on a
	// client.
	Remote        string
	RemoteChanges int
	// ConnectedAt is when the connection's tunnel came up.
	ConnectedAt time.Time
	// RTT is QUIC's smoothed round-trip time estimate.
	RTT time.Duration
	// PacketSize is the QUIC packet size the tunnel is set to.
	PacketSize int
	// Packets and bytes each way: Tx outbound (sent as datagrams), Rx
	// inbound (received and delivered).
	TxPackets, TxBytes, RxPackets, RxBytes uint64
	// Drops are this session's drops by reason.
	Drops DropCounts
}

// sessionStats is what a session or a client connection keeps for
// SessionInfo besides its Counters.
type sessionStats struct {
	connectedAt   time.Time
	remoteChanges atomic.Int64
}

// fill copies conn's and c's figures into info.
func fill(info *SessionInfo, conn *quic.Conn, c *Counters) {
	if conn != nil {
		info.Remote = conn.RemoteAddr().String()
		info.RTT = conn.ConnectionStats().SmoothedRTT
		if certs := conn.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
			info.NotAfter = certs[0].NotAfter
		}
	}
	info.TxPackets = c.TxPackets.Load()
	info.TxBytes = c.TxBytes.Load()
	info.RxPackets = c.RxPackets.Load()
	info.RxBytes = c.RxBytes.Load()
	info.Drops = c.Drops()
}

// Sessions returns a copy of every ready session, sorted by name. It
// holds the server's session lock only to list them, never while reading
// a connection, so the data path does not wait on it.
func (s *Server) Sessions() []SessionInfo {
	var arr [64]*session
	list := s.readySessions(arr[:0], nil)
	out := make([]SessionInfo, 0, len(list))
	for _, ss := range list {
		info := SessionInfo{
			Name:          ss.name,
			Fingerprint:   ss.id.Fingerprint,
			Addresses:     append([]netip.Prefix(nil), ss.addrs...),
			Routes:        append([]netip.Prefix(nil), ss.id.Routes...),
			RemoteChanges: int(ss.stats.remoteChanges.Load()),
			ConnectedAt:   ss.stats.connectedAt,
			PacketSize:    s.cfg.PacketSize,
		}
		fill(&info, ss.conn, &ss.Counters)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ServerStatus is a copy of the server's own state.
type ServerStatus struct {
	// Sessions is the number of ready sessions.
	Sessions int
	// Drops are the server's own drops (packets read from its device
	// that no session owns, and the like), not the sessions'.
	Drops DropCounts
	// Total sums the counters of every session since the server started,
	// those that ended included: it never goes down.
	Total Traffic
	// Handshakes counts the clients' attempts to bring a tunnel up, by
	// outcome.
	Handshakes HandshakeCounts
	// HandshakeTimes are the times from a client's first packet to its
	// tunnel being up (TLS handshake and control exchange), of the
	// successful handshakes.
	HandshakeTimes DurationHistogram
	// Certificates are the server's own certificate (Kind CertServer;
	// absent if TLS.Certificates has none) and then its CAs (CertCA, from
	// ServerConfig.CACerts). The clients' are in their SessionInfo.
	Certificates []CertificateInfo
	// HandshakesInFlight is the number of handshakes under way (first
	// Initial received, not yet accepted or ended).
	HandshakesInFlight int
	// Stray counts the datagrams dropped on the server's port for no
	// connection, by reason.
	Stray StrayCounts
}

// Status returns a copy of the server's own counters.
func (s *Server) Status() ServerStatus {
	var arr [64]*session
	st := ServerStatus{Sessions: len(s.readySessions(arr[:0], nil)), Drops: s.Counters.Drops(),
		HandshakeTimes: s.stats.handshakeTime.snapshot(), Certificates: s.certs.infos()}
	if s.guard != nil { // nil on a hub without a socket (tests)
		st.HandshakesInFlight, _ = s.guard.inFlight(netip.Addr{})
		st.Stray = s.stray.snapshot()
	}
	for i := range st.Handshakes {
		st.Handshakes[i] = s.stats.handshakes[i].Load()
	}
	// Under the session lock, so that a session is summed either live or
	// retired, never both or neither; only atomics are read under it.
	s.mu.Lock()
	st.Total = s.stats.retired
	for _, ss := range s.sessions {
		st.Total.add(&ss.Counters, ss.stats.remoteChanges.Load())
	}
	s.mu.Unlock()
	return st
}

// ClientState says where a client is in its life.
type ClientState int

// The client states.
const (
	// StateConnecting: dialling for the first time.
	StateConnecting ClientState = iota
	// StateUp: the tunnel is up.
	StateUp
	// StateReconnecting: the tunnel was up and is being redialled.
	StateReconnecting
	// StateStopped: Run has returned.
	StateStopped
)

// String returns "connecting", "up", "reconnecting" or "stopped".
func (s ClientState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateUp:
		return "up"
	case StateReconnecting:
		return "reconnecting"
	case StateStopped:
		return "stopped"
	}
	return "unknown"
}

// ClientStatus is a copy of a client's state.
type ClientStatus struct {
	State ClientState
	// Since is when State began.
	Since time.Time
	// LastError is why the last connection ended or the last dial failed
	// ("" if none yet).
	LastError string
	// Server is the server address the client dials.
	Server string
	// Session is the current session's state; while not up, the last
	// one's figures, with the tunnel's counters (they count over all the
	// client's connections).
	Session SessionInfo
	// Reconnects counts the times the tunnel came up again after it had
	// been up before; DialFailures the attempts that did not bring it up.
	Reconnects, DialFailures uint64
	// HandshakeTimes are the times from dialling to the tunnel being up
	// (TLS handshake and control exchange), of the successful dials.
	HandshakeTimes DurationHistogram
	// Certificates are the client's own certificate (Kind CertClient;
	// absent if TLS.Certificates has none) and then its CAs (CertCA, from
	// ClientConfig.CACerts). The server's is in Session.
	Certificates []CertificateInfo
}

// clientState is the part of ClientStatus that changes; guarded by mu.
type clientState struct {
	mu      sync.Mutex
	state   ClientState
	since   time.Time
	lastErr string
	// Of the current (or last) connection; zero before the first.
	connectedAt time.Time
	fingerprint string
	assigned    Assignment
	routes      []netip.Prefix // the server's routes as installed (setRoutes)
	// How often a connection came up and how often a dial failed.
	connections, dialFailures uint64
	handshakeTime             durationRecorder // atomic: needs no lock
	// changed is ClientConfig.StateChanged; set before Run, not guarded.
	changed func(ClientState, error)
}

// set records a state change and, if err is not nil, the last error.
func (cs *clientState) set(s ClientState, err error) {
	cs.mu.Lock()
	if err != nil {
		cs.lastErr = err.Error()
	}
	changed := cs.state != s || cs.since.IsZero()
	if changed {
		cs.state, cs.since = s, time.Now()
	}
	cs.mu.Unlock()
	if changed && cs.changed != nil {
		cs.changed(s, err)
	}
}

// fail records why a dial failed, keeping the state.
func (cs *clientState) fail(err error) {
	if err == nil {
		return
	}
	cs.mu.Lock()
	cs.lastErr = err.Error()
	cs.dialFailures++
	cs.mu.Unlock()
}

// up records a connection whose tunnel came up, took after the dial began.
func (cs *clientState) up(conn *quic.Conn, a Assignment, took time.Duration) {
	fp := ""
	if certs := conn.ConnectionState().TLS.PeerCertificates; len(certs) > 0 {
		fp = qcrypto.Fingerprint(certs[0])
	}
	cs.handshakeTime.observe(took)
	cs.mu.Lock()
	cs.connectedAt, cs.fingerprint, cs.assigned = time.Now(), fp, a
	cs.connections++
	cs.mu.Unlock()
	cs.set(StateUp, nil)
}

// Status returns a copy of the client's state, safe to call at any time.
func (c *Client) Status() ClientStatus {
	cs := &c.status
	cs.mu.Lock()
	st := ClientStatus{State: cs.state, Since: cs.since, LastError: cs.lastErr, Server: c.cfg.Server,
		Reconnects: max(cs.connections, 1) - 1, DialFailures: cs.dialFailures, HandshakeTimes: cs.handshakeTime.snapshot(),
		Certificates: c.certs.infos()}
	info := SessionInfo{
		Name:        cs.assigned.Name,
		Fingerprint: cs.fingerprint,
		Addresses:   append([]netip.Prefix(nil), cs.assigned.Addresses...),
		Routes:      append([]netip.Prefix(nil), cs.routes...),
		ConnectedAt: cs.connectedAt,
		PacketSize:  c.cfg.PacketSize,
	}
	cs.mu.Unlock()
	fill(&info, c.conn.Load(), &c.Counters)
	st.Session = info
	return st
}
