package quictun

import (
	"context"
	crand "crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/udp"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// clientHandshakeTimeout bounds one dial to a silent server: a redial to a
// dead server retransmits its Initial at ~0.2/0.6 s, and a short timeout
// with a short backoff finds a returning server within about a second.
const clientHandshakeTimeout = 1500 * time.Millisecond

// Client is one end of a tunnel: it dials the server, keeps its device, and
// redials when the connection is lost.
type Client struct {
	cfg      ClientConfig
	log      *slog.Logger
	instance string

	// maxDatagram is the largest datagram payload we send (our packet size
	// sets it); only the device reader touches it after setup.
	maxDatagram int
	// mtuLimit is the largest packet we ask the server to send in one
	// piece (TUN): what our datagrams carry, capped by ClientConfig.MTU.
	mtuLimit int

	dev      device.Device // set once by the first successful exchange
	assigned Assignment    // what the server assigned the first time
	conn     atomic.Pointer[quic.Conn]
	frag     wire.Fragmenter
	icmp     *rateLimiter
	logRL    *rateLimiter
	wg       sync.WaitGroup
	status   clientState

	// own is our certificate's leaf (from TLS.Certificates; nil if not
	// there); dialReq is what the dial in progress learned of the server's
	// certificate request, used by Run's goroutine only; warnedCA is set
	// once the mismatch of our CA with the server's was logged.
	own      *x509.Certificate
	dialReq  *certRequest
	warnedCA atomic.Bool
	certs    watchedCerts // our own certificate and the CAs
	expiry   expiryWarner

	routesMu sync.Mutex     // serializes route changes
	routes   []netip.Prefix // the server's routes as installed; guarded by routesMu

	// Counters of the tunnel (all connections of this client).
	Counters
}

// NewClient checks cfg. Call Run to connect.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var id [8]byte
	_, _ = crand.Read(id[:])
	c := &Client{
		cfg:         cfg,
		log:         cfg.Logger,
		instance:    hex.EncodeToString(id[:]),
		maxDatagram: MaxDatagramPayload(cfg.PacketSize),
		mtuLimit:    TUNMTU(cfg.PacketSize),
		icmp:        newRateLimiter(100, 200),
		logRL:       newRateLimiter(1, 10),
	}
	if cfg.MTU > 0 {
		c.mtuLimit = min(c.mtuLimit, cfg.MTU)
	}
	c.status.changed = cfg.StateChanged
	c.own = ownLeaf(cfg.TLS)
	c.certs = watchedCerts{own: c.own, ownKind: CertClient, cas: cfg.CACerts}
	c.expiry.log = c.log
	return c, nil
}

// Device returns the device once the first connection has set it up (nil before).
func (c *Client) Device() device.Device { return c.dev }

// Run connects and carries traffic until ctx is done (it then closes the
// connection with an application close and returns nil) or an error a
// redial cannot fix (a *PermanentError, or giving up after MaxRetries).
// The caller closes the device after Run returns; Wait then waits for the
// device reader.
func (c *Client) Run(ctx context.Context) error {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go c.watchSleep(sctx, newSleepDetector())
	go c.watchExpiry(sctx)
	c.status.set(StateConnecting, nil)
	defer c.status.set(StateStopped, nil)
	failures := 0
	lastState := ""
	for {
		up, err := c.connectOnce(ctx)
		if !up {
			// Refused after the handshake (the exchange then fails), too.
			err = busyError(err)
		}
		if ctx.Err() != nil {
			return nil
		}
		if up {
			c.status.set(StateReconnecting, err)
		} else {
			c.status.fail(err)
		}
		var pe *PermanentError
		if errors.As(err, &pe) {
			return err
		}
		if up {
			failures = 0
		} else {
			failures++
		}
		// One line per state change: "tunnel down" was logged when the
		// connection ended; a failing redial says so once.
		switch {
		case up:
			lastState = ""
		case errors.Is(err, ErrServerBusy) && lastState != "busy":
			c.log.Warn("server busy; redialling", "server", c.cfg.Server, "err", errString(err))
			lastState = "busy"
		case lastState == "":
			c.log.Warn("server unreachable; redialling", "server", c.cfg.Server, "err", errString(err))
			lastState = "unreachable"
		default:
			c.log.Debug("redial failed", "server", c.cfg.Server, "err", errString(err), "attempt", failures)
		}
		if c.cfg.MaxRetries > 0 && failures > c.cfg.MaxRetries {
			return fmt.Errorf("gave up after %d failed attempts to reach %s: %w", failures, c.cfg.Server, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff(failures)):
		}
	}
}

