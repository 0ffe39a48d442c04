package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/control"
	"github.com/quictun/quictun/quictun"
)

// runApp runs the command line in this process and returns its output
// and error.
func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	err := app.Run(append([]string{"quictun"}, args...))
	return out.String(), err
}

// TestWriteStatusServer renders a server's status and checks that a
// person finds each figure where the help says.
func TestWriteStatusServer(t *testing.T) {
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	st := &control.Status{
		Role: "server", PID: 4242, Device: "qt0", Mode: "tun", Time: now,
		Certificate: control.Certificate{Name: "server", Fingerprint: "0123456789abcdef0123456789abcdef", NotAfter: now.AddDate(0, 0, 365)},
		Server: &control.ServerStatus{
			Listen: "0.0.0.0:4433",
			Drops:  map[string]uint64{"no_route": 4},
			Sessions: []control.Session{{
				Name: "laptop1", Fingerprint: "fedcba9876543210fedcba9876543210", PeerNotAfter: now.Add(-72 * time.Hour),
				Addresses: []string{"10.77.0.11/24", "fd77::11/64"}, Routes: []string{"192.168.50.0/24"},
				Remote: "192.0.2.7:51820", RemoteChanges: 2, ConnectedAt: now.Add(-5*time.Minute - 12*time.Second),
				RTTMillis: 0.421, PacketSize: 1452,
				TxPackets: 15102, TxBytes: 22052864, RxPackets: 123456, RxBytes: 1258291,
				Drops: map[string]uint64{"spoofed": 3, "queue_full": 7},
			}},
		},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"server qt0 (tun), listening on 0.0.0.0:4433, pid 4242\n",
		"certificate: server (0123456789abcdef), expires " + now.AddDate(0, 0, 365).Local().Format(time.DateOnly) + " (in 365 days)",
		"  sessions:    1\n",
		"  drops:       no_route 4\n",
		"\nsession laptop1\n",
		"  fingerprint:  fedcba9876543210\n",
		"  addresses:    10.77.0.11/24, fd77::11/64\n",
		"  routes:       192.168.50.0/24\n",
		"  remote:       192.0.2.7:51820 (changed 2 times)\n",
		"  rtt:          0.42 ms\n",
		"  packet size:  1452\n",
		"  sent:         21.03 MiB in 15102 packets\n",
		"  received:     1.20 MiB in 123.5k packets\n",
		"  drops:        queue_full 7, spoofed 3\n",
		"  up:           5m12s (since ",
		"  cert expires: " + now.Add(-72*time.Hour).Local().Format(time.DateOnly) + " (EXPIRED 3 days ago)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the status lacks %q", want)
		}
	}
}

// TestWriteStatusClient renders a reconnecting client: its state, why,
// and the last tunnel's figures.
func TestWriteStatusClient(t *testing.T) {
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	st := &control.Status{
		Role: "client", PID: 7, Device: "qt0", Mode: "tun", Time: now,
		Certificate: control.Certificate{Name: "laptop1", Fingerprint: "fedcba9876543210fedcba9876543210", NotAfter: now.AddDate(0, 0, 30)},
		Client: &control.ClientStatus{
			Server: "vpn.example.com:4433", State: "reconnecting", Since: now.Add(-12 * time.Second),
			LastError: "timeout: no recent network activity",
			Session: &control.Session{
				Name: "laptop1", Fingerprint: "0123456789abcdef0123456789abcdef", PeerNotAfter: now.AddDate(1, 0, 0),
				Addresses: []string{"10.77.0.11/24"}, Remote: "203.0.113.1:4433", ConnectedAt: now.Add(-3 * time.Hour),
				RTTMillis: 12.5, PacketSize: 1452, TxPackets: 1, TxBytes: 84, RxPackets: 1, RxBytes: 84,
			},
		},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"client qt0 (tun), server vpn.example.com:4433, pid 7\n",
		"  state:       reconnecting since " + now.Add(-12*time.Second).Local().Format(time.DateTime) + " (12s)\n",
		"  last error:  timeout: no recent network activity\n",
		"  certificate: laptop1 (fedcba9876543210), expires ",
		"\ntunnel to 203.0.113.1:4433 (the server knows us as laptop1)\n",
		"  server fingerprint:  0123456789abcdef\n",
		"  sent:                84 B in 1 packet\n",
		"  last connected:      " + now.Add(-3*time.Hour).Local().Format(time.DateTime) + " (3h00m ago)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the status lacks %q", want)
		}
	}
	if strings.Contains(out, "drops:") || strings.Contains(out, "changed") {
		t.Errorf("zero drops or address changes shown:\n%s", out)
	}
}

