package metrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/quictun"
)

// The tests run a real quictun.Server and Clients over loopback, with
// in-memory devices (device.NewPipe) and the certificates of testdata/pki.

const pki = "../testdata/pki"

// loadCert returns the key pair and leaf of pki/name.
func loadCert(t *testing.T, name string) (tls.Certificate, *x509.Certificate) {
	t.Helper()
	cert, err := qcrypto.LoadKeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert, cert.Leaf
}

func caPool(t *testing.T, name string) *x509.CertPool {
	t.Helper()
	pool, err := qcrypto.LoadCAPool(filepath.Join(pki, name+".crt"))
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

// pump drains one end of a pipe into a channel, so that the other end's
// writes never block and tests can wait with a bound.
type pump struct {
	dev device.Device
	ch  chan []byte
}

func newPump(dev device.Device) *pump {
	p := &pump{dev: dev, ch: make(chan []byte, 4096)}
	go func() {
		bufs := [][]byte{make([]byte, 70000)}
		sizes := []int{0}
		for {
			n, err := dev.Read(bufs, sizes, 0)
			if err != nil {
				close(p.ch)
				return
			}
			if n == 1 {
				p.ch <- bytes.Clone(bufs[0][:sizes[0]])
			}
		}
	}()
	return p
}

// waitFor returns how many of n packets carrying payload arrive within
// timeout.
func (p *pump) waitFor(n int, payload []byte, timeout time.Duration) int {
	deadline := time.After(timeout)
	got := 0
	for got < n {
		select {
		case b, ok := <-p.ch:
			if !ok {
				return got
			}
			if bytes.Contains(b, payload) {
				got++
			}
		case <-deadline:
			return got
		}
	}
	return got
}

func (p *pump) write(t *testing.T, pkt []byte) {
	t.Helper()
	if _, err := p.dev.Write([][]byte{pkt}, 0); err != nil {
		t.Fatal(err)
	}
}

// udp4 builds an IPv4/UDP packet of exactly size bytes (at least 28 +
// len(payload)) whose payload starts with payload.
func udp4(src, dst string, payload []byte, size int) []byte {
	b := make([]byte, size)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(size))
	b[6] = 0x40 // DF
	b[8] = 64
	b[9] = 17
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	binary.BigEndian.PutUint16(b[20:], 1000)
	binary.BigEndian.PutUint16(b[22:], 2000)
	binary.BigEndian.PutUint16(b[24:], uint16(size-20))
	copy(b[28:], payload)
	return b
}

type testServer struct {
	srv  *quictun.Server
	peer *pump
	stop func() // stops the server and waits for it; safe to call twice
}

var tunNetworks = []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24"), netip.MustParsePrefix("fd77::1/64")}

// startServer runs a TUN server on listen (e.g. 127.0.0.1:0) until the test ends.
func startServer(t *testing.T, listen string) *testServer {
	t.Helper()
	return startServerWith(t, quictun.ServerConfig{Listen: listen})
}

// startServerWith runs a TUN server with cfg, its mode, TLS, networks and
// logger filled in.
func startServerWith(t *testing.T, cfg quictun.ServerConfig) *testServer {
	t.Helper()
	cert, _ := loadCert(t, "server")
	cfg.Mode, cfg.TLS, cfg.Networks = device.TUN, qcrypto.ServerTLSConfig(cert, caPool(t, "ca")), tunNetworks
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := quictun.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dev, peer := device.NewPipe(device.TUN, "srv", 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, dev) }()
	stopped := false
	s := &testServer{srv: srv, peer: newPump(peer)}
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		dev.Close()
		srv.Wait()
	}
	t.Cleanup(s.stop)
	return s
}

type testClient struct {
	cl   *quictun.Client
	peer *pump
	err  chan error // Run's result
	stop func()     // stops the client and waits for it; safe to call twice
}

// startClient runs a client with pki/name's certificate, trusting pki/ca,
// dialling s. With wantUp it waits until s lists the session.
func startClient(t *testing.T, s *testServer, name string, cfg quictun.ClientConfig, wantUp bool) *testClient {
	t.Helper()
	cert, _ := loadCert(t, name)
	tc := &testClient{err: make(chan error, 1)}
	devs := make(chan device.Device, 1)
	var dev device.Device
	cfg.Server = s.srv.Addr()
	if cfg.TLS == nil {
		cfg.TLS = qcrypto.ClientTLSConfig(cert, caPool(t, "ca"), "")
	}
	cfg.Logger = testLogger(t)
	cfg.SetupDevice = func(a quictun.Assignment) (device.Device, error) {
		d, peer := device.NewPipe(a.Mode, name, 256)
		dev = d
		devs <- peer
		return d, nil
	}
	cl, err := quictun.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	go func() { tc.err <- cl.Run(ctx) }()
	stopped := false
	tc.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-tc.err:
			tc.err <- err
		case <-time.After(10 * time.Second):
			t.Errorf("client %s: Run did not return", name)
		}
		if dev != nil {
			dev.Close()
		}
		cl.Wait()
	}
	t.Cleanup(tc.stop)
	if !wantUp {
		return tc
	}
	select {
	case peer := <-devs:
		tc.peer = newPump(peer)
	case err := <-tc.err:
		t.Fatalf("client %s: %v", name, err)
	case <-time.After(10 * time.Second):
		t.Fatalf("client %s: no tunnel after 10 s", name)
	}
	waitUntil(t, 5*time.Second, "server lists "+name, func() bool {
		for _, si := range s.srv.Sessions() {
			if si.Name == name {
				return true
			}
		}
		return false
	})
	return tc
}

// testLogger returns a logger whose lines go to the test's log, shown
// when it fails or with -v.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter writes to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitUntil polls cond every 10 ms until it holds, failing the test after
// timeout.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// scrape gathers c through a pedantic registry (which checks that what
// Collect sends matches Describe) and returns every sample by
// `name{label="value",…}`, labels sorted; a histogram gives name_count
// and name_sum.
func scrape(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"] = float64(m.Histogram.GetSampleCount())
				out[mf.GetName()+"_sum"] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// want checks that each sample in w has its value in got.
func want(t *testing.T, got map[string]float64, w map[string]float64) {
	t.Helper()
	keys := make([]string, 0, len(w))
	for k := range w {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s missing", k)
		case v != w[k]:
			t.Errorf("%s = %v, want %v", k, v, w[k])
		}
	}
}
