package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EConfigReload runs a TUN server and two clients from --config
// files in etc/ whose certificates are named relative to the file
// (../pki/…), not to the working directory. It checks that a bad file
// exits 2 before any device exists; that SIGHUP applies a new log level at
// once (the server, started at warn, logs the next client's "client
// connected" once the file says info), names a change that needs a
// restart in one line and leaves it (the device MTU); that a bad file on
// SIGHUP changes nothing, says why with file, line and key, and leaves the
// tunnel up; and that a client reloads too.
func TestE2EConfigReload(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "cfg")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	l.Cert("ca", "--dir", "pki", "--name", "E2E config CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24")
	if err := os.Mkdir(l.Path("etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(l.Path("etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Line 8 is log-level, line 9 the extra line.
	server := func(level, extra string) string {
		return fmt.Sprintf(`listen = "10.0.0.1:4433"
cert = "../pki/server.crt"
key = "../pki/server.key"
ca = "../pki/ca.crt"
mode = "tun"
dev = "qt0"
ip = ["10.77.0.1/24"]
log-level = %q
%s
`, level, extra)
	}
	client := func(name, level string) string {
		return fmt.Sprintf(`server = "10.0.0.1:4433"
cert = "../pki/%[1]s.crt"
key = "../pki/%[1]s.key"
ca = "../pki/ca.crt"
dev = "qt0"
low-latency = false
log-level = %[2]q
`, name, level)
	}
	hup := func(p *nsProc) {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	// waitLine waits for a line of p's stderr that contains all of want.
	waitLine := func(p *nsProc, timeout time.Duration, want ...string) string {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			for _, line := range strings.Split(p.Stderr(), "\n") {
				ok := true
				for _, w := range want {
					ok = ok && strings.Contains(line, w)
				}
				if ok {
					return line
				}
			}
			if p.Exited() || time.Now().After(deadline) {
				t.Fatalf("%s logged no line with %q:\n%s", p.name, want, p.Dump())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	write("bad.toml", server("info", "pakcet-size = 1452"))
	code, stderr, exited := l.RunQuictun(srvNS, "bad", 10*time.Second, "listen", "--config", "etc/bad.toml")
	if !exited || code != 2 || !strings.Contains(stderr, l.Path("etc", "bad.toml")+":9: pakcet-size: unknown key (did you mean packet-size?)") {
		t.Fatalf("listen with a bad file: exit %d (exited: %v), want 2 and the file, line and key:\n%s", code, exited, stderr)
	}
	if l.LinkExists(srvNS, "qt0") {
		t.Fatal("a device exists after a bad configuration file")
	}

	write("server.toml", server("warn", "mtu = 1400"))
	write("c1.toml", client("c1", "info"))
	write("c2.toml", client("c2", "info"))
	// No --log-level on the command line: it would override the file.
	srv := l.Start(srvNS, "server", l.Quictun(), "listen", "--config", "etc/server.toml")
	c1 := l.Start(c1NS, "client1", l.Quictun(), "connect", "--config", "etc/c1.toml")
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	if mtu := l.LinkMTU(srvNS, "qt0"); mtu != 1400 {
		t.Fatalf("server qt0 MTU %d, want 1400 from the file", mtu)
	}
	if strings.Contains(srv.Stderr(), "client connected") {
		t.Fatalf("the server logged at info although its file says warn:\n%s", srv.Dump())
	}

	t.Run("reload applies the log level", func(t *testing.T) {
		write("server.toml", server("info", "mtu = 1300"))
		hup(srv)
		waitLine(srv, 5*time.Second, `msg="configuration reloaded"`, "log-level=info")
		waitLine(srv, 5*time.Second, "some changes were left as they were", "need_restart=mtu")
		c2 := l.Start(c2NS, "client2", l.Quictun(), "connect", "--config", "etc/c2.toml")
		l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)
		waitLine(srv, 5*time.Second, `msg="client connected"`, "10.77.0.12")
		if mtu := l.LinkMTU(srvNS, "qt0"); mtu != 1400 {
			t.Errorf("server qt0 MTU %d after the reload, want 1400 as before (a restart applies 1300)", mtu)
		}
		c2.Stop(syscall.SIGTERM, nsStopTimeout)
	})

	t.Run("bad file on reload", func(t *testing.T) {
		write("server.toml", server("debug", "packet-size = \"big\""))
		hup(srv)
		waitLine(srv, 5*time.Second, `msg="reload failed" via=SIGHUP`,
			l.Path("etc", "server.toml")+":9: packet-size: want an integer")
		time.Sleep(200 * time.Millisecond)
		if srv.Exited() {
			t.Fatalf("the server exited on a bad file:\n%s", srv.Dump())
		}
		l.With(t).PingAll(c1NS, "10.77.0.1", 3)
		if strings.Contains(srv.Stderr(), "level=DEBUG") {
			t.Errorf("the bad file's log level was applied:\n%s", srv.Dump())
		}
	})

	t.Run("quictun reload", func(t *testing.T) {
		// The control socket's reload is the one SIGHUP runs: the file is
		// read again, and a bad one makes the command fail with its line.
		write("server.toml", server("debug", "mtu = 1400"))
		if out, code := e2eCtl(l, srvNS, "reload", "--dev", "qt0"); code != 0 || !strings.Contains(out, "reloaded") {
			t.Fatalf("quictun reload: exit %d\n%s", code, out)
		}
		waitLine(srv, 5*time.Second, `msg="configuration reloaded"`, "log-level=debug")
		write("server.toml", server("debug", "mtu = \"big\""))
		out, code := e2eCtl(l, srvNS, "reload", "--dev", "qt0")
		if code != 1 || !strings.Contains(out, l.Path("etc", "server.toml")+":9: mtu: want an integer") {
			t.Errorf("quictun reload of a bad file: exit %d, want 1 and the file's line\n%s", code, out)
		}
		waitLine(srv, 5*time.Second, `msg="reload failed" via="control socket"`)
		l.With(t).PingAll(c1NS, "10.77.0.1", 3)
	})

	t.Run("client reload", func(t *testing.T) {
		write("c1.toml", client("c1", "debug")+"packet-size = 1400\n")
		hup(c1)
		waitLine(c1, 5*time.Second, `msg="configuration reloaded"`, "log-level=debug")
		waitLine(c1, 5*time.Second, "need_restart=packet-size")
		l.With(t).PingAll(c1NS, "10.77.0.1", 3)
	})
}