func TestHumanUnits(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{humanBytes(0), "0 B"},
		{humanBytes(1023), "1023 B"},
		{humanBytes(1024), "1.00 KiB"},
		{humanBytes(8 << 20), "8.00 MiB"},
		{humanBytes(3 << 40), "3.00 TiB"},
		{humanBytes(5000 << 40), "5000.00 TiB"},
		{humanCount(99_999), "99999"},
		{humanCount(100_000), "100.0k"},
		{humanCount(2_500_000), "2.5M"},
		{humanCount(7_000_000_000), "7.0G"},
		{humanDuration(-time.Second), "0s"},
		{humanDuration(1500 * time.Millisecond), "2s"},
		{humanDuration(59*time.Minute + 59*time.Second), "59m59s"},
		{humanDuration(25*time.Hour + 30*time.Second), "25h01m"},
		{humanDuration(400 * 24 * time.Hour), "400 days"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestControlCommandsUsage: the control commands' usage errors exit 2,
// before they look for a process.
func TestControlCommandsUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"status argument", []string{"status", "qt0"}, "status takes no arguments"},
		{"status bad --dev", []string{"status", "--dev", "qt/0"}, "--dev"},
		{"kick without a name", []string{"kick"}, "kick needs the NAME"},
		{"kick with a flag after the name", []string{"kick", "laptop1", "--dev", "qt0"}, "flags go before NAME: quictun kick --dev qt0 laptop1"},
		{"kick two names", []string{"kick", "a", "b"}, "kick takes one NAME"},
		{"reload argument", []string{"reload", "now"}, "reload takes no arguments"},
		{"unknown status flag", []string{"status", "--verbose"}, "-verbose"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runApp(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != 2 {
				t.Errorf("quictun %s: error %v (exit %d), want exit 2 with %q\n%s", strings.Join(tc.args, " "), err, exitCode(err), tc.want, out)
			}
		})
	}
}