// Wait waits for the device reader, which ends once the device is closed.
func (c *Client) Wait() { c.wg.Wait() }

// backoff returns the pause before redial n: exponential from 100 ms,
// capped at 1 s so a returning server is found quickly, with ±25% jitter.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond << min(n, 4)
	d = min(d, time.Second)
	return d*3/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// connectOnce dials, runs the control exchange, and carries traffic until
// the connection ends. up reports whether the tunnel came up.
func (c *Client) connectOnce(ctx context.Context) (up bool, err error) {
	raddr, err := net.ResolveUDPAddr("udp", c.cfg.Server)
	if err != nil {
		return false, fmt.Errorf("resolve server %q: %w", c.cfg.Server, err)
	}
	laddr := ":0"
	if raddr.IP.To4() == nil {
		laddr = "[::]:0"
	}
	tr, gate := c.cfg.Transport, (*udp.RxGate)(nil)
	if tr == nil {
		sock, err := udp.Listen(laddr, c.log, c.Counters.socket())
		if err != nil {
			return false, err
		}
		tr, gate = &quic.Transport{Conn: sock, ConnectionIDLength: connIDLen}, sock.Gate()
		defer sock.Close() // after tr.Close: quic-go does not close a socket it was given
		defer tr.Close()
	}
	qc := quicConfig(c.cfg.PacketSize, c.cfg.Keepalive, c.cfg.IdleTimeout, clientHandshakeTimeout)
	dctx, cancel := context.WithTimeout(ctx, controlTimeout)
	defer cancel()
	start := time.Now()
	c.dialReq = &certRequest{own: c.own}
	conn, err := tr.Dial(dctx, raddr, c.withCertRequest(c.cfg.TLS, c.dialReq), qc)
	if err != nil {
		return false, classifyDialError(err, c.cfg.Server, c.dialReq)
	}
	stopOnCancel := context.AfterFunc(ctx, func() { conn.CloseWithError(CloseNormal, "client stopping") })
	defer stopOnCancel()
	stream, err := c.exchange(dctx, conn)
	if err != nil {
		conn.CloseWithError(CloseProtocol, "setup failed")
		// The server refuses our certificate after our side of the
		// handshake is done: its alert may end any step of the exchange.
		return false, classifyDialError(err, c.cfg.Server, c.dialReq)
	}
	cancel()
	c.conn.Store(conn)
	defer c.conn.CompareAndSwap(conn, nil)
	c.status.up(conn, c.assigned, time.Since(start))
	c.log.Info("tunnel up", "server", c.cfg.Server, "remote", conn.RemoteAddr().String(),
		"device", c.dev.Name(), "addresses", fmtPrefixes(c.assigned.Addresses), "mtu", c.assigned.MTU)
	c.checkServerExpiry(conn, time.Now())
	if c.cfg.OnUp != nil {
		c.cfg.OnUp(c.assigned)
	}
	go c.controlLoop(conn, stream)
	go c.keepalive(conn)
	c.inboundLoop(conn, gate)
	// The inbound loop ends when ReceiveDatagram fails, which can be just
	// before the connection's context carries the close's cause.
	select {
	case <-conn.Context().Done():
	case <-time.After(time.Second):
	}
	err = context.Cause(conn.Context())
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && quic.ApplicationErrorCode(ae.ErrorCode) == CloseReplaced {
		c.log.Warn("the server replaced this connection with a newer one of the same identity: is the same certificate in use twice?")
	}
	if ctx.Err() == nil {
		c.log.Warn("tunnel down", "reason", closeReason(err))
	}
	if errors.As(err, &ae) && ae.Remote && quic.ApplicationErrorCode(ae.ErrorCode) == CloseRevoked {
		// A redial would be refused: give up now, saying why.
		return true, &PermanentError{Err: ErrRevoked}
	}
	return true, err
}

