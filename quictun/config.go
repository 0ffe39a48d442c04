package quictun

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/wire"
	"github.com/quictun/quictun/state"
)

// Defaults, filled in by ServerConfig.withDefaults and ClientConfig.withDefaults.
const (
	// DefaultPacketSize is the QUIC packet size used from the first packet
	// on and kept as the floor after migrations: a 1500-byte link carries it
	// over IPv4 and IPv6 (1500 − 40 − 8).
	DefaultPacketSize = 1452
	// MinPacketSize is the smallest packet size QUIC allows.
	MinPacketSize = 1200
	// DefaultKeepalive is well under the 30 s after which many NATs forget
	// an idle UDP mapping.
	DefaultKeepalive = 10 * time.Second
	// DefaultIdleTimeout is how long without a packet from the peer before
	// it is considered dead.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultQueueLen is the length of a session's outbound queue on the server.
	DefaultQueueLen = 1024
	// TAPMTU is the MTU of TAP devices: hosts on a bridged LAN keep 1500.
	TAPMTU = 1500
)

// MaxDatagramPayload returns the largest DATAGRAM payload quic-go accepts
// at the given packet size (its conservative estimate: packet size − 37).
func MaxDatagramPayload(packetSize int) int { return packetSize - 37 }

// connIDLen is the length of the connection IDs both ends choose. quic-go
// accepts a DATAGRAM payload up to its conservative estimate (packet size −
// 37, which assumes a 20-byte connection ID) but batches packets into one
// GSO send only while each is exactly the maximum size. With 17-byte IDs a
// 1-RTT packet has a 20-byte header (1 + 17 + a 2-byte packet number, which
// quic-go always uses while fewer than 32768 packets are unacknowledged —
// its congestion window caps that at 10000), so a datagram of the largest
// accepted size fills the packet exactly: every full-size tunnel packet
// rides a full QUIC packet, and a bulk transfer is sent in GSO batches.
const connIDLen = 17

// TUNMTU returns the TUN device MTU that lets a full-size packet fit one
// datagram (with our 1-byte header) at the given QUIC packet size.
func TUNMTU(packetSize int) int { return MaxDatagramPayload(packetSize) - wire.PacketHeaderLen }

// MinIPv6MTU is the smallest link MTU IPv6 works on.
const MinIPv6MTU = 1280

// ipv6MTU raises a derived TUN MTU to 1280 when IPv6 is in use: below that
// Linux disables IPv6 on the device. Packets between the derived MTU and
// 1280 are then split into fragments (IPv6 must not be answered with a
// Packet Too Big below 1280).
func ipv6MTU(mtu int, addrs []netip.Prefix) int {
	if mtu >= MinIPv6MTU {
		return mtu
	}
	for _, p := range addrs {
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			return MinIPv6MTU
		}
	}
	return mtu
}

