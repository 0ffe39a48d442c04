package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// TestTAPPolicyFlags: --pin-macs follows --isolate-clients unless it is
// set, from the command line, the environment or the file.
func TestTAPPolicyFlags(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		file, env string
		iso, pin  bool
	}{
		{"neither", nil, "", "", false, false},
		{"isolate pins", []string{"--isolate-clients"}, "", "", true, true},
		{"isolate without pinning", []string{"--isolate-clients", "--pin-macs=false"}, "", "", true, false},
		{"pinning alone", []string{"--pin-macs"}, "", "", false, true},
		{"isolate from the file", nil, "isolate-clients = true\n", "", true, true},
		{"both from the file", nil, "isolate-clients = true\npin-macs = false\n", "", true, false},
		{"pinning off from the environment", nil, "isolate-clients = true\n", "false", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("QUICTUN_PIN_MACS", tt.env)
			}
			path := writeFile(t, dir, "server.toml", reloadPKI+"mode = \"tap\"\n"+tt.file)
			var iso, pin bool
			err := runWithAction(t, func(c *cli.Context) error {
				iso, pin = tapPolicy(c)
				return nil
			}, append([]string{"listen", "--config", path}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if iso != tt.iso || pin != tt.pin {
				t.Errorf("isolate-clients %v, pin-macs %v; want %v, %v", iso, pin, tt.iso, tt.pin)
			}
		})
	}
}

// TestReloadTAPPolicy: isolate-clients and pin-macs change live on a
// reload, pin-macs following isolate-clients where neither the file nor a
// flag sets it; a refusal puts back what the reload had applied.
func TestReloadTAPPolicy(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	const base = reloadPKI + "mode = \"tap\"\nlog-level = \"warn\"\n"
	start := func(t *testing.T, file string, args ...string) (func() error, *recordingServer, *bytes.Buffer) {
		t.Helper()
		path := writeFile(t, dir, "server.toml", base+file)
		srv := &recordingServer{}
		var reload func() error
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		err := runWithAction(t, func(c *cli.Context) error {
			reload = reloader(c, log, srv, nil)
			return nil
		}, append([]string{"listen", "--config", path}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return reload, srv, &logs
	}
	step := func(t *testing.T, reload func() error, srv *recordingServer, file string, want [2]bool) {
		t.Helper()
		writeFile(t, dir, "server.toml", base+file)
		srv.tap = nil
		if err := reload(); err != nil {
			t.Fatalf("reload with %q: %v", file, err)
		}
		if len(srv.tap) != 1 || srv.tap[0] != want {
			t.Errorf("reload with %q: SetTAPPolicy calls %v, want one with %v", file, srv.tap, want)
		}
	}

	t.Run("from the file", func(t *testing.T) {
		reload, srv, logs := start(t, "isolate-clients = true\n")
		step(t, reload, srv, "", [2]bool{false, false})
		wantLine(t, logs, `msg="configuration reloaded"`)
		if strings.Contains(logs.String(), "need_restart") {
			t.Errorf("isolate-clients said to need a restart:\n%s", logs)
		}
		step(t, reload, srv, "isolate-clients = true\n", [2]bool{true, true})
		step(t, reload, srv, "isolate-clients = true\npin-macs = false\n", [2]bool{true, false})
		step(t, reload, srv, "pin-macs = true\n", [2]bool{false, true})

		srv.refuseTAP = true
		writeFile(t, dir, "server.toml", base+"route = [\"192.168.1.0/24\"]\nisolate-clients = true\npin-macs = true\n")
		srv.routes, srv.tap = nil, nil
		err := reload()
		if err == nil || !strings.Contains(err.Error(), ":8: isolate-clients: applies to TAP mode only") {
			t.Errorf("refused reload: %v, want the refusal with file, line 8 and key", err)
		}
		if len(srv.routes) != 2 || len(srv.routes[1]) != 0 {
			t.Errorf("SetRoutes calls %v, want the new routes, then none again", srv.routes)
		}
		srv.refuseTAP = false
		step(t, reload, srv, "isolate-clients = true\n", [2]bool{true, true}) // still off before
	})

	t.Run("flag fixed", func(t *testing.T) {
		reload, srv, logs := start(t, "", "--pin-macs=false")
		step(t, reload, srv, "isolate-clients = true\n", [2]bool{true, false})
		writeFile(t, dir, "server.toml", base+"isolate-clients = true\npin-macs = true\n")
		srv.tap = nil
		if err := reload(); err != nil {
			t.Fatal(err)
		}
		if len(srv.tap) != 0 {
			t.Errorf("pin-macs set by a flag was changed by the file: %v", srv.tap)
		}
		wantLine(t, logs, `overridden_by_flag_or_env=pin-macs`)
	})

	t.Run("without a live server", func(t *testing.T) {
		path := writeFile(t, dir, "other.toml", base)
		var reload func() error
		var logs bytes.Buffer
		err := runWithAction(t, func(c *cli.Context) error {
			reload = reloader(c, slog.New(slog.NewTextHandler(&logs, nil)), nil, nil)
			return nil
		}, "listen", "--config", path)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "other.toml", base+"isolate-clients = true\n")
		if err := reload(); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(strings.Split(logs.String(), "\n"), func(l string) bool { return strings.Contains(l, "need_restart=isolate-clients") }) {
			t.Errorf("no need_restart=isolate-clients without a live server:\n%s", logs.String())
		}
	})
}
