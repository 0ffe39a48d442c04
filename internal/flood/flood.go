// Package flood throws junk at a QUIC server's port, for the flood test
// (quictun/flood_test.go) and the measurements of docs/OPERATIONS.md
// ("Under attack", testdata/flood). It sends only to a loopback address:
// Run refuses any other target.
//
// The kinds, one per Run:
//   - Random: datagrams of random bytes and every size (1 byte to 64 KB).
//   - Bogus: QUIC-looking packets with headers the server cannot take:
//     unknown versions, Handshake and Version Negotiation packets outside
//     a connection, Initials too small, short headers for no connection,
//     headers that do not parse, and Initials of the right size whose
//     payload is garbage (they start a handshake that never finishes).
//   - HalfOpen: real ClientHellos (quic-go dials) from sockets that never
//     read the answer: Initials that never finish, and never answer a
//     Retry, as from spoofed addresses.
//   - BadCert: complete handshakes with a certificate the server refuses.
//   - Storm: complete handshakes with a good certificate, all at once, as
//     after a server restart; each counts as an error unless the server
//     accepts it (no close within a second).
//
// The sources are 127.0.0.2, 127.0.0.3, … (Config.Sources of them, from
// Config.From), so a flood comes from many addresses, as a spoofed one
// does.
package flood

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"
)

// Kind is a kind of flood.
type Kind int

// The kinds of flood (see the package comment).
const (
	Random Kind = iota
	Bogus
	HalfOpen
	BadCert
	Storm
)

var kindNames = [...]string{Random: "random", Bogus: "bogus", HalfOpen: "halfopen", BadCert: "badcert", Storm: "storm"}

// String returns the kind's name, as ParseKind takes it.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	for k, n := range kindNames {
		if n == s {
			return Kind(k), nil
		}
	}
	return 0, fmt.Errorf("unknown flood kind %q (random, bogus, halfopen, badcert, storm)", s)
}

// Config says what to send.
type Config struct {
	Kind Kind
	// Target is the server's UDP address; it must be a loopback address.
	Target *net.UDPAddr
	// Rate is the datagrams (Random, Bogus) or handshakes (HalfOpen,
	// BadCert) a second. Zero: 1000.
	Rate int
	// Duration is how long to send. Zero: 1 s.
	Duration time.Duration
	// Sources is the number of source addresses (From and the ones after
	// it). Zero: 1.
	Sources int
	// From is the first source address, a loopback IPv4 address. Nil:
	// 127.0.0.2 (not 127.0.0.1, the address a test's good client has).
	From net.IP
	// Count, when not zero, ends the flood after this many datagrams or
	// handshakes.
	Count int
	// TLS is the client config of HalfOpen and BadCert (for BadCert, with
	// a certificate the server refuses but trusting the server's CA, so
	// that the server sees the certificate).
	TLS *tls.Config
}

// Result says what a Run sent.
type Result struct {
	// Sent counts the datagrams or handshakes started.
	Sent int64
	// Errors counts the sends that failed locally; for BadCert, the
	// handshakes that did not end with the server's refusal; for Storm,
	// the handshakes the server refused (CONNECTION_REFUSED: busy).
	Errors int64
	// Failed counts, for Storm, the handshakes that failed otherwise
	// (timed out on a machine too busy to finish them).
	Failed int64
}

// Run floods cfg.Target until cfg.Duration is over or ctx is done, and
// waits until the handshakes it started are over.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Target == nil || !cfg.Target.IP.IsLoopback() {
		return Result{}, fmt.Errorf("flood: target %v is not a loopback address: only loopback is flooded", cfg.Target)
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 1000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Second
	}
	cfg.Sources = max(cfg.Sources, 1)
	dials := cfg.Kind == HalfOpen || cfg.Kind == BadCert || cfg.Kind == Storm
	if dials && cfg.TLS == nil {
		return Result{}, fmt.Errorf("flood: %s needs a TLS client config", cfg.Kind)
	}
	from := cfg.From.To4()
	if from == nil {
		from = net.IPv4(127, 0, 0, 2).To4()
	}
	if from[0] != 127 {
		return Result{}, fmt.Errorf("flood: source %v is not a loopback IPv4 address", cfg.From)
	}
	socks := make([]*net.UDPConn, cfg.Sources)
	for i := range socks {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, from[1], from[2], from[3]+byte(i%250))})
		if err != nil {
			closeAll(socks)
			return Result{}, fmt.Errorf("flood: bind a source socket: %w", err)
		}
		socks[i] = c
	}
	defer closeAll(socks)
	f := &flooder{cfg: cfg, socks: socks}
	if dials {
		f.trs = make([]*quic.Transport, len(socks))
		for i, c := range socks {
			var pc net.PacketConn = c
			if cfg.Kind == HalfOpen {
				pc = deafConn{c}
			}
			f.trs[i] = &quic.Transport{Conn: pc}
		}
		defer func() {
			for _, tr := range f.trs {
				tr.Close()
			}
		}()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	// Paced in 10 ms ticks, the sends of each tick at once.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	perTick := float64(cfg.Rate) / 100
	var owed float64
	buf := make([]byte, 65507)
	for {
		select {
		case <-ctx.Done():
			f.wg.Wait()
			return Result{Sent: f.sent.Load(), Errors: f.errs.Load(), Failed: f.failed.Load()}, nil
		case <-tick.C:
			if ctx.Err() != nil { // both ready: the deadline wins
				continue
			}
		}
		owed += perTick
		for ; owed >= 1 && (cfg.Count == 0 || f.sent.Load() < int64(cfg.Count)); owed-- {
			f.one(buf)
		}
	}
}

