package main

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestMetricsFlagUsage: a malformed --metrics (or QUICTUN_METRICS) is a
// usage error that names the flag, found before the certificates are
// even loaded (the files named here do not exist), so before anything on
// the system is touched.
func TestMetricsFlagUsage(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "QUICTUN_") {
			t.Setenv(k, v)
			unsetenv(t, k)
		}
	}
	missing := []string{"--cert", "missing.crt", "--key", "missing.key", "--ca", "missing-ca.crt"}
	listen := func(extra ...string) []string {
		return append(append([]string{"listen", "--ip", "10.77.0.1/24"}, missing...), extra...)
	}
	connect := func(extra ...string) []string {
		return append(append([]string{"connect", "--server", "vpn.example.com:4433"}, missing...), extra...)
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"listen without port", nil, listen("--metrics", "127.0.0.1"), `--metrics "127.0.0.1": want host:port`},
		{"listen port not a number", nil, listen("--metrics", "127.0.0.1:metrics"), "--metrics"},
		{"listen port too large", nil, listen("--metrics", "127.0.0.1:94770"), "--metrics"},
		{"listen URL", nil, listen("--metrics", "http://127.0.0.1:9477/metrics"), "--metrics"},
		{"connect without port", nil, connect("--metrics", "localhost"), "--metrics"},
		{"QUICTUN_METRICS bad", map[string]string{"QUICTUN_METRICS": "9477"}, connect(), "--metrics"},
	} {
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
