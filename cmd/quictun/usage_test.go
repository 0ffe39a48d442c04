package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestUsageErrorsExit2: every usage error of listen and connect — a flag
// missing, a value that does not parse from the command line or the
// environment, an unknown flag, command or argument, a file that cannot be
// loaded — exits with status 2, and all of them are found before anything
// on the system is touched: every case names certificate files that do not
// exist, so none can get as far as opening a device, even as root.
func TestUsageErrorsExit2(t *testing.T) {
	// listen and connect change the runtime before they check their flags.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "QUICTUN_") {
			t.Setenv(k, v)
			unsetenv(t, k)
		}
	}
	// Real certificates, so that the checks after loading them (the core's
	// Validate, turned into flag advice) are reached too; "missing" names
	// files that do not exist.
	dir := t.TempDir()
	mustRunCert(t, "ca", "--dir", dir)
	mustRunCert(t, "issue", "--dir", dir, "--name", "x", "--server", "--host", "vpn.example.com")
	mustRunCert(t, "issue", "--dir", dir, "--name", "y", "--ip", "10.77.0.11/24")
	pki := func(name string) []string {
		return []string{"--cert", filepath.Join(dir, name+".crt"), "--key", filepath.Join(dir, name+".key"), "--ca", filepath.Join(dir, "ca.crt")}
	}
	tls, missing := pki("x"), pki("missing")
	listen := func(extra ...string) []string { return append(append([]string{"listen"}, tls...), extra...) }
	connect := func(extra ...string) []string {
		return append(append([]string{"connect", "--server", "vpn.example.com:4433"}, pki("y")...), extra...)
	}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"listen without flags", nil, []string{"listen"}, "listen needs --cert (or QUICTUN_CERT), --key (or QUICTUN_KEY), --ca (or QUICTUN_CA)"},
		{"listen without --cert", nil, []string{"listen", "--key", "k", "--ca", "c"}, "needs --cert (or QUICTUN_CERT)"},
		{"listen with QUICTUN_CERT empty", map[string]string{"QUICTUN_CERT": ""}, []string{"listen", "--key", "k", "--ca", "c"}, "needs --cert"},
		{"connect without --server", nil, append([]string{"connect"}, missing...), "connect needs --server (or QUICTUN_SERVER)"},
		{"connect without --key and --ca", nil, []string{"connect", "--server", "h:1", "--cert", "c"}, "needs --key (or QUICTUN_KEY), --ca"},
		{"QUICTUN_KEEPALIVE without unit", map[string]string{"QUICTUN_KEEPALIVE": "10"}, listen(), `"10" as duration value from environment variable "QUICTUN_KEEPALIVE"`},
		{"--keepalive without unit", nil, listen("--keepalive", "10"), "keepalive"},
		{"QUICTUN_IDLE_TIMEOUT not a duration", map[string]string{"QUICTUN_IDLE_TIMEOUT": "soon"}, connect(), "QUICTUN_IDLE_TIMEOUT"},
		{"QUICTUN_PACKET_SIZE not a number", map[string]string{"QUICTUN_PACKET_SIZE": "big"}, listen(), "QUICTUN_PACKET_SIZE"},
		{"QUICTUN_LOW_LATENCY not a bool", map[string]string{"QUICTUN_LOW_LATENCY": "maybe"}, connect(), "QUICTUN_LOW_LATENCY"},
		{"QUICTUN_LOG_LEVEL unknown", map[string]string{"QUICTUN_LOG_LEVEL": "loud"}, listen(), "--log-level"},
		{"unknown listen flag", nil, listen("--bogus"), "-bogus"},
		{"unknown connect flag", nil, connect("--ip", "10.77.0.11/24"), "-ip"},
		{"unknown global flag", nil, append([]string{"--bogus"}, listen()...), "-bogus"},
		{"listen argument", nil, listen("extra"), "listen takes no arguments"},
		{"connect argument", nil, connect("vpn.example.com"), "connect takes no arguments"},
		{"unknown command", nil, []string{"lisen"}, `unknown command "lisen"`},
		{"unknown cert command", nil, []string{"cert", "make"}, `unknown command "make"`},
		{"bad --mode", nil, listen("--mode", "tan"), "--mode"},
		{"bad --ip", nil, listen("--ip", "10.77.0.1"), "--ip"},
		{"tun listen without --ip", nil, listen(), "--ip: a TUN server needs its own tunnel address"},
		{"--pool outside --ip", nil, listen("--ip", "10.77.0.1/24", "--pool", "10.99.0.0/24"), "--pool: 10.99.0.0/24 is outside"},
		{"--mtu too small", nil, listen("--ip", "10.77.0.1/24", "--mtu", "500"), "--mtu"},
		{"connect --packet-size too large", nil, connect("--packet-size", "10000"), "--packet-size"},
		{"--bridge in tun mode", nil, listen("--ip", "10.77.0.1/24", "--bridge", "br0"), "--bridge"},
		{"--packet-size too small", nil, listen("--ip", "10.77.0.1/24", "--packet-size", "1000"), "--packet-size"},
		{"--procs negative", nil, connect("--procs", "-1"), "--procs"},
		{"listen certificate missing", nil, append(append([]string{"listen"}, missing...), "--ip", "10.77.0.1/24"), "missing.crt"},
		{"connect --server without port", nil, append([]string{"connect", "--server", "vpn.example.com"}, pki("y")...), "--server"},
		{"connect --max-retries negative", nil, connect("--max-retries", "-1"), "--max-retries"},
		{"connect certificate missing", nil, append([]string{"connect", "--server", "vpn.example.com:4433"}, missing...), "missing.crt"},
		{"--user unknown", nil, listen("--ip", "10.77.0.1/24", "--user", "quictun-no-such-user"), `--user "quictun-no-such-user": no such user`},
		{"QUICTUN_USER unknown", map[string]string{"QUICTUN_USER": "quictun-no-such-user"}, connect(), `--user "quictun-no-such-user": no such user`},
		{"--group unknown", nil, connect("--group", "quictun-no-such-group"), `--group "quictun-no-such-group": no such group`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			app := newApp()
			var out bytes.Buffer
			app.Writer, app.ErrWriter = &out, &out
			err := app.Run(append([]string{"quictun"}, tt.args...))
			if err == nil {
				t.Fatalf("quictun %s: no error\n%s", strings.Join(tt.args, " "), out.String())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("error %q: exit status %d, want 2", err, code)
			}
		})
	}
}
