package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// clearQuictunEnv unsets every QUICTUN_* variable for the test, so that
// the caller's environment cannot decide a case.
func clearQuictunEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, v, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "QUICTUN_") {
			t.Setenv(k, v)
			unsetenv(t, k)
		}
	}
}

// keepLogging restores the process-wide logger and level that a test
// running commands in-process changes.
func keepLogging(t *testing.T) {
	t.Helper()
	logger, level := slog.Default(), logLevel.Level()
	t.Cleanup(func() {
		slog.SetDefault(logger)
		logLevel.Set(level)
	})
}

// runWithAction runs `quictun args…` in-process with the Action of listen
// and connect replaced by action: the flags, the environment, the --config
// file and the checks of Before are the real ones, and nothing on the
// system is touched.
func runWithAction(t *testing.T, action cli.ActionFunc, args ...string) error {
	t.Helper()
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Name == "listen" || cmd.Name == "connect" {
			cmd.Action = action
		}
	}
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	return app.Run(append([]string{"quictun"}, args...))
}

// flagValues runs `quictun args…` as runWithAction does and returns the
// value of every flag of the command and the app, as text (lists joined
// with commas), as the command would have seen them.
func flagValues(t *testing.T, args ...string) map[string]string {
	t.Helper()
	var got map[string]string
	err := runWithAction(t, func(c *cli.Context) error {
		got = map[string]string{}
		for _, f := range append(append([]cli.Flag{}, c.App.Flags...), c.Command.Flags...) {
			name := f.Names()[0]
			switch f.(type) {
			case *cli.StringSliceFlag:
				got[name] = strings.Join(c.StringSlice(name), ",")
			case *cli.IntFlag:
				got[name] = fmt.Sprint(c.Int(name))
			case *cli.BoolFlag:
				got[name] = fmt.Sprint(c.Bool(name))
			case *cli.DurationFlag:
				got[name] = c.Duration(name).String()
			default:
				got[name] = c.String(name)
			}
		}
		got["(log level in effect)"] = logLevel.Level().String()
		return nil
	}, args...)
	if err != nil {
		t.Fatalf("quictun %s: %v", strings.Join(args, " "), err)
	}
	return got
}

// writeFile writes content to dir/name and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestConfigPrecedence: a value comes from the file unless a QUICTUN_*
// variable sets it, and from the variable unless a flag does; a setting
// none of them makes keeps the flag's default. One key of each kind (a
// string, a file name, an int, a duration, a bool, a list, a global flag),
// for listen and connect, with the file given by --config or by
// QUICTUN_CONFIG.
func TestConfigPrecedence(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	keys := []struct {
		key, env string
		global   bool
		listen   bool   // only listen has the flag
		def      string // the flag's default
		file     string // TOML value
		fromFile string // the flag's value when the file sets it
		envVal   string
		flagVal  string
	}{
		{"dev", "QUICTUN_DEV", false, false, "", `"qt7"`, "qt7", "qt8", "qt9"},
		{"cert", "QUICTUN_CERT", false, false, "/c.crt", `"pki/f.crt"`, filepath.Join(dir, "etc", "pki", "f.crt"), "/env.crt", "/flag.crt"},
		{"packet-size", "QUICTUN_PACKET_SIZE", false, false, "1452", "1400", "1400", "1350", "1300"},
		{"keepalive", "QUICTUN_KEEPALIVE", false, false, "10s", `"20s"`, "20s", "30s", "40s"},
		{"low-latency", "QUICTUN_LOW_LATENCY", false, false, "true", "false", "false", "true", "false"},
		{"ip", "QUICTUN_IP", false, true, "", `["10.1.0.1/24", "fd01::1/64"]`, "10.1.0.1/24,fd01::1/64", "10.2.0.1/24", "10.3.0.1/24"},
		{"log-level", "QUICTUN_LOG_LEVEL", true, false, "info", `"debug"`, "debug", "warn", "error"},
	}
	// Per command: a file with every key above, and one with only what
	// the command requires, so that the defaults show.
	files := map[string]map[string]string{}
	for cmd, required := range map[string]string{
		"listen":  "key = \"/k.key\"\nca = \"/ca.crt\"\n",
		"connect": "key = \"/k.key\"\nca = \"/ca.crt\"\nserver = \"vpn.example.com:4433\"\n",
	} {
		var keyLines strings.Builder
		for _, k := range keys {
			if !k.listen || cmd == "listen" {
				fmt.Fprintf(&keyLines, "%s = %s\n", k.key, k.file)
			}
		}
		files[cmd] = map[string]string{
			"full": writeFile(t, dir, "etc/"+cmd+"-full.toml", required+keyLines.String()),
			"bare": writeFile(t, dir, "etc/"+cmd+"-bare.toml", required+"cert = \"/c.crt\"\n"),
		}
	}

	scenarios := []struct {
		name      string
		file      string // full or bare
		env, flag bool
		viaEnv    bool // QUICTUN_CONFIG instead of --config
		want      func(def, fromFile, env, flag string) string
	}{
		{"default", "bare", false, false, false, func(d, _, _, _ string) string { return d }},
		{"file", "full", false, false, false, func(_, f, _, _ string) string { return f }},
		{"file by QUICTUN_CONFIG", "full", false, false, true, func(_, f, _, _ string) string { return f }},
		{"env over file", "full", true, false, false, func(_, _, e, _ string) string { return e }},
		{"flag over env and file", "full", true, true, false, func(_, _, _, fl string) string { return fl }},
		{"flag over file", "full", false, true, false, func(_, _, _, fl string) string { return fl }},
	}
	for _, cmd := range []string{"listen", "connect"} {
		for _, sc := range scenarios {
			t.Run(cmd+"/"+sc.name, func(t *testing.T) {
				var global, local []string
				for _, k := range keys {
					if k.listen && cmd != "listen" {
						continue
					}
					if sc.env {
						t.Setenv(k.env, k.envVal)
					}
					if sc.flag {
						arg := "--" + k.key + "=" + k.flagVal
						if k.global {
							global = append(global, arg)
						} else {
							local = append(local, arg)
						}
					}
				}
				file := files[cmd][sc.file]
				if sc.viaEnv {
					t.Setenv("QUICTUN_CONFIG", file)
				} else {
					local = append(local, "--config", file)
				}
				got := flagValues(t, append(append(global, cmd), local...)...)
				for _, k := range keys {
					if k.listen && cmd != "listen" {
						continue
					}
					want := sc.want(k.def, k.fromFile, k.envVal, k.flagVal)
					if got[k.key] != want {
						t.Errorf("%s = %q, want %q", k.key, got[k.key], want)
					}
				}
				level := strings.ToUpper(sc.want("info", "debug", "warn", "error"))
				if got["(log level in effect)"] != level {
					t.Errorf("log level in effect %s, want %s", got["(log level in effect)"], level)
				}
			})
		}
	}
}

