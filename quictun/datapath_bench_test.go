package quictun

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/packet"
	"github.com/quictun/quictun/quictun/internal/wire"
)

// discardDevice swallows writes; reads block until Close.
type discardDevice struct {
	kind   device.Kind
	closed chan struct{}
}

func newDiscard(kind device.Kind) *discardDevice {
	return &discardDevice{kind: kind, closed: make(chan struct{})}
}

func (d *discardDevice) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	<-d.closed
	return 0, device.ErrClosed
}
func (d *discardDevice) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (d *discardDevice) Name() string                                 { return "discard" }
func (d *discardDevice) Kind() device.Kind                            { return d.kind }
func (d *discardDevice) BatchSize() int                               { return 1 }
func (d *discardDevice) Close() error                                 { close(d.closed); return nil }

// benchHub builds a server's forwarding state without sockets: one ready
// session owning 10.77.0.11 and a routes table like a real hub's.
func benchHub(b testing.TB, mode device.Kind) (*Server, *session) {
	b.Helper()
	s := newHub(ServerConfig{Mode: mode, MTU: TUNMTU(DefaultPacketSize), PacketSize: DefaultPacketSize, QueueLen: 64}.withDefaults())
	s.dev = newDiscard(mode)
	ss := newSession(s, nil, qcrypto.Identity{Name: "c1"}, s.log)
	ss.addrs = []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24")}
	ss.ready.Store(true)
	s.sessions["c1"] = ss
	for _, p := range ss.allowed() {
		s.routes.Insert(p, ss)
	}
	for i := 0; i < 200; i++ { // other clients, so lookups are realistic
		other := &session{name: "x"}
		s.routes.Insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 78, byte(i >> 8), byte(i)}), 32), other)
	}
	return s, ss
}

// BenchmarkOutboundTUN measures the hub's outbound path for one packet read
// from the device: parse, route lookup, enqueue on the session (the
// queue is drained in the loop, as the sender would).
func BenchmarkOutboundTUN(b *testing.B) {
	s, ss := benchHub(b, device.TUN)
	pkt := udp4("10.77.0.1", "10.77.0.11", make([]byte, 1372), true)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		pb := s.bufs.get()
		pb.n = copy(pb.data[headroom:], pkt)
		s.forwardTUN(pb)
		s.bufs.put(ss.queue.pop())
	}
}

// BenchmarkInboundTUN measures the hub's inbound path for one datagram:
// header, anti-spoofing check, route lookup, device write.
func BenchmarkInboundTUN(b *testing.B) {
	s, ss := benchHub(b, device.TUN)
	dg := append([]byte{wire.TypePacket}, udp4("10.77.0.11", "10.77.0.1", make([]byte, 1372), true)...)
	reasm := newReassembler(0, 0, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(dg)))
	for b.Loop() {
		pkt, ok := decodeDatagram(dg, reasm, &ss.Counters)
		if !ok {
			b.Fatal("decode failed")
		}
		s.inboundTUN(ss, pkt)
	}
	if ss.Dropped(DropSpoofed) != 0 || ss.Dropped(DropDeviceError) != 0 {
		b.Fatal("packets dropped")
	}
}

// BenchmarkInboundTAP measures the hub's inbound path for one full-size
// frame to a MAC learned on the local port.
func BenchmarkInboundTAP(b *testing.B) {
	s, ss := benchHub(b, device.TAP)
	local := packet.MAC{2, 0, 0, 0, 0, 0xc}
	s.macs.Learn(local, s.local, time.Now())
	frame := make([]byte, 1514)
	copy(frame, local[:])
	copy(frame[6:], []byte{2, 0, 0, 0, 0, 0xa})
	frame[12], frame[13] = 0x08, 0x00
	dg := append([]byte{wire.TypePacket}, frame...)
	reasm := newReassembler(0, 0, nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		pkt, _ := decodeDatagram(dg, reasm, &ss.Counters)
		s.inboundTAP(ss, pkt)
	}
}

// BenchmarkTunnelTUN moves packets from a client's device to the server's
// device through a real QUIC connection over loopback: the whole per-packet
// cost, quic-go's included (it still allocates a few small objects per
// packet, so allocs/op is not 0 here). With rules=100 the server checks
// 100 access rules (benchRules) on the way: the one flow is found in the
// connection-tracking table after its first packet.
func BenchmarkTunnelTUN(b *testing.B) {
	b.Run("rules=0", func(b *testing.B) { benchTunnelTUN(b, nil) })
	b.Run("rules=100", func(b *testing.B) { benchTunnelTUN(b, benchRules(b, 100)) })
}

