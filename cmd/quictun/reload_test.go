package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/metrics"
)

// recordingServer is a liveServer that records what it is given and
// refuses what refuse says.
type recordingServer struct {
	routes, pools [][]netip.Prefix
	refusePools   bool
	rules         rulesRecord // rules_test.go
	tap           [][2]bool   // isolate-clients, pin-macs
	refuseTAP     bool
}

func (s *recordingServer) SetTAPPolicy(isolateClients, pinMACs bool) error {
	if s.refuseTAP {
		return errors.New("applies to TAP mode only")
	}
	s.tap = append(s.tap, [2]bool{isolateClients, pinMACs})
	return nil
}

func (s *recordingServer) SetRoutes(p []netip.Prefix) error {
	s.routes = append(s.routes, p)
	return nil
}

func (s *recordingServer) SetPools(p []netip.Prefix) error {
	if s.refusePools {
		return errors.New("pool overlaps an address in use")
	}
	s.pools = append(s.pools, p)
	return nil
}

// startReloader runs `quictun global… listen --config path extra…`
// in-process up to the command's Action and returns the reload function
// the command would give runContext, logging into the returned buffer.
func startReloader(t *testing.T, global []string, path string, server liveServer, extra ...string) (func() error, *bytes.Buffer) {
	t.Helper()
	var reload func() error
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	args := append(append(global, "listen", "--config", path), extra...)
	err := runWithAction(t, func(c *cli.Context) error {
		reload = reloader(c, log, server, nil)
		return nil
	}, args...)
	if err != nil {
		t.Fatalf("quictun %s: %v", strings.Join(args, " "), err)
	}
	return reload, &logs
}

const reloadPKI = "cert = \"/c.crt\"\nkey = \"/k.key\"\nca = \"/ca.crt\"\nip = [\"10.77.0.1/24\"]\n"

func TestReloadWithoutConfig(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	var reload func() error
	err := runWithAction(t, func(c *cli.Context) error {
		reload = reloader(c, slog.Default(), nil, nil)
		return nil
	}, "listen", "--cert", "/c", "--key", "/k", "--ca", "/ca")
	if err != nil {
		t.Fatal(err)
	}
	if err := reload(); !errors.Is(err, errNoConfigFile) {
		t.Errorf("reload of a command started without --config: %v; SIGHUP would not say that there is nothing to reload", err)
	}
}

// TestReload: a reload applies a changed log level at once (and a removed
// one goes back to the default), names each change that needs a restart
// or that a flag overrides in one line, and again at the next reload
// while it is still not in effect.
func TestReload(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"warn\"\nmtu = 1400\n")
	reload, logs := startReloader(t, nil, path, nil)
	if got := logLevel.Level(); got != slog.LevelWarn {
		t.Fatalf("level %v at start, want WARN from the file", got)
	}

	writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"debug\"\nmtu = 1400\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if got := logLevel.Level(); got != slog.LevelDebug {
		t.Errorf("level %v after reload, want DEBUG", got)
	}
	wantLine(t, logs, `msg="configuration reloaded" file=`+path+` log-level=debug`)

	logs.Reset()
	writeFile(t, dir, "server.toml", reloadPKI+"# now without log-level\nmtu = 1300\ndev = \"qt9\"\nroute = [\"192.168.1.0/24\"]\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if got := logLevel.Level(); got != slog.LevelInfo {
		t.Errorf("level %v after log-level was removed, want INFO (the default)", got)
	}
	wantLine(t, logs, `msg="configuration reloaded; some changes were left as they were" file=`+path+` need_restart=dev,mtu,route`)

	logs.Reset()
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	wantLine(t, logs, `need_restart=dev,mtu,route`)

	logs.Reset()
	writeFile(t, dir, "server.toml", reloadPKI+"mtu = 1400\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	wantLine(t, logs, `msg="configuration reloaded; nothing changed"`)
}

