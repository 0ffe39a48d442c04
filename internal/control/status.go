package control

import "time"

// Status is the answer to a status request: a snapshot of one quictun
// process. Times are RFC 3339 in JSON; byte and packet counts are totals
// since the session (or, on a client, the process) began.
type Status struct {
	// Role is "server" or "client"; Server or Client is set accordingly.
	Role string `json:"role"`
	// PID is the process's id.
	PID int `json:"pid"`
	// Device is the process's TUN or TAP device.
	Device string `json:"device"`
	// Mode is "tun" or "tap"; on a client "" until the server said which.
	Mode string `json:"mode,omitempty"`
	// Time is when the snapshot was taken, by the process's clock (uptimes
	// are measured against it).
	Time time.Time `json:"time"`
	// Certificate is the process's own certificate.
	Certificate Certificate `json:"certificate"`
	// CAs are the CA certificates the process verifies its peers
	// against (--ca); absent if not known.
	CAs []Certificate `json:"cas,omitempty"`
	// Server is set on a server.
	Server *ServerStatus `json:"server,omitempty"`
	// Client is set on a client.
	Client *ClientStatus `json:"client,omitempty"`
}

// Certificate describes a certificate.
type Certificate struct {
	// Name is its Subject Common Name (a client's identity).
	Name string `json:"name"`
	// Fingerprint is the lower-case hex SHA-256 of the certificate.
	Fingerprint string `json:"fingerprint"`
	// NotAfter is when it expires.
	NotAfter time.Time `json:"not_after"`
	// ExpiresSoon is true when it expires within 30 days of Status.Time
	// or has expired: the process warns about it in its log once a day.
	ExpiresSoon bool `json:"expires_soon,omitempty"`
}

// ServerStatus is a server's part of Status.
type ServerStatus struct {
	// Listen is the UDP address the server listens on.
	Listen string `json:"listen"`
	// Sessions are the clients whose tunnel is up, sorted by name; empty,
	// not absent, when there are none.
	Sessions []Session `json:"sessions"`
	// Drops are the server's own drops by reason (packets from its device
	// that no client owns, and the like), non-zero ones only; a session's
	// drops are in the session.
	Drops map[string]uint64 `json:"drops"`
}

// ClientStatus is a client's part of Status.
type ClientStatus struct {
	// Server is the server address the client dials.
	Server string `json:"server"`
	// State is "connecting" (before the first tunnel), "up",
	// "reconnecting" (the tunnel was up and is being redialled) or
	// "stopped".
	State string `json:"state"`
	// Since is when State began.
	Since time.Time `json:"since"`
	// LastError is why the last connection ended or the last dial failed;
	// absent if nothing failed yet.
	LastError string `json:"last_error,omitempty"`
	// Session is the current connection, or while not up the last one
	// (its counters are the client's totals over all its connections);
	// absent before the first connection.
	Session *Session `json:"session,omitempty"`
}

// Session is one tunnel session: on a server a client's, on a client its
// connection to the server.
type Session struct {
	// Name is the client's identity: on a server the client's certificate
	// name, on a client the name the server knows it by.
	Name string `json:"name"`
	// Fingerprint is the lower-case hex SHA-256 of the peer's certificate
	// (a server's: the client's; a client's: the server's).
	Fingerprint string `json:"fingerprint"`
	// PeerNotAfter is when the peer's certificate expires.
	PeerNotAfter time.Time `json:"peer_not_after"`
	// PeerExpiresSoon is true when the peer's certificate expires within
	// 30 days of Status.Time or has expired (as Certificate.ExpiresSoon).
	PeerExpiresSoon bool `json:"peer_expires_soon,omitempty"`
	// Addresses are the client's tunnel addresses, "addr/len".
	Addresses []string `json:"addresses"`
	// Routes are the networks routed to the client: from its certificate
	// on a server, pushed by the server on a client.
	Routes []string `json:"routes,omitempty"`
	// Remote is the peer's UDP address now ("host:port").
	Remote string `json:"remote"`
	// RemoteChanges is how often the client's address changed during the
	// connection (migration, NAT rebinding), as a server sees it; always
	// 0 on a client.
	RemoteChanges int `json:"remote_changes"`
	// ConnectedAt is when the tunnel came up.
	ConnectedAt time.Time `json:"connected_at"`
	// RTTMillis is QUIC's smoothed round-trip time, in milliseconds.
	RTTMillis float64 `json:"rtt_ms"`
	// PacketSize is the QUIC packet size this end sends.
	PacketSize int `json:"packet_size"`
	// Tx is outbound (device → peer, sent as datagrams), Rx inbound
	// (received from the peer and delivered): IP packets (TUN) or
	// Ethernet frames (TAP), and their bytes.
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// Drops are this session's drops by reason (the names of
	// docs/OPERATIONS.md), non-zero ones only.
	Drops map[string]uint64 `json:"drops"`
}