// TestConfigBadFile: every kind of bad file is a usage error (exit status
// 2) found before the command runs, whose message names the file, the line
// and the key (where there are a line and a key).
func TestConfigBadFile(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	const pki = "cert = \"c.crt\"\nkey = \"k.key\"\nca = \"ca.crt\"\n"
	tests := []struct {
		name    string
		cmd     string
		file    string // name in dir
		content string
		line    int
		key     string
		want    string
	}{
		{"unknown key", "listen", "a.toml", pki + "pakcet-size = 1452\n", 4, "pakcet-size", "unknown key (did you mean packet-size?)"},
		{"key of the other command", "listen", "a.toml", pki + "server = \"vpn:4433\"\n", 4, "server", "unknown key"},
		{"config in a config", "listen", "a.toml", pki + "config = \"other.toml\"\n", 4, "config", "unknown key"},
		{"string for int", "listen", "a.toml", pki + "packet-size = \"big\"\n", 4, "packet-size", `want an integer, got the string "big"`},
		{"int for string", "connect", "a.toml", pki + "server = 4433\n", 4, "server", "want a string"},
		{"string for bool", "listen", "a.toml", pki + "low-latency = \"no\"\n", 4, "low-latency", "want true or false"},
		{"string for list", "listen", "a.toml", pki + "ip = 10\n", 4, "ip", "want a list of strings"},
		{"duration without unit", "connect", "a.toml", pki + "server = \"h:1\"\nkeepalive = 10\n", 5, "keepalive", "a number without a unit"},
		{"bad duration", "listen", "a.toml", pki + "idle-timeout = \"30\"\n", 4, "idle-timeout", `"30" is not a duration`},
		{"bad CIDR", "listen", "a.toml", pki + "ip = [\"10.77.0.1/24\", \"fd77::1\"]\n", 4, "ip", `"fd77::1": want an address with prefix length`},
		{"pool with host bits", "listen", "a.toml", pki + "ip = [\"10.77.0.1/24\"]\npool = [\"10.77.0.1/25\"]\n", 5, "pool", "did you mean 10.77.0.0/25?"},
		{"bad mode", "listen", "a.toml", pki + "mode = \"tan\"\n", 4, "mode", `unknown device mode "tan"`},
		{"bad log level", "connect", "a.toml", "log-level = \"loud\"\n", 1, "log-level", `"loud": want debug, info, warn or error`},
		{"bad log format", "listen", "a.toml", "log-format = \"xml\"\n", 1, "log-format", "want text or json"},
		{"device name too long", "listen", "a.toml", "dev = \"quictun-device-0\"\n", 1, "dev", "at most 15"},
		{"TOML syntax", "listen", "a.toml", pki + "ip = [\"10.77.0.1/24\"\n", 4, "", "TOML syntax: array is incomplete"},
		{"TOML key twice", "listen", "a.toml", pki + "dev = \"a\"\ndev = \"b\"\n", 5, "dev", "already defined"},
		{"TOML section", "listen", "a.toml", pki + "[tunnel]\nmode = \"tun\"\n", 4, "tunnel", "unknown key"},
		{"TOML table for a string", "listen", "a.toml", pki + "[listen]\nport = 4433\n", 4, "listen", "want a string, got a table"},
		{"YAML unknown key", "listen", "a.yaml", "cert: c.crt\nbogus: 1\n", 2, "bogus", "unknown key"},
		{"YAML wrong type", "listen", "a.yml", "packet-size: big\n", 1, "packet-size", "want an integer"},
		{"YAML syntax", "listen", "a.yaml", "cert: c.crt\n  key: k.key\n", 2, "", "YAML syntax"},
		{"missing file", "listen", "missing.toml", "", 0, "", "cannot read the configuration file: no such file or directory"},
		{"unreadable file (a directory)", "connect", "adir.toml", "", 0, "", "cannot read the configuration file: is a directory"},
	}
	if err := os.Mkdir(filepath.Join(dir, "adir.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 { // root reads files whatever their mode
		locked := writeFile(t, dir, "locked.toml", pki)
		if err := os.Chmod(locked, 0); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name, cmd, file, content string
			line                     int
			key, want                string
		}{"unreadable file (mode 0)", "listen", "locked.toml", "", 0, "", "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if tt.content != "" {
				writeFile(t, dir, tt.file, tt.content)
			}
			ran := false
			err := runWithAction(t, func(*cli.Context) error { ran = true; return nil }, tt.cmd, "--config", path)
			if ran {
				t.Fatal("the command ran despite the bad file")
			}
			if err == nil {
				t.Fatal("no error")
			}
			where := path
			if tt.line > 0 {
				where += fmt.Sprintf(":%d", tt.line)
			}
			if tt.key != "" {
				where += ": " + tt.key
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, where+": ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q, want it to start with %q and contain %q", msg, where+": ", tt.want)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
		})
	}
}