// ServerConfig configures a Server. The zero value of each optional field
// is documented next to it.
type ServerConfig struct {
	// Mode is TUN (a router) or TAP (a learning switch). Required; the
	// device given to Serve must be of this kind.
	Mode device.Kind
	// TLS is the server's TLS config with mutual authentication
	// (crypto.ServerTLSConfig). Required.
	TLS *tls.Config
	// Listen is the UDP address to listen on, e.g. ":4433" (every address,
	// IPv4 and IPv6 on one socket) or "192.0.2.1:4433".
	// Required unless Conn is set.
	Listen string
	// Conn, when set, is the socket the server uses instead of opening one
	// on Listen (tests, or many servers' worth of sockets in one process).
	// The server does not close it. A *net.UDPConn keeps quic-go's fast
	// path; quictun's own socket additions (UDP GRO splitting, the receive
	// gate, transient send errors as loss) apply only to the socket it
	// opens itself. Nil: open one on Listen.
	Conn net.PacketConn
	// Networks are the server's own tunnel addresses with their prefix.
	// A client address from a certificate or the pool gets the
	// prefix length of the network that contains it. TUN mode: required.
	Networks []netip.Prefix
	// Pools hand addresses to clients whose certificate has none; each a
	// network (no host bits). Server.SetPools changes them while running.
	// Nil: such clients are refused.
	Pools []netip.Prefix
	// Routes are pushed to every client to install via its device; each a
	// network (no host bits). Server.SetRoutes changes them while running
	// and sends connected clients the new list. Nil: none.
	Routes []netip.Prefix
	// MTU is the device MTU announced to clients (TUN). 0: TUNMTU(PacketSize).
	// TAP mode always uses TAPMTU and splits frames that do not fit.
	MTU int
	// PacketSize is the QUIC packet size (InitialPacketSize). 0: DefaultPacketSize.
	PacketSize int
	// Keepalive is the keepalive period. 0: DefaultKeepalive.
	Keepalive time.Duration
	// IdleTimeout detects a dead client. 0: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// QueueLen bounds each session's outbound queue (rounded up to a power
	// of two; the queue grows to it only in a burst). 0: DefaultQueueLen.
	QueueLen int
	// AddRoutes, when set, is called with the networks a client's
	// certificate routes behind it (URI SANs), to route them via the
	// device; the returned undo runs when the client leaves. Nil: the
	// server's kernel is not told about them (the hub still forwards them).
	AddRoutes func(routes []netip.Prefix) (undo func() error, err error)
	// StatelessResetKey, when set, lets clients of a crashed and restarted
	// server notice at once (derive it from the server's key). Nil: no resets.
	StatelessResetKey *quic.StatelessResetKey
	// Leases hands out pool addresses. Nil: a state.MemoryLeases.
	Leases state.Leases
	// Revocations, when set, is the set of revoked client certificates: a
	// revoked client is refused after its handshake (resumed ones too),
	// and when the set changes the sessions of clients revoked since are
	// closed with CloseRevoked. Nil: nothing is revoked.
	Revocations state.Revocations
	// IsolateClients (TAP mode) keeps clients apart, as OpenVPN does
	// without client-to-client: a client's frames go to the server's
	// device only (broadcasts too), and a frame to a MAC learned on
	// another client is dropped with DropPolicy. Frames from the device
	// still reach every client. Server.SetTAPPolicy changes it while
	// running. False: every port reaches every other.
	IsolateClients bool
	// PinMACs (TAP mode) stops a client from sending with a source MAC
	// that the switch holds live on another port (another client's, or a
	// host on the device's side): such frames are dropped with
	// DropSpoofed, not learned and not forwarded, until the entry ages out
	// (5 minutes after it was last seen) or its client leaves. Frames
	// from the device always learn: the server's own LAN is trusted, so a
	// MAC a client claimed first moves back when its host speaks there.
	// Server.SetTAPPolicy changes it while running. False: a MAC moves to
	// the port it was last seen on (a host that moves between sites).
	PinMACs bool
	// Rules are the access rules of the hub (TUN mode only), checked in
	// order for every packet between clients and between a client and
	// the server's side; the first that matches decides, and a reply of
	// an allowed flow passes back (docs/OPERATIONS.md, "Access rules").
	// Server.SetRules changes them while running. Nil: no rules.
	Rules []Rule
	// ClientToClient is the verdict for client ↔ client packets that no
	// rule matches (TUN mode only). Packets between a client and the
	// server's side that no rule matches are always allowed. 0: Allow.
	ClientToClient RuleAction
	// SessionsChanged, when set, is called with the number of clients
	// connected each time it changes, outside the server's locks. Calls do
	// not overlap, and the last one carries the current number. Nil: not
	// called.
	SessionsChanged func(n int)
	// CACerts are the CA certificates behind TLS.ClientCAs (a pool cannot
	// list them). The server warns in its log when one of them, its own
	// certificate (TLS.Certificates[0]) or a connected client's is within
	// ExpiryWarning of its expiry, and Status lists them. Nil: the CAs'
	// expiry is not watched.
	CACerts []*x509.Certificate
	// Handshakes bound the handshakes in flight: when clients must prove
	// their address (QUIC Retry) and how many one source may have. The
	// zero value: the defaults (HandshakeLimits).
	Handshakes HandshakeLimits
	// Logger receives the server's logs. Nil: slog.Default().
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	fillTransportDefaults(&c.PacketSize, &c.Keepalive, &c.IdleTimeout, &c.Logger)
	if c.MTU == 0 {
		c.MTU = ipv6MTU(TUNMTU(c.PacketSize), c.Networks)
	}
	if c.Mode == device.TAP {
		c.MTU = TAPMTU
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	if c.Leases == nil {
		c.Leases = state.NewMemoryLeases(0)
	}
	return c
}

// fillTransportDefaults fills the settings both ends share.
func fillTransportDefaults(packetSize *int, keepalive, idle *time.Duration, log **slog.Logger) {
	if *packetSize == 0 {
		*packetSize = DefaultPacketSize
	}
	if *keepalive == 0 {
		*keepalive = DefaultKeepalive
	}
	if *idle == 0 {
		*idle = DefaultIdleTimeout
	}
	if *log == nil {
		*log = slog.Default()
	}
}

// ClientConfig configures a Client. The zero value of each optional field
// is documented next to it.
type ClientConfig struct {
	// Server is the server's "host:port". Required.
	Server string
	// Transport, when set, carries every connection of the client instead
	// of a fresh socket per dial (many clients in one process sharing one
	// socket, as a scale test does). The client does not close it. Nil: a
	// new socket for each dial, so a redial after a network change starts
	// from the current route.
	Transport *quic.Transport
	// TLS is the client's TLS config (crypto.ClientTLSConfig). Required.
	TLS *tls.Config
	// Mode, when set, is the mode the client insists on; the server refuses
	// a mismatch. 0: whatever the server runs.
	Mode device.Kind
	// MTU, when set, caps the device MTU (and tells the server the largest
	// packet to send us). 0: the server's.
	MTU int
	// PacketSize is the QUIC packet size. 0: DefaultPacketSize.
	PacketSize int
	// Keepalive is the keepalive period. 0: DefaultKeepalive.
	Keepalive time.Duration
	// IdleTimeout detects a dead server. 0: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// SetupDevice is called once, after the first successful exchange with
	// the server, to open and configure the device from what the server
	// assigned. Required.
	SetupDevice func(Assignment) (device.Device, error)
	// UpdateRoutes, when set, changes the routes through the device when
	// the server's pushed routes differ from those installed: while
	// connected (the server sent a new list) or at a reconnect whose
	// config brings another list. remove are to be taken away, add to be
	// installed, at least one of them non-empty. Calls do not overlap and
	// come only after SetupDevice (which installs the first list). On an
	// error the client keeps counting the old list as installed, so the
	// next change or reconnect asks for the whole difference again:
	// removing a route that is gone and adding one that is there must
	// succeed. Nil: changes are logged (at Warn) and shown by Status but
	// not applied to the system.
	UpdateRoutes func(add, remove []netip.Prefix) error
	// OnUp, when set, is called each time the tunnel comes up (the first
	// connection and every reconnection, once its control exchange is
	// done), with the Assignment the device was set up from: the first
	// connection's, which the device keeps. It runs on Run's goroutine
	// before the connection's inbound packets are read: hand slow work to
	// another goroutine. Nil: not called.
	OnUp func(Assignment)
	// StateChanged, when set, is called at every change of the client's
	// state (Status().State) with the new state and, for
	// StateReconnecting, why the tunnel went down. It runs on Run's
	// goroutine, after the state is recorded, so it may call Status; it
	// must not block. Nil: not called.
	StateChanged func(ClientState, error)
	// MaxRetries is how many failed dials in a row the client accepts before
	// giving up. 0: never give up.
	MaxRetries int
	// CACerts are the CA certificates behind TLS.RootCAs (a pool cannot
	// list them). The client warns in its log when one of them, its own
	// certificate (TLS.Certificates[0], as crypto.ClientTLSConfig sets it)
	// or the server's is within ExpiryWarning of its expiry, and Status
	// lists them. Nil: the CAs' expiry is not watched.
	CACerts []*x509.Certificate
	// Logger receives the client's logs. Nil: slog.Default().
	Logger *slog.Logger
}

func (c ClientConfig) withDefaults() ClientConfig {
	fillTransportDefaults(&c.PacketSize, &c.Keepalive, &c.IdleTimeout, &c.Logger)
	return c
}

// Assignment is what the server tells a client to configure.
type Assignment struct {
	// Mode is the server's mode; the device must be of this kind.
	Mode device.Kind
	// MTU is the device MTU to set.
	MTU int
	// Addresses are the client's tunnel addresses with prefix length.
	Addresses []netip.Prefix
	// Gateways are the server's tunnel addresses.
	Gateways []netip.Addr
	// Routes are to be installed via the device.
	Routes []netip.Prefix
	// Name is the client's identity as the server sees it.
	Name string
}

// quicConfig returns the quic-go config both ends use.
func quicConfig(packetSize int, keepalive, idle, handshake time.Duration) *quic.Config {
	return &quic.Config{
		EnableDatagrams:   true,
		InitialPacketSize: uint16(packetSize),
		// The packet size stays what was configured: the device MTU is
		// derived from it once, so bigger packets found by path-MTU
		// discovery would carry nothing more, and would no longer be
		// exactly full (see connIDLen), which ends quic-go's GSO batches.
		DisablePathMTUDiscovery: true,
		KeepAlivePeriod:         keepalive,
		MaxIdleTimeout:          idle,
		HandshakeIdleTimeout:    handshake,
		MaxIncomingStreams:      4,
		MaxIncomingUniStreams:   -1,
	}
}

// MaxPacketSize is the largest QUIC packet size a config may ask for.
const MaxPacketSize = 9000

// ConfigError is a ServerConfig or ClientConfig field with a bad value.
// NewServer and NewClient return it; Field is the Go field name (e.g.
// "Networks", "PacketSize"), so a command line or config file can say
// which of its own settings to change.
type ConfigError struct {
	Field string
	Msg   string
}

// Error implements error.
func (e *ConfigError) Error() string { return e.Field + ": " + e.Msg }

func configErr(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// CheckSizes checks a PacketSize and an MTU (as set in a ServerConfig or
// ClientConfig, before defaults: 0 means the default) for mode (0: any):
// the one rule both Validate methods apply, for callers that want to check
// them before anything else. It returns a *ConfigError.
func CheckSizes(mode device.Kind, packetSize, mtu int) error {
	if packetSize == 0 {
		packetSize = DefaultPacketSize
	}
	if packetSize < MinPacketSize || packetSize > MaxPacketSize {
		return configErr("PacketSize", "%d is out of range: want %d..%d", packetSize, MinPacketSize, MaxPacketSize)
	}
	if mtu == 0 {
		return nil
	}
	if mode == device.TAP {
		return configErr("MTU", "applies to TUN mode; a TAP device keeps MTU %d so bridged hosts need no change", TAPMTU)
	}
	if max := TUNMTU(packetSize); mtu < 576 || mtu > max {
		return configErr("MTU", "%d is out of range: want 576..%d (the largest that fits one datagram at packet size %d; a larger packet size allows more)", mtu, max, packetSize)
	}
	return nil
}

// Validate checks c (after defaults are filled in, as NewServer does): the
// one place a server's configuration is checked.
func (c ServerConfig) Validate() error {
	explicitMTU := c.MTU
	c = c.withDefaults()
	switch {
	case c.Mode != device.TUN && c.Mode != device.TAP:
		return configErr("Mode", "no mode: want TUN or TAP")
	case c.TLS == nil:
		return configErr("TLS", "no TLS config")
	case c.Listen == "" && c.Conn == nil:
		return configErr("Listen", "no address to listen on")
	}
	if err := CheckSizes(c.Mode, c.PacketSize, explicitMTU); err != nil {
		return err
	}
	if c.Mode == device.TUN && len(c.Networks) == 0 {
		return configErr("Networks", "a TUN server needs its own tunnel address, e.g. 10.77.0.1/24")
	}
	if err := checkNetworks("Routes", c.Routes); err != nil {
		return err
	}
	if err := checkTAPPolicy(c.Mode, c.IsolateClients, c.PinMACs); err != nil {
		return err
	}
	if err := checkModeRules(c.Mode, c.Rules, c.ClientToClient); err != nil {
		return err
	}
	return checkPools(c.Mode, c.Networks, c.Pools)
}

// Validate checks c (after defaults are filled in, as NewClient does): the
// one place a client's configuration is checked.
func (c ClientConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Server == "":
		return configErr("Server", "no server address")
	case !hasPort(c.Server):
		return configErr("Server", "%q: want host:port, e.g. vpn.example.com:4433", c.Server)
	case c.MaxRetries < 0:
		return configErr("MaxRetries", "must be 0 (never give up) or more")
	case c.TLS == nil:
		return configErr("TLS", "no TLS config")
	case c.SetupDevice == nil:
		return configErr("SetupDevice", "no SetupDevice")
	}
	return CheckSizes(c.Mode, c.PacketSize, c.MTU)
}

// hasPort reports whether addr is host:port.
func hasPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port != ""
}
