package udp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
)

// Conn wraps the tunnel's UDP socket. It embeds *net.UDPConn so that
// quic-go keeps its fast path (GSO, ECN, batched reads), and turns send
// errors that only mean "no route right now" into silent loss: quic-go
// closes a connection on any send error other than EMSGSIZE, and a laptop
// that loses its route for a few seconds must not lose its tunnel.
//
// It also reads for quic-go: quic-go reads a socket that has ReadBatch
// through it, and ours splits what UDP receive offload (GRO) coalesced, so
// that a run of full packets costs one system call instead of one each.
//
// Give it to quic-go as a quic.Transport's Conn.
type Conn struct {
	*net.UDPConn
	batch    batchReader // groReader, or plain recvmmsg without GRO
	gate     *RxGate     // holds reads back while quic-go's datagram queue may be full
	counters *Counters   // TransientSend counts sends swallowed as loss
}

// bufferWarning makes the buffer warning appear once per process.
var bufferWarning sync.Once

// socketBufferSize is what we ask the kernel for, per direction.
const socketBufferSize = 8 << 20

// Listen opens the tunnel's UDP socket on addr ("host:port"; ":0" for a
// client) with large buffers. With no host, or 0.0.0.0 or ::, Go's net
// package opens one IPv6 socket with IPV6_V6ONLY off, which IPv4 peers
// reach too (as ::ffff:a.b.c.d); on a host without IPv6, "" and 0.0.0.0
// fall back to IPv4 while :: fails. The socket and its receive gate count into
// c, which the caller keeps for as long as it reads them: a client that
// opens a socket per connection passes the same c each time.
func Listen(addr string, log *slog.Logger, c *Counters) (*Conn, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %q: %w", addr, err)
	}
	uc, err := net.ListenUDP("udp", ua)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("listen on %s: %w: another process (maybe another quictun) holds the port; stop it or choose another port", addr, syscall.EADDRINUSE)
		}
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, fmt.Errorf("listen on %s: no local interface has that address", addr)
		}
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	setSocketBuffers(uc, log)
	conn := &Conn{UDPConn: uc, gate: newRxGate(c), counters: c}
	pc := ipv4.NewPacketConn(uc) // recvmmsg; works for IPv6 sockets too
	if enableGRO(uc) {
		conn.batch = newGROReader(pc)
	} else {
		conn.batch = pc
		log.Debug("UDP receive offload (UDP_GRO) unavailable: one system call per received packet")
	}
	return conn, nil
}

// Gate returns the socket's receive gate. The goroutine that takes
// datagrams out of quic-go must tell it of each one (RxGate.Done).
func (c *Conn) Gate() *RxGate { return c.gate }

// ReadBatch reads datagrams for quic-go (see batchReader), after the gate
// lets it (see RxGate).
func (c *Conn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	c.gate.wait()
	n, err := c.batch.ReadBatch(ms, flags)
	c.gate.handed(ms[:n])
	return n, err
}

// setSocketBuffers raises the socket buffers and says, once, how to lift
// the kernel's cap when it is too low.
func setSocketBuffers(c *net.UDPConn, log *slog.Logger) {
	if err := forceSocketBuffers(c, socketBufferSize); err != nil {
		// Without CAP_NET_ADMIN the kernel caps us at net.core.[rw]mem_max.
		_ = c.SetReadBuffer(socketBufferSize)
		_ = c.SetWriteBuffer(socketBufferSize)
	}
	rb, wb, err := socketBuffers(c)
	if err != nil {
		return
	}
	if rb < socketBufferSize || wb < socketBufferSize {
		bufferWarning.Do(func() {
			log.Warn("UDP socket buffers capped by the kernel; raise them for throughput",
				"rcvbuf", rb, "sndbuf", wb, "want", socketBufferSize,
				"fix", "sysctl -w net.core.rmem_max=16777216 net.core.wmem_max=16777216")
		})
	}
}

// isTransientSendError reports whether a send error only means the packet
// could not leave right now (no route, address gone, filtered).
func isTransientSendError(err error) bool {
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EPERM) ||
		errors.Is(err, syscall.ENETDOWN) || errors.Is(err, syscall.EHOSTDOWN)
}

// WriteMsgUDP is what quic-go uses to send; transient errors become loss.
func (c *Conn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (n, oobn int, err error) {
	n, oobn, err = c.UDPConn.WriteMsgUDP(b, oob, addr)
	if err != nil && isTransientSendError(err) {
		c.counters.TransientSend.Add(1)
		return len(b), len(oob), nil
	}
	return n, oobn, err
}

// WriteTo is used by quic-go for some packets (e.g. stateless resets).
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.UDPConn.WriteTo(b, addr)
	if err != nil && isTransientSendError(err) {
		c.counters.TransientSend.Add(1)
		return len(b), nil
	}
	return n, err
}