// TestControlCommandsInProcess serves the control socket of a real (not
// serving) quictun.Server with the handlers listen gives it, and runs
// status, status --json, kick and reload against it as a person would.
func TestControlCommandsInProcess(t *testing.T) {
	dir := t.TempDir()
	mustRunCert(t, "ca", "--dir", dir)
	mustRunCert(t, "issue", "--dir", dir, "--name", "srv", "--server", "--host", "127.0.0.1")
	cert, err := qcrypto.LoadKeyPair(filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := qcrypto.LoadCAPool(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := quictun.NewServer(quictun.ServerConfig{Mode: device.TUN, TLS: qcrypto.ServerTLSConfig(cert, pool),
		Listen: "127.0.0.1:0", Networks: prefixes(t, "10.77.0.1/24")})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dev := fmt.Sprintf("t%d", os.Getpid())
	var logs syncLog
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctl, err := startServerControl(srv, dev, device.TUN, cert.Leaf, oneAtATime(noConfigFile), log)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()

	// A second process for the same device here is refused, with advice.
	if s2, err := startServerControl(srv, dev, device.TUN, cert.Leaf, noConfigFile, log); err == nil {
		s2.Close()
		t.Error("a second control socket for the same device was allowed")
	} else if !strings.Contains(err.Error(), "another --dev") {
		t.Errorf("second control socket: %v, want advice naming --dev", err)
	}

	out, err := runApp(t, "status", "--dev", dev)
	if err != nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	for _, want := range []string{"server " + dev + " (tun), listening on " + srv.Addr(), "certificate: srv (", "sessions:    0"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	out, err = runApp(t, "status", "--dev", dev, "--json")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json is not the schema: %v\n%s", err, out)
	}
	if st.Role != "server" || st.Device != dev || st.Mode != "tun" || st.PID != os.Getpid() || st.Server == nil ||
		st.Server.Listen != srv.Addr() || st.Server.Sessions == nil || len(st.Server.Sessions) != 0 ||
		st.Certificate.Name != "srv" || st.Certificate.Fingerprint != qcrypto.Fingerprint(cert.Leaf) {
		t.Errorf("status --json: %+v", st)
	}
	if !strings.Contains(out, `"sessions": []`) || !strings.Contains(out, `"drops": {}`) {
		t.Errorf("status --json: no sessions and no drops must read [] and {}, not null:\n%s", out)
	}

	out, err = runApp(t, "kick", "--dev", dev, "laptop9")
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), `no client "laptop9" is connected (connected: none)`) {
		t.Errorf("kick of a client not connected: %v (exit %d), want exit 1 saying who is connected\n%s", err, exitCode(err), out)
	}

	out, err = runApp(t, "reload", "--dev", dev)
	if err == nil || exitCode(err) != 1 || !strings.Contains(err.Error(), "reload failed: nothing to reload") {
		t.Errorf("reload without a configuration file: %v (exit %d), want exit 1 saying why\n%s", err, exitCode(err), out)
	}
	if got := logs.String(); !strings.Contains(got, `msg="reload failed" via="control socket"`) {
		t.Errorf("the reload's result was not logged:\n%s", got)
	}

	ctl.Close()
	_, err = runApp(t, "status", "--dev", dev)
	if want := "no quictun running with --dev " + dev + " in this network namespace"; err == nil || !strings.Contains(err.Error(), want) || exitCode(err) != 1 {
		t.Errorf("status with nothing running: %v, want exit 1 with %q", err, want)
	}
}

// syncLog is a bytes.Buffer a logger and a test may share.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestWriteStatusExpiry: the CAs are listed, and a certificate within 30
// days of its expiry is marked with the days left.
func TestWriteStatusExpiry(t *testing.T) {
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	day := func(d time.Time) string { return d.Local().Format(time.DateOnly) }
	st := &control.Status{
		Role: "server", PID: 1, Device: "qt0", Mode: "tun", Time: now,
		Certificate: control.Certificate{Name: "server", Fingerprint: "0123456789abcdef0123", NotAfter: now.Add(5 * time.Hour)},
		CAs:         []control.Certificate{{Name: "Example CA", Fingerprint: "aaaabbbbccccddddeeee", NotAfter: now.AddDate(0, 0, 29)}},
		Server: &control.ServerStatus{Listen: ":4433", Sessions: []control.Session{
			{Name: "soon", PeerNotAfter: now.Add(10*24*time.Hour - time.Minute)},
			{Name: "later", PeerNotAfter: now.AddDate(0, 0, 31)},
		}},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	for _, want := range []string{
		"  certificate: server (0123456789abcdef), expires " + day(now) + " (WARNING: expires in 5h00m)\n",
		"  ca:          Example CA (aaaabbbbccccdddd), expires " + day(now.AddDate(0, 0, 29)) + " (WARNING: expires in 29 days)\n",
		"\nsession soon\n",
		"  cert expires: " + day(now.AddDate(0, 0, 10)) + " (WARNING: expires in 10 days)\n",
		"  cert expires: " + day(now.AddDate(0, 0, 31)) + " (in 31 days)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the status lacks %q", want)
		}
	}
}