// exchange runs the control exchange: hello → config (or error) → set up
// the device the first time → ready.
func (c *Client) exchange(ctx context.Context, conn *quic.Conn) (*quic.Stream, error) {
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, classifyDialError(fmt.Errorf("open control stream: %w", err), c.cfg.Server, c.dialReq)
	}
	stop := context.AfterFunc(ctx, func() { stream.CancelRead(0); stream.CancelWrite(0) })
	defer stop()
	hello := &wire.ControlMsg{Type: wire.MsgHello, Version: ProtocolVersion, Instance: c.instance}
	if c.cfg.Mode != 0 {
		hello.Mode = c.cfg.Mode.String()
	}
	hello.MTU = c.mtuLimit
	if err := wire.WriteControl(stream, hello); err != nil {
		return nil, err
	}
	m, err := wire.ReadControl(stream)
	if err != nil {
		return nil, classifyDialError(err, c.cfg.Server, c.dialReq)
	}
	switch m.Type {
	case wire.MsgError:
		c.log.Debug("server refused", "code", m.Code, "message", m.Message)
		return nil, &PermanentError{Err: &RemoteError{Code: m.Code, Message: m.Message}}
	case wire.MsgConfig:
	default:
		return nil, fmt.Errorf("expected config from the server, got %q", m.Type)
	}
	a, err := assignmentOf(m)
	if err != nil {
		return nil, &PermanentError{Msg: "server sent an unusable config", Err: err}
	}
	if c.cfg.Mode != 0 && a.Mode != c.cfg.Mode {
		return nil, &PermanentError{Err: &ModeMismatchError{Server: a.Mode, Client: c.cfg.Mode}}
	}
	if a.Mode == device.TAP {
		// Hosts on a bridged LAN keep 1500; frames that do not fit a
		// datagram are split (docs/PROTOCOL.md, config.mtu).
		a.MTU = TAPMTU
	}
	if a.Mode == device.TUN {
		a.MTU = min(a.MTU, c.mtuLimit)
		if c.cfg.MTU == 0 {
			a.MTU = ipv6MTU(a.MTU, a.Addresses)
		}
	}
	if c.dev == nil {
		dev, err := c.cfg.SetupDevice(a)
		if err != nil {
			return nil, &PermanentError{Msg: "set up the device", Err: err}
		}
		c.dev, c.assigned = dev, a
		c.setInstalledRoutes(a.Routes)
		c.wg.Add(1)
		go c.readDevice()
	} else if !slices.Equal(a.Addresses, c.assigned.Addresses) || a.Mode != c.assigned.Mode {
		c.log.Warn("the server assigned other addresses than before; the device keeps the old ones until restart",
			"old", fmtPrefixes(c.assigned.Addresses), "new", fmtPrefixes(a.Addresses))
	}
	c.applyRoutes(nil, a.Routes)
	if err := wire.WriteControl(stream, &wire.ControlMsg{Type: wire.MsgReady}); err != nil {
		return nil, err
	}
	stop()
	return stream, nil
}

// assignmentOf checks and converts a config message.
func assignmentOf(m *wire.ControlMsg) (Assignment, error) {
	mode, err := device.ParseKind(m.Mode)
	if err != nil {
		return Assignment{}, err
	}
	if m.Version != ProtocolVersion {
		return Assignment{}, fmt.Errorf("protocol version %d (we speak %d)", m.Version, ProtocolVersion)
	}
	if m.MTU < 576 || m.MTU > 65535 {
		return Assignment{}, fmt.Errorf("MTU %d out of range", m.MTU)
	}
	return Assignment{Mode: mode, MTU: m.MTU, Addresses: m.Addresses, Gateways: m.Gateways, Routes: m.Routes, Name: m.Name}, nil
}

// keepalive sends a padded KEEPALIVE datagram every Keepalive period.
// QUIC's own PINGs keep the NAT mapping too, but they are shorter than
// the 43 bytes a server needs to answer with a stateless reset: after a
// server restart a padded packet makes the old connection fail at once,
// even when the tunnel is idle.
func (c *Client) keepalive(conn *quic.Conn) {
	var ka [wire.KeepaliveLen]byte
	ka[0] = wire.TypeKeepalive
	t := time.NewTicker(c.cfg.Keepalive)
	defer t.Stop()
	for {
		select {
		case <-conn.Context().Done():
			return
		case <-t.C:
			_ = conn.SendDatagram(ka[:])
		}
	}
}