// TestConfigEveryFlag: each flag of listen and connect, and each global
// flag, is a key of the configuration file (but --config itself).
func TestConfigEveryFlag(t *testing.T) {
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.Name != "listen" && cmd.Name != "connect" {
			continue
		}
		schema, _ := configSchema(app.Flags, cmd.Flags)
		for _, f := range append(append([]cli.Flag{}, app.Flags...), cmd.Flags...) {
			name := f.Names()[0]
			if _, ok := schema[name]; ok == notConfigKeys[name] {
				t.Errorf("%s: flag --%s is a config key: %v, want %v", cmd.Name, name, ok, !notConfigKeys[name])
			}
		}
		if !schema["cert"].Path || !schema["key"].Path || !schema["ca"].Path || !schema["key-passphrase-file"].Path || schema["dev"].Path {
			t.Errorf("%s: cert, key, key-passphrase-file and ca must be paths (relative to the file), dev not", cmd.Name)
		}
	}
}

// TestConfigExamples: the example files load, and their values arrive in
// the flags (paths relative to the examples' directory).
func TestConfigExamples(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	in := func(name string) string { return filepath.Join(examples, name) }
	tests := []struct {
		file, cmd string
		want      map[string]string
	}{
		{"server.toml", "listen", map[string]string{
			"cert": in("server.crt"), "key": in("server.key"), "ca": in("ca.crt"),
			"listen": "0.0.0.0:4433", "mode": "tun", "dev": "qt0",
			"ip": "10.77.0.1/24,fd77::1/64", "pool": "10.77.0.128/25,fd77::1:0/112", "route": "192.168.10.0/24",
			"keepalive": "10s", "idle-timeout": "30s", "packet-size": "1452",
			"log-level": "info", "log-format": "text",
			"client-to-client": "deny",
			"rule":             "allow from group:eng to group:ops proto tcp port 22,443,allow from group:ops to any,deny from name:laptop2 to 192.168.10.0/24",
		}},
		{"laptop.toml", "connect", map[string]string{
			"server": "vpn.example.com:4433", "server-name": "",
			"cert": in("laptop1.crt"), "key": in("laptop1.key"), "ca": in("ca.crt"),
			"dev": "qt0", "keepalive": "10s", "idle-timeout": "30s", "packet-size": "1452",
			"low-latency": "false", "max-retries": "0", "log-level": "info",
		}},
		{"tap-site.toml", "connect", map[string]string{
			"server": "hub.example.com:4433",
			"cert":   in("site-b.crt"), "key": in("site-b.key"), "ca": in("ca.crt"),
			"mode": "tap", "dev": "qtap0", "bridge": "br0",
			"keepalive": "10s", "idle-timeout": "30s", "packet-size": "1452", "log-level": "info",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := flagValues(t, tt.cmd, "--config", in(tt.file))
			for k, want := range tt.want {
				if got[k] != want {
					t.Errorf("%s = %q, want %q", k, got[k], want)
				}
			}
			// Every key the example sets is checked above.
			f, err := os.ReadFile(in(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(f), "\n") {
				key, _, ok := strings.Cut(line, "=")
				key = strings.TrimSpace(key)
				if ok && key != "" && !strings.HasPrefix(key, "#") {
					if _, checked := tt.want[key]; !checked {
						t.Errorf("the test does not check key %q of %s", key, tt.file)
					}
				}
			}
		})
	}
}
