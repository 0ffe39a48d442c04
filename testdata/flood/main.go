// Command flood measures a quictun server under floods, on loopback only,
// for docs/OPERATIONS.md ("Under attack"); measure.sh drives it.
//
//	flood serve -listen ADDR -pki DIR -status FILE
//	    run a TUN-mode server (quictun.Server) whose device is an
//	    in-memory pipe that echoes every IPv4 packet back to its sender,
//	    and write its counters to FILE (JSON) every 250 ms.
//	flood good -server ADDR -pki DIR [-for D] [-interval D]
//	    run a client (client1) and send a packet through the tunnel every
//	    interval for D; print "sent=N received=M lost=L reconnects=R".
//	flood send -kind KIND -to ADDR -pki DIR [-rate N] [-for D] [-sources N]
//	    flood ADDR with KIND (random, bogus, halfopen, badcert, storm; see
//	    internal/flood) and print "sent=N errors=E failed=F".
//
// The server runs with an in-memory device rather than a TUN device so
// that no root is needed: the floods hit the QUIC port, which is the same.
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/flood"
	"github.com/quictun/quictun/quictun"
	"github.com/quictun/quictun/third_party/quic-go"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: flood serve|good|send [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "good":
		err = good(os.Args[2:])
	case "send":
		err = send(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (serve, good, send)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
}

func clientTLS(pki, name string) (*tls.Config, error) {
	cert, err := qcrypto.LoadKeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"))
	if err != nil {
		return nil, err
	}
	ca, err := qcrypto.LoadCAPool(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return nil, err
	}
	return qcrypto.ClientTLSConfig(cert, ca, ""), nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// status is what serve writes to its status file.
type status struct {
	Goroutines int               `json:"goroutines"`
	HeapAlloc  uint64            `json:"heap_alloc"`
	Sessions   int               `json:"sessions"`
	InFlight   int               `json:"handshakes_in_flight"`
	Handshakes map[string]uint64 `json:"handshakes"`
	Stray      map[string]uint64 `json:"stray"`
	DropsTotal uint64            `json:"drops_total"`
	Drops      map[string]uint64 `json:"drops"`
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "UDP address to listen on (loopback)")
	pki := fs.String("pki", "testdata/pki", "directory with ca.crt, server.crt, server.key")
	statusFile := fs.String("status", "", "file to write the counters to")
	fs.Parse(args)
	cert, err := qcrypto.LoadKeyPair(filepath.Join(*pki, "server.crt"), filepath.Join(*pki, "server.key"))
	if err != nil {
		return err
	}
	ca, err := qcrypto.LoadCAPool(filepath.Join(*pki, "ca.crt"))
	if err != nil {
		return err
	}
	// A stateless reset key, as quictun listen has: short-header packets
	// for no connection are then answered with resets.
	var srk quic.StatelessResetKey
	rand.Read(srk[:])
	srv, err := quictun.NewServer(quictun.ServerConfig{Mode: device.TUN, TLS: qcrypto.ServerTLSConfig(cert, ca),
		Listen: *listen, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), StatelessResetKey: &srk,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}})
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	dev, peer := device.NewPipe(device.TUN, "flood", 1024)
	go echo(peer)
	if *statusFile != "" {
		go writeStatus(ctx, srv, *statusFile)
	}
	fmt.Println("ready", srv.Addr())
	err = srv.Serve(ctx, dev)
	dev.Close()
	srv.Wait()
	return err
}

// echo sends every IPv4 packet read from the device back with its
// addresses swapped.
func echo(peer device.Device) {
	bufs, sizes := [][]byte{make([]byte, 65536)}, []int{0}
	for {
		n, err := peer.Read(bufs, sizes, 0)
		if err != nil {
			return
		}
		if n != 1 || sizes[0] < 20 || bufs[0][0]>>4 != 4 {
			continue
		}
		b := bufs[0][:sizes[0]]
		var a [4]byte
		copy(a[:], b[12:16])
		copy(b[12:16], b[16:20])
		copy(b[16:20], a[:])
		peer.Write([][]byte{b}, 0)
	}
}