// sleepDetector notices that the machine slept: Go timers use the
// monotonic clock, which stops during suspend, so after a long sleep
// nothing has timed out yet although the server has long forgotten us.
// The wall clock keeps running; the difference between the two is the
// time spent asleep.
type sleepDetector struct {
	wall     func() time.Time     // wall clock (no monotonic reading)
	mono     func() time.Duration // monotonic clock
	lastWall time.Time
	lastMono time.Duration
}

func newSleepDetector() *sleepDetector {
	start := time.Now()
	d := &sleepDetector{
		wall: func() time.Time { return time.Now().Round(0) },
		mono: func() time.Duration { return time.Since(start) },
	}
	d.lastWall, d.lastMono = d.wall(), d.mono()
	return d
}

// slept returns how much more wall-clock than monotonic time passed since
// the last call: the time the machine was suspended.
func (d *sleepDetector) slept() time.Duration {
	w, m := d.wall(), d.mono()
	jump := w.Sub(d.lastWall) - (m - d.lastMono)
	d.lastWall, d.lastMono = w, m
	return jump
}

// watchSleep checks every second whether the machine slept longer than the
// idle timeout; then the connection is closed so the client redials at once.
func (c *Client) watchSleep(ctx context.Context, d *sleepDetector) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if jump := d.slept(); jump > c.cfg.IdleTimeout {
				c.log.Info("woke from sleep; reconnecting", "slept", jump.Round(time.Second))
				if conn := c.conn.Load(); conn != nil {
					conn.CloseWithError(CloseNormal, "client woke from sleep")
				}
			}
		}
	}
}

// controlLoop reads control messages from the server after setup.
func (c *Client) controlLoop(conn *quic.Conn, stream *quic.Stream) {
	for {
		m, err := wire.ReadControl(stream)
		if err != nil {
			return
		}
		switch m.Type {
		case wire.MsgGoAway:
			c.log.Info("server going away", "reason", m.Message)
		case wire.MsgRoutes:
			c.applyRoutes(conn, m.Routes)
		default:
			c.log.Debug("ignoring control message", "type", m.Type)
		}
	}
}

// inboundLoop writes the packets the server sends into the device until
// the connection ends, up to a device batch per Write.
func (c *Client) inboundLoop(conn *quic.Conn, gate *udp.RxGate) {
	in := newInboundPath(c.dev, maxHubPacket(c.assigned.MTU), &c.Counters, c.log, c.logRL)
	in.run(conn, gate, func(pkt []byte) { in.out.add(pkt, &c.Counters) })
}

// readDevice sends what the device reads to the server over the current
// connection; with none, packets are dropped (and counted), as on any
// lossy link. It ends when the device is closed.
func (c *Client) readDevice() {
	defer c.wg.Done()
	batch := max(c.dev.BatchSize(), 1)
	size := headroom + maxHubPacket(c.assigned.MTU)
	bufs := make([][]byte, batch)
	sizes := make([]int, batch)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	var scratch [wire.MaxFragments][]byte // made by sendPacket when first needed
	icmpBuf := make([]byte, 1280)
	one := make([][]byte, 1)
	tap := c.dev.Kind() == device.TAP
	mss := tapMSS(c.cfg.PacketSize)
	err := readPackets(c.dev, bufs, sizes, &c.Counters, func(i, n int) {
		conn := c.conn.Load()
		if conn == nil {
			c.Drop(DropNoConn)
			return
		}
		pkt := bufs[i][headroom : headroom+n]
		if tap {
			packet.ClampMSSFrame(pkt, mss)
		} else if mtu := c.maxDatagram - wire.PacketHeaderLen; tooBigFor(pkt, mtu) {
			if n, ok := answerTooBig(icmpBuf, pkt, mtu, c.icmp, &c.Counters); ok {
				writeOne(c.dev, icmpBuf[:n], one, &c.Counters, c.log, c.logRL)
			}
			return
		}
		_ = sendPacket(conn, bufs[i][headroom-wire.PacketHeaderLen:headroom+n], &c.maxDatagram, &c.frag, scratch[:], &c.Counters)
	})
	if err != nil {
		c.log.Error("device read failed", "device", c.dev.Name(), "err", err)
	}
}