// flooder is one Run's state.
type flooder struct {
	cfg    Config
	socks  []*net.UDPConn
	trs    []*quic.Transport
	next   int
	wg     sync.WaitGroup
	sent   atomic.Int64
	errs   atomic.Int64
	failed atomic.Int64
}

// one sends one datagram or starts one handshake, from the next source.
func (f *flooder) one(buf []byte) {
	i := f.next % len(f.socks)
	f.next++
	f.sent.Add(1)
	switch f.cfg.Kind {
	case Random:
		n := 1 + mrand.IntN(1500)
		if mrand.IntN(16) == 0 {
			n = 1 + mrand.IntN(len(buf))
		}
		rand.Read(buf[:n])
		f.send(i, buf[:n])
	case Bogus:
		f.send(i, bogus(buf, f.next))
	case HalfOpen, BadCert, Storm:
		f.dial(i)
	}
}

func (f *flooder) send(i int, b []byte) {
	if _, err := f.socks[i].WriteToUDP(b, f.cfg.Target); err != nil {
		f.errs.Add(1)
	}
}

// dial starts a handshake from source i and judges how it ended (see the
// kinds).
func (f *flooder) dial(i int) {
	timeout := 5 * time.Second
	switch f.cfg.Kind {
	case HalfOpen:
		timeout = 2 * time.Second
	case Storm:
		// The server's limit: its handshake timeout is twice its idle
		// timeout of 5 s.
		timeout = 10 * time.Second
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		conn, err := f.trs[i].Dial(ctx, f.cfg.Target, f.cfg.TLS, &quic.Config{HandshakeIdleTimeout: timeout})
		if err == nil {
			// Refused after the handshake, or not: wait for the
			// server's close (Storm: a second).
			wait := ctx
			if f.cfg.Kind == Storm {
				var stop context.CancelFunc
				wait, stop = context.WithTimeout(ctx, time.Second)
				defer stop()
			}
			select {
			case <-conn.Context().Done():
				err = context.Cause(conn.Context())
			case <-wait.Done():
			}
			conn.CloseWithError(0, "")
		}
		var te *quic.TransportError
		var ae *quic.ApplicationError
		refused := errors.As(err, &te) && te.Remote || errors.As(err, &ae) && ae.Remote
		switch f.cfg.Kind {
		case BadCert:
			if !refused {
				f.errs.Add(1)
			}
		case Storm:
			switch {
			case errors.As(err, &te) && te.Remote && te.ErrorCode == quic.ConnectionRefused:
				f.errs.Add(1)
			case err != nil:
				f.failed.Add(1)
			}
		}
	}()
}

// The QUIC version 1 and one no server speaks (a reserved, greasing one).
const (
	quicV1     = 0x00000001
	quicGrease = 0x1a2a3a4a
)

// bogus writes the n-th bogus packet into buf and returns it.
func bogus(buf []byte, n int) []byte {
	cid := func(b []byte, l int) []byte {
		b = append(b, byte(l))
		var c [20]byte
		rand.Read(c[:l])
		return append(b, c[:l]...)
	}
	long := func(first byte, version uint32, size int) []byte {
		b := append(buf[:0], first)
		b = binary.BigEndian.AppendUint32(b, version)
		b = cid(b, 8)
		b = cid(b, 8)
		if first&0x30 == 0 { // Initial: an empty token
			b = append(b, 0)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(0x4000|(size-len(b)-2)))
		for len(b) < size {
			b = append(b, byte(mrand.Uint32()))
		}
		return b
	}
	switch n % 9 {
	case 0: // another version, large enough for Version Negotiation
		return long(0xc0, quicGrease, 1200)
	case 1: // another version, too small for an answer
		return long(0xc0, quicGrease, 60)
	case 2: // a Handshake packet outside any connection
		return long(0xe0, quicV1, 300)
	case 3: // an Initial under the 1200 bytes QUIC requires
		return long(0xc0, quicV1, 600)
	case 4: // a Version Negotiation packet sent to the server
		return long(0x80, 0, 100)
	case 5: // a short header for no connection, too small for a stateless reset
		b := append(buf[:0], 0x40)
		b = append(b, make([]byte, 17)...)
		rand.Read(b[1:])
		return b
	case 6: // a short header too short for a connection ID
		return append(buf[:0], 0x41, 1, 2, 3)
	case 7: // a long header whose connection ID length lies
		b := append(buf[:0], 0xc0, 0, 0, 0, 1, 200)
		return append(b, make([]byte, 30)...)
	}
	// An Initial of the right size with a garbage payload: the server
	// takes it for a new handshake, which never finishes.
	return long(0xc0, quicV1, 1200)
}

// deafConn sends but never hands a datagram to quic-go: the half-open
// handshakes never see the server's answer (or a Retry). It offers only
// net.PacketConn's methods, so quic-go uses it as a plain socket.
type deafConn struct{ c *net.UDPConn }

func (d deafConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if _, _, err := d.c.ReadFrom(b); err != nil {
			return 0, nil, err
		}
	}
}
func (d deafConn) WriteTo(b []byte, a net.Addr) (int, error) { return d.c.WriteTo(b, a) }
func (d deafConn) Close() error                              { return d.c.Close() }
func (d deafConn) LocalAddr() net.Addr                       { return d.c.LocalAddr() }
func (d deafConn) SetDeadline(t time.Time) error             { return d.c.SetDeadline(t) }
func (d deafConn) SetReadDeadline(t time.Time) error         { return d.c.SetReadDeadline(t) }
func (d deafConn) SetWriteDeadline(t time.Time) error        { return d.c.SetWriteDeadline(t) }

func closeAll(socks []*net.UDPConn) {
	for _, c := range socks {
		if c != nil {
			c.Close()
		}
	}
}