func writeStatus(ctx context.Context, srv *quictun.Server, file string) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := srv.Status()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		out := status{Goroutines: runtime.NumGoroutine(), HeapAlloc: ms.HeapAlloc, Sessions: st.Sessions,
			InFlight: st.HandshakesInFlight, Handshakes: map[string]uint64{}, Stray: map[string]uint64{},
			Drops: map[string]uint64{}}
		for _, o := range quictun.HandshakeOutcomes() {
			if n := st.Handshakes.Get(o); n > 0 {
				out.Handshakes[o.String()] = n
			}
		}
		for _, r := range quictun.StrayReasons() {
			if n := st.Stray.Get(r); n > 0 {
				out.Stray[r.String()] = n
			}
		}
		for _, r := range quictun.DropReasons() {
			if n := st.Drops.Get(r) + st.Total.Drops.Get(r); n > 0 {
				out.Drops[r.String()] = n
				out.DropsTotal += n
			}
		}
		b, _ := json.Marshal(out)
		tmp := file + ".tmp"
		if os.WriteFile(tmp, b, 0o644) == nil {
			os.Rename(tmp, file)
		}
	}
}

func good(args []string) error {
	fs := flag.NewFlagSet("good", flag.ExitOnError)
	server := fs.String("server", "", "the server's UDP address")
	pki := fs.String("pki", "testdata/pki", "directory with ca.crt, client1.crt, client1.key")
	dur := fs.Duration("for", 10*time.Second, "how long to send")
	interval := fs.Duration("interval", 5*time.Millisecond, "time between packets")
	fs.Parse(args)
	tlsc, err := clientTLS(*pki, "client1")
	if err != nil {
		return err
	}
	up := make(chan device.Device, 1)
	cl, err := quictun.NewClient(quictun.ClientConfig{Server: *server, TLS: tlsc,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SetupDevice: func(a quictun.Assignment) (device.Device, error) {
			dev, peer := device.NewPipe(a.Mode, "good", 1024)
			up <- peer
			return dev, nil
		}})
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- cl.Run(ctx) }()
	var peer device.Device
	select {
	case peer = <-up:
	case err := <-runErr:
		return fmt.Errorf("client: %v", err)
	case <-time.After(10 * time.Second):
		return fmt.Errorf("no tunnel after 10 s")
	}
	count := int(*dur / *interval)
	got := make(map[uint32]bool, count)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		bufs, sizes := [][]byte{make([]byte, 65536)}, []int{0}
		for {
			n, err := peer.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			if n == 1 && sizes[0] == 32 {
				got[binary.BigEndian.Uint32(bufs[0][28:])] = true
			}
		}
	}()
	t := time.NewTicker(*interval)
	for i := range count {
		<-t.C
		peer.Write([][]byte{udp4(uint32(i))}, 0)
	}
	t.Stop()
	time.Sleep(time.Second) // the last echoes
	st := cl.Status()
	cancel()
	<-runErr
	peer.Close()
	<-readDone
	fmt.Printf("sent=%d received=%d lost=%d reconnects=%d\n", count, len(got), count-len(got), st.Reconnects)
	return nil
}

// udp4 builds the good client's packet i: IPv4/UDP 10.77.0.11 → 10.77.0.1
// carrying i (32 bytes).
func udp4(i uint32) []byte {
	b := make([]byte, 32)
	b[0], b[8], b[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(b[2:], 32)
	copy(b[12:], []byte{10, 77, 0, 11})
	copy(b[16:], []byte{10, 77, 0, 1})
	var sum uint32
	for j := 0; j < 20; j += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[j:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[20:], 1000)
	binary.BigEndian.PutUint16(b[22:], 2000)
	binary.BigEndian.PutUint16(b[24:], 12)
	binary.BigEndian.PutUint32(b[28:], i)
	return b
}

func send(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	kind := fs.String("kind", "random", "random, bogus, halfopen, badcert or storm")
	to := fs.String("to", "", "the server's UDP address (loopback)")
	pki := fs.String("pki", "testdata/pki", "directory with ca.crt and the clients' certificates")
	rate := fs.Int("rate", 1000, "datagrams or handshakes a second")
	dur := fs.Duration("for", 5*time.Second, "how long to send")
	sources := fs.Int("sources", 1, "source addresses (127.0.0.2 on)")
	fs.Parse(args)
	k, err := flood.ParseKind(*kind)
	if err != nil {
		return err
	}
	addr, err := net.ResolveUDPAddr("udp", *to)
	if err != nil {
		return err
	}
	cfg := flood.Config{Kind: k, Target: addr, Rate: *rate, Duration: *dur, Sources: *sources}
	switch k {
	case flood.HalfOpen, flood.Storm:
		cfg.TLS, err = clientTLS(*pki, "client1")
	case flood.BadCert:
		cfg.TLS, err = clientTLS(*pki, "other-client")
	}
	if err != nil {
		return err
	}
	ctx, cancel := signalContext()
	defer cancel()
	res, err := flood.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("sent=%d errors=%d failed=%d\n", res.Sent, res.Errors, res.Failed)
	return nil
}