// TestReloadOverridden: a key a flag or QUICTUN_* variable set keeps its
// value; the reload says so.
func TestReloadOverridden(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"info\"\nkeepalive = \"10s\"\n")
	t.Setenv("QUICTUN_KEEPALIVE", "5s")
	reload, logs := startReloader(t, []string{"--log-level", "error"}, path, nil)
	writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"debug\"\nkeepalive = \"20s\"\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if got := logLevel.Level(); got != slog.LevelError {
		t.Errorf("level %v, want ERROR from --log-level", got)
	}
	wantLine(t, logs, `overridden_by_flag_or_env=keepalive,log-level`)
	if strings.Contains(logs.String(), "need_restart") {
		t.Errorf("an overridden key is said to need a restart:\n%s", logs)
	}
}

// TestReloadBadFile: a file that no longer loads changes nothing, and the
// error says where and why.
func TestReloadBadFile(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"warn\"\nroute = [\"192.168.1.0/24\"]\n")
	srv := &recordingServer{}
	reload, logs := startReloader(t, nil, path, srv)
	for _, tt := range []struct{ name, content, want string }{
		{"bad value", reloadPKI + "log-level = \"debug\"\nroute = [\"192.168.2.1/24\"]\n", path + `:6: route: "192.168.2.1/24" has host bits set`},
		{"wrong type", reloadPKI + "log-level = \"debug\"\npacket-size = \"big\"\n", path + `:6: packet-size: want an integer`},
		{"unknown key", reloadPKI + "log-level = \"debug\"\nrouets = []\n", path + `:6: rouets: unknown key (did you mean route?)`},
		{"syntax", reloadPKI + "log-level = \"debug\n", path + `:5: TOML syntax`},
		{"missing", "", path + `: cannot read the configuration file: no such file or directory`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content == "" {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, dir, "server.toml", tt.content)
			}
			err := reload()
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("reload: %v, want an error starting with %q", err, tt.want)
			}
			if got := logLevel.Level(); got != slog.LevelWarn {
				t.Errorf("level %v after a failed reload, want WARN as before", got)
			}
			if len(srv.routes)+len(srv.pools) > 0 {
				t.Errorf("the server was changed: routes %v pools %v", srv.routes, srv.pools)
			}
			if logs.Len() > 0 {
				t.Errorf("a failed reload logged a change:\n%s", logs)
			}
		})
	}
}

// TestReloadLiveServer: with a server that takes routes and pools live, a
// change to them is applied, not left for a restart; when the server
// refuses one, what was applied before it is put back and nothing else
// changes.
func TestReloadLiveServer(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	const base = reloadPKI + "log-level = \"warn\"\n"
	path := writeFile(t, dir, "server.toml", base+"route = [\"192.168.1.0/24\"]\n")
	srv := &recordingServer{}
	reload, logs := startReloader(t, nil, path, srv)

	writeFile(t, dir, "server.toml", base+"route = [\"192.168.1.0/24\", \"192.168.2.0/24\"]\npool = [\"10.77.0.128/25\"]\nmtu = 1300\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if want := [][]netip.Prefix{{pfx("192.168.1.0/24"), pfx("192.168.2.0/24")}}; !prefixListsEqual(srv.routes, want) {
		t.Errorf("SetRoutes calls %v, want %v", srv.routes, want)
	}
	if want := [][]netip.Prefix{{pfx("10.77.0.128/25")}}; !prefixListsEqual(srv.pools, want) {
		t.Errorf("SetPools calls %v, want %v", srv.pools, want)
	}
	wantLine(t, logs, `msg="configuration reloaded" file=`+path+` pool=10.77.0.128/25 route=192.168.1.0/24,192.168.2.0/24`)
	wantLine(t, logs, `need_restart=mtu`)

	srv.routes, srv.pools, srv.refusePools = nil, nil, true
	logs.Reset()
	writeFile(t, dir, "server.toml", reloadPKI+"log-level = \"debug\"\nroute = []\npool = [\"10.77.0.64/26\"]\n")
	err := reload()
	if err == nil || !strings.HasPrefix(err.Error(), path+":7: pool: pool overlaps") {
		t.Errorf("reload: %v, want the server's refusal with file, line and key", err)
	}
	if want := [][]netip.Prefix{{}, {pfx("192.168.1.0/24"), pfx("192.168.2.0/24")}}; !prefixListsEqual(srv.routes, want) {
		t.Errorf("SetRoutes calls %v, want the new routes, then the old ones back: %v", srv.routes, want)
	}
	if got := logLevel.Level(); got != slog.LevelWarn {
		t.Errorf("level %v after a refused reload, want WARN as before", got)
	}

	// Without a live server, the same change needs a restart.
	path2 := writeFile(t, dir, "other.toml", base+"route = [\"192.168.1.0/24\"]\n")
	reload2, logs2 := startReloader(t, nil, path2, nil)
	writeFile(t, dir, "other.toml", base+"route = [\"192.168.3.0/24\"]\n")
	if err := reload2(); err != nil {
		t.Fatal(err)
	}
	wantLine(t, logs2, `need_restart=route`)
}

