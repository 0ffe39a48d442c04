package main

import (
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ESystem checks how quictun meets the system: without privileges it
// says it needs root and leaves nothing behind; a device that existed
// before it started is used and kept; a server whose certificate does not
// name the dialled host is refused with a message that says so.
func TestE2ESystem(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "setpriv")
	l := nsNewLab(t, "sys")
	star := l.Star(1)
	srvNS, cNS := star.Server, star.Clients[0]
	l.Cert("ca", "--dir", "pki", "--name", "E2E System CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "site", "--ip", "10.77.0.21/24", "--route", "192.168.50.0/24")

	t.Run("routes", func(t *testing.T) {
		l := l.With(t)
		srv := l.StartQuictun(srvNS, "server-routes", e2eListenArgs("--dev", "qt2", "--ip", "10.77.0.1/24", "--route", "192.168.60.0/24")...)
		if !srv.WaitOutput("listening", 10*time.Second) {
			t.Fatalf("server did not start:\n%s", srv.Dump())
		}
		c := l.StartQuictun(cNS, "client-routes", e2eConnectArgs("site", "--dev", "qt2")...)
		l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)
		// The server pushed 192.168.60.0/24: the client routes it via its device.
		if out := l.Must(cNS, "ip", "route", "show", "192.168.60.0/24"); !strings.Contains(out, "dev qt2") {
			t.Errorf("client has no route for the pushed 192.168.60.0/24 via qt2: %q", out)
		}
		// The client's certificate routes 192.168.50.0/24 behind it: the
		// server routes it via its device while the client is connected.
		if out := l.Must(srvNS, "ip", "route", "show", "192.168.50.0/24"); !strings.Contains(out, "dev qt2") {
			t.Errorf("server has no route for the client's 192.168.50.0/24 via qt2: %q", out)
		}
		c.Stop(syscall.SIGTERM, nsStopTimeout)
		if !srv.WaitOutput("client disconnected", 5*time.Second) {
			t.Fatalf("server did not see the client leave:\n%s", srv.Dump())
		}
		if out := l.Must(srvNS, "ip", "route", "show", "192.168.50.0/24"); strings.TrimSpace(out) != "" {
			t.Errorf("server kept the route of a client that left: %q", out)
		}
		srv.Stop(syscall.SIGTERM, nsStopTimeout)
	})

	t.Run("not root", func(t *testing.T) {
		l := l.With(t)
		// Copies nobody may read (the key mode 0600 and nobody's, as
		// listen wants it), so that the device is what fails, not the
		// key file.
		for _, f := range []string{"server.crt", "server.key", "ca.crt"} {
			b, err := os.ReadFile(l.Path("pki", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(l.Path("pub-"+f), b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(l.Path("pub-"+f), 65534, 65534); err != nil { // nobody:nogroup
				t.Fatal(err)
			}
		}
		if err := os.Chmod(l.Path(), 0o755); err != nil {
			t.Fatal(err)
		}
		links := l.Must(srvNS, "ip", "-br", "link")
		p := l.Start(srvNS, "unprivileged", "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
			"--inh-caps=-all", "--bounding-set=-all", "--",
			l.Quictun(), "listen", "--listen", "127.0.0.1:4440",
			"--cert", "pub-server.crt", "--key", "pub-server.key", "--ca", "pub-ca.crt", "--ip", "10.77.0.1/24", "--dev", "qtnr0")
		sysExpectFailure(t, p, regexp.MustCompile(`(?i)root|CAP_NET_ADMIN`))
		if now := l.Must(srvNS, "ip", "-br", "link"); now != links {
			t.Errorf("links changed by a failed start:\nbefore:\n%s\nafter:\n%s", links, now)
		}
	})

	t.Run("no /dev/net/tun", func(t *testing.T) {
		l := l.With(t)
		// A private mount namespace where /dev/net is an empty tmpfs.
		p := l.Start(srvNS, "no-tun", "unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs none /dev/net && exec "$0" "$@"`, l.Quictun(), "listen", "--listen", "127.0.0.1:4441",
			"--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt", "--ip", "10.77.0.1/24", "--dev", "qtnt0")
		sysExpectFailure(t, p, regexp.MustCompile(`/dev/net/tun.*modprobe tun`))
	})

	t.Run("existing device kept", func(t *testing.T) {
		l := l.With(t)
		l.Must(srvNS, "ip", "tuntap", "add", "dev", "qtpre0", "mode", "tun")
		srv := l.StartQuictun(srvNS, "server-pre", e2eListenArgs("--dev", "qtpre0", "--ip", "10.77.0.1/24")...)
		if !srv.WaitOutput("listening", 10*time.Second) {
			t.Fatalf("server did not start:\n%s", srv.Dump())
		}
		c := l.StartQuictun(cNS, "client-pre", e2eConnectArgs("c1", "--dev", "qt0")...)
		l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)
		if code, exited := srv.Stop(syscall.SIGTERM, 10*time.Second); !exited || code != 0 {
			t.Errorf("server exit %d (exited %v), want 0 after SIGTERM", code, exited)
		}
		out := l.Must(srvNS, "ip", "-br", "addr", "show", "dev", "qtpre0")
		if strings.Contains(out, "10.77.0.1") {
			t.Errorf("the server left its address on the pre-existing device: %s", out)
		}
		if !l.LinkExists(srvNS, "qtpre0") {
			t.Errorf("the pre-existing device qtpre0 was removed when the server stopped")
		}
		c.Stop(syscall.SIGTERM, nsStopTimeout)
		l.Must(srvNS, "ip", "tuntap", "del", "dev", "qtpre0", "mode", "tun")
	})

	t.Run("server certificate without the dialled name", func(t *testing.T) {
		l := l.With(t)
		srv := l.StartQuictun(srvNS, "server-name", e2eListenArgs("--dev", "qt1", "--ip", "10.77.0.1/24")...)
		if !srv.WaitOutput("listening", 10*time.Second) {
			t.Fatalf("server did not start:\n%s", srv.Dump())
		}
		code, stderr, exited := l.RunQuictun(cNS, "wrong-name", e2eRejectTimeout,
			e2eConnectArgs("c1", "--dev", "qt1", "--server-name", "vpn.example.com")...)
		line := e2eErrorLine(stderr)
		switch {
		case !exited:
			t.Errorf("client still running after %v; want a non-zero exit", e2eRejectTimeout)
		case code == 0:
			t.Errorf("client exited 0")
		case !regexp.MustCompile(`(?i)not valid for|server-name`).MatchString(line):
			t.Errorf("error line %q does not say the certificate does not name the host\n%s", line, stderr)
		default:
			t.Logf("exit %d: %s", code, line)
		}
		srv.Stop(syscall.SIGTERM, nsStopTimeout)
	})
}

// sysExpectFailure waits for p to exit non-zero within 10 s with a
// `quictun: …` line that matches want.
func sysExpectFailure(t *testing.T, p *nsProc, want *regexp.Regexp) {
	t.Helper()
	code, exited := p.Wait(10 * time.Second)
	line := e2eErrorLine(p.Stderr())
	switch {
	case !exited:
		p.Stop(syscall.SIGTERM, nsStopTimeout)
		t.Fatalf("still running after 10 s; want an error:\n%s", p.Dump())
	case code == 0:
		t.Errorf("exited 0; want an error matching %v", want)
	case !want.MatchString(line):
		t.Errorf("error line %q does not match %v\n%s", line, want, p.Dump())
	default:
		t.Logf("exit %d: %s", code, line)
	}
}
