package quictun

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun/internal/wire"
	"github.com/quictun/quictun/state"
	"github.com/quictun/quictun/third_party/quic-go"
)

// The drop reasons TestDropReasons cannot provoke by feeding the hub one
// packet: they need a connection that is gone, a queue nobody drains or a
// device that drops on read.

// quicPair returns both ends of a QUIC connection over loopback with
// DATAGRAM frames on, closed when the test ends.
func quicPair(t *testing.T) (client, server *quic.Conn) {
	t.Helper()
	qc := quicConfig(DefaultPacketSize, time.Second, 10*time.Second, 5*time.Second)
	ln, err := quic.ListenAddr("127.0.0.1:0", serverTLS(t), qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	accepted := make(chan *quic.Conn, 1)
	go func() {
		c, err := ln.Accept(ctx)
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	client, err = quic.DialAddr(ctx, ln.Addr().String(), clientTLS(t, "client1", "ca"), qc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.CloseWithError(0, "") })
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { server.CloseWithError(0, "") })
	return client, server
}

// waitDrop waits (at most 5 s) until c has counted a drop for r.
func waitDrop(t *testing.T, what string, r DropReason, get func() uint64) {
	t.Helper()
	for i := 0; i < 500 && get() == 0; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if get() == 0 {
		t.Fatalf("%s: no %s drop counted", what, r)
	}
}

func TestDropInboundFull(t *testing.T) {
	client, server := quicPair(t)
	var c Counters
	q := newQueue[[]byte](1) // nobody drains it
	go receiveDatagrams(server, nil, q, &c)
	for i := 0; i < 64; i++ {
		if err := client.SendDatagram([]byte{wire.TypePacket, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	waitDrop(t, "a queue nobody drains", DropInboundFull, func() uint64 { return c.Dropped(DropInboundFull) })
	if got := c.Dropped(DropInboundFull); got > 63 {
		t.Errorf("%d inbound_full drops of 64 datagrams, one of which fits the queue", got)
	}
}

func TestDropSendError(t *testing.T) {
	client, _ := quicPair(t)
	client.CloseWithError(0, "gone")
	var c Counters
	var f wire.Fragmenter
	maxDg := MaxDatagramPayload(DefaultPacketSize)
	dg := make([]byte, 1+100)
	if err := sendPacket(client, dg, &maxDg, &f, nil, &c); err == nil {
		t.Fatal("sendPacket on a closed connection: no error")
	}
	if got := c.Dropped(DropSendError); got != 1 {
		t.Errorf("send_error = %d, want 1", got)
	}
	if c.TxPackets.Load() != 0 {
		t.Errorf("a packet that was not sent counted as sent")
	}
}

func TestDropNoConn(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{
		Mode:     device.TUN,
		TLS:      serverTLS(t),
		Conn:     pc,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := device.NewPipe(device.TUN, "srv", 16)
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, dev) }()
	c := startClient(t, &testServer{srv: srv}, "client1", "ca", ClientConfig{}, true)

	// The server goes away for good: the client redials and has no
	// connection to send on meanwhile.
	stop()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	dev.Close() // ends the server's device reader
	srv.Wait()
	pc.Close()
	for i := 0; i < 500 && c.cl.Status().State == StateUp; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if st := c.cl.Status().State; st == StateUp {
		t.Fatalf("client still %s 5 s after the server stopped", st)
	}
	c.peer.write(t, udp4("10.77.0.11", "10.77.0.1", []byte("into the void"), true))
	waitDrop(t, "a packet while reconnecting", DropNoConn, func() uint64 { return c.cl.Status().Session.Drops.Get(DropNoConn) })
}

// droppingPipe is a pipe device that, like the TAP device, drops frames on
// read and reports how many.
type droppingPipe struct {
	device.Device
	dropped atomic.Uint64
}

func (d *droppingPipe) Dropped() uint64 { return d.dropped.Load() }

func TestDropDeviceRead(t *testing.T) {
	srv, err := NewServer(ServerConfig{
		Mode:     device.TUN,
		TLS:      serverTLS(t),
		Listen:   "127.0.0.1:0",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
	})
	if err != nil {
		t.Fatal(err)
	}
	pipe, peer := device.NewPipe(device.TUN, "srv", 16)
	dev := &droppingPipe{Device: pipe}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, dev) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		pipe.Close()
		srv.Wait()
	}()
	// The device dropped 3 frames; the next read tells the server.
	dev.dropped.Add(3)
	p := newPump(peer)
	p.write(t, udp4("10.77.0.1", "10.77.0.99", []byte("wakes the reader"), true))
	waitDrop(t, "a device that dropped on read", DropDeviceRead, func() uint64 { return srv.Status().Drops.Get(DropDeviceRead) })
	if got := srv.Status().Drops.Get(DropDeviceRead); got != 3 {
		t.Errorf("device_read = %d, want the device's 3", got)
	}
}

// exhaustedV6 is a lease store whose IPv6 pools are always exhausted, as
// a second pool that runs out after the first one leased.
type exhaustedV6 struct {
	*state.MemoryLeases
	released []netip.Addr
}

func (l *exhaustedV6) Assign(id string, pool netip.Prefix, taken func(netip.Addr) bool) (netip.Addr, error) {
	if pool.Addr().Is6() {
		return netip.Addr{}, fmt.Errorf("pool %s is exhausted", pool)
	}
	return l.MemoryLeases.Assign(id, pool, taken)
}

func (l *exhaustedV6) Release(id string, a netip.Addr) {
	l.released = append(l.released, a)
	l.MemoryLeases.Release(id, a)
}

// TestRefusedClientReleasesLeases: a client refused after one of its pool
// addresses was leased gives that lease back, so the address does not stay
// bound to a client that never got a tunnel.
func TestRefusedClientReleasesLeases(t *testing.T) {
	leases := &exhaustedV6{MemoryLeases: state.NewMemoryLeases(0)}
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Pools:    []netip.Prefix{netip.MustParsePrefix("10.77.0.128/25"), netip.MustParsePrefix("fd77::80/121")},
		Leases:   leases,
	})
	c := startClient(t, s, "nopool", "ca", ClientConfig{}, false)
	select {
	case err := <-c.err:
		if !strings.Contains(err.Error(), "exhausted") {
			t.Fatalf("Run = %v, want the refusal for the exhausted pool", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client was not refused in 10 s")
	}
	v4, err := leases.MemoryLeases.Assign("nopool", netip.MustParsePrefix("10.77.0.128/25"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases.released) != 1 || leases.released[0] != v4 {
		t.Errorf("released %v after the refusal, want nopool's IPv4 lease %s", leases.released, v4)
	}
}

// TestShuttingDownClientRedials: a client that connects while the server
// is closing is told so as connected ones are (CloseShutdown) and keeps
// redialling; it is not refused for good.
func TestShuttingDownClientRedials(t *testing.T) {
	s := startServer(t, device.TUN, ServerConfig{
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
	})
	s.srv.mu.Lock()
	s.srv.closed = true // as Close sets it, before the sessions are told
	s.srv.mu.Unlock()
	c := startClient(t, s, "client1", "ca", ClientConfig{}, false)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.cl.Status().LastError, "shutting down") {
		select {
		case err := <-c.err:
			t.Fatalf("the client gave up: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no shutdown in the client's status after 10 s: %+v", c.cl.Status())
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-c.err:
		t.Fatalf("the client gave up after the shutdown: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	if st := c.cl.Status().State; st == StateStopped {
		t.Errorf("client %s, want it still dialling", st)
	}
}