// wantLine fails the test unless a line of logs contains want.
func wantLine(t *testing.T, logs *bytes.Buffer, want string) {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, want) {
			return
		}
	}
	t.Errorf("no log line contains %q:\n%s", want, logs)
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func prefixListsEqual(a, b [][]netip.Prefix) bool {
	return slices.EqualFunc(a, b, func(x, y []netip.Prefix) bool { return slices.Equal(x, y) })
}

// freeTCPAddr returns a loopback address with a port nothing listens on
// (it was free a moment ago).
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// scrapeOK reports whether /metrics answers at addr.
func scrapeOK(addr string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + addr + metrics.Path)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// TestReloadMetrics: the metrics key of a --config file is live: a reload
// moves the endpoint to a new address, stops it when the key goes, and an
// address that cannot be bound changes nothing and says where it came
// from.
func TestReloadMetrics(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	a1, a2 := freeTCPAddr(t), freeTCPAddr(t)
	path := writeFile(t, dir, "server.toml", reloadPKI+"metrics = \""+a1+"\"\n")
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	mx := newLiveMetrics(log)
	defer mx.Close()
	var reload func() error
	err := runWithAction(t, func(c *cli.Context) error {
		reload = reloader(c, log, nil, mx)
		addr, err := metricsAddr(c)
		if err != nil {
			return err
		}
		return mx.start(addr, prometheus.NewGauge(prometheus.GaugeOpts{Name: "quictun_test_gauge", Help: "a test gauge"}))
	}, "listen", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if !scrapeOK(a1) {
		t.Fatalf("no metrics at %s (from the file) at start", a1)
	}

	writeFile(t, dir, "server.toml", reloadPKI+"metrics = \""+a2+"\"\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if !scrapeOK(a2) || scrapeOK(a1) {
		t.Errorf("after moving to %s: served there %v, still at %s %v", a2, scrapeOK(a2), a1, scrapeOK(a1))
	}
	wantLine(t, &logs, `msg="configuration reloaded" file=`+path+` metrics=`+a2)

	// An address in use: the reload fails, the endpoint stays where it was.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	writeFile(t, dir, "server.toml", reloadPKI+"\nmetrics = \""+busy.Addr().String()+"\"\n")
	err = reload()
	if err == nil || !strings.Contains(err.Error(), path+":6: metrics:") {
		t.Errorf("reload to an address in use: %v, want an error naming %s:6: metrics", err, path)
	}
	if !scrapeOK(a2) {
		t.Errorf("a failed reload moved the endpoint away from %s", a2)
	}

	writeFile(t, dir, "server.toml", reloadPKI)
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if scrapeOK(a2) {
		t.Errorf("metrics still served at %s after the key was removed", a2)
	}
	wantLine(t, &logs, `msg="metrics endpoint stopped" was=`+a2)
}