func benchTunnelTUN(b *testing.B, rules []Rule) {
	srvTLS, cliTLS := serverTLS(b), clientTLS(b, "client1", "ca")
	srv, err := NewServer(ServerConfig{Mode: device.TUN, TLS: srvTLS, Listen: "127.0.0.1:0",
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")},
		Logger:   discardLogger(), Rules: rules})
	if err != nil {
		b.Fatal(err)
	}
	sdev, speer := device.NewPipe(device.TUN, "srv", 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, sdev)
	up := make(chan device.Device, 1)
	cl, err := NewClient(ClientConfig{Server: srv.Addr(), TLS: cliTLS, Logger: discardLogger(),
		SetupDevice: func(a Assignment) (device.Device, error) {
			d, p := device.NewPipe(a.Mode, "cli", 1024)
			up <- p
			return d, nil
		}})
	if err != nil {
		b.Fatal(err)
	}
	go cl.Run(ctx)
	var cpeer device.Device
	select {
	case cpeer = <-up:
	case <-time.After(10 * time.Second):
		b.Fatal("no tunnel")
	}
	time.Sleep(100 * time.Millisecond) // the server marks the session ready
	pkt := udp4("10.77.0.11", "10.77.0.1", make([]byte, 1372), false)
	done := make(chan int)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, []int{0}
		n := 0
		for {
			if _, err := speer.Read(bufs, sizes, 0); err != nil {
				done <- n
				return
			}
			n++
		}
	}()
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	bufs := [][]byte{pkt}
	for b.Loop() {
		if _, err := cpeer.Write(bufs, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	time.Sleep(200 * time.Millisecond)
	cancel()
	speer.Close()
	got := <-done
	b.ReportMetric(float64(got)/float64(b.N), "delivered/op")
	if n := srv.Counters.Dropped(DropPolicy); n != 0 {
		b.Fatalf("%d packets denied", n)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDataPathNoAlloc keeps the hub's per-packet paths free of allocations.
func TestDataPathNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items on purpose)")
	}
	s, ss := benchHub(t, device.TUN)
	out := udp4("10.77.0.1", "10.77.0.11", make([]byte, 1372), true)
	in := append([]byte{wire.TypePacket}, udp4("10.77.0.11", "10.77.0.1", make([]byte, 1372), true)...)
	reasm := newReassembler(0, 0, nil)
	// Warm the pool first.
	s.bufs.put(s.bufs.get())
	if n := testing.AllocsPerRun(1000, func() {
		pb := s.bufs.get()
		pb.n = copy(pb.data[headroom:], out)
		s.forwardTUN(pb)
		s.bufs.put(ss.queue.pop())
	}); n != 0 {
		t.Errorf("outbound: %v allocs per packet, want 0", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		pkt, _ := decodeDatagram(in, reasm, &ss.Counters)
		s.inboundTUN(ss, pkt)
	}); n != 0 {
		t.Errorf("inbound: %v allocs per packet, want 0", n)
	}
	s.log = discardLogger()
	if err := s.SetRules(benchRules(t, 100), Allow); err != nil {
		t.Fatal(err)
	}
	port := uint16(0)
	if n := testing.AllocsPerRun(1000, func() {
		port++ // a new flow each time: the rules are scanned and the flow recorded
		binary.BigEndian.PutUint16(in[1+20:], port)
		pkt, _ := decodeDatagram(in, reasm, &ss.Counters)
		s.inboundTUN(ss, pkt)
		pb := s.bufs.get()
		pb.n = copy(pb.data[headroom:], out)
		s.forwardTUN(pb)
		s.bufs.put(ss.queue.pop())
	}); n != 0 {
		t.Errorf("with 100 rules: %v allocs per packet, want 0", n)
	}
	if ss.Dropped(DropPolicy) != 0 || s.Counters.Dropped(DropPolicy) != 0 {
		t.Errorf("the rules denied packets they do not match")
	}
	// A drop would mean the measured path was not the delivery path.
	if ss.Dropped(DropSpoofed) != 0 || ss.Dropped(DropDeviceError) != 0 {
		t.Errorf("inbound path dropped packets: spoofed %d, device errors %d", ss.Dropped(DropSpoofed), ss.Dropped(DropDeviceError))
	}
}

// benchRules returns n rules of which none matches the benchmarks' packets
// but every one applies to any source, so a packet that is not in the
// connection-tracking table scans them all.
func benchRules(b testing.TB, n int) []Rule {
	var rules []Rule
	for i := 0; i < n; i++ {
		rules = append(rules, mustRule(b, fmt.Sprintf("deny from any to 10.%d.%d.0/24 proto tcp port 22,443", 100+i/256, i%256)))
	}
	return rules
}

// BenchmarkInboundTUNRules is BenchmarkInboundTUN with access rules: one
// flow (as a single TCP stream is), which after its first packet is found
// in the connection-tracking table; and a new flow per packet (every port
// different), which scans the rules and records the flow each time.
func BenchmarkInboundTUNRules(b *testing.B) {
	for _, n := range []int{0, 100} {
		for _, newFlows := range []bool{false, true} {
			name := fmt.Sprintf("rules=%d/flow=same", n)
			if newFlows {
				name = fmt.Sprintf("rules=%d/flow=new", n)
			}
			b.Run(name, func(b *testing.B) {
				s, ss := benchHub(b, device.TUN)
				s.log = discardLogger()
				if err := s.SetRules(benchRules(b, n), Allow); err != nil {
					b.Fatal(err)
				}
				dg := append([]byte{wire.TypePacket}, udp4("10.77.0.11", "10.77.0.1", make([]byte, 1372), true)...)
				reasm := newReassembler(0, 0, nil)
				port := uint16(0)
				b.ReportAllocs()
				b.SetBytes(int64(len(dg)))
				for b.Loop() {
					if newFlows {
						port++
						binary.BigEndian.PutUint16(dg[1+20:], port)
					}
					pkt, _ := decodeDatagram(dg, reasm, &ss.Counters)
					s.inboundTUN(ss, pkt)
				}
				if ss.Dropped(DropPolicy) != 0 {
					b.Fatal("packets denied")
				}
			})
		}
	}
}
