package main

import (
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eRejectTimeout bounds how long a client whose connection cannot work
// (rejected certificate, untrusted server, wrong mode) may take to give up.
const e2eRejectTimeout = 12 * time.Second

// TestE2EAuth checks who may connect and what a client may send: a client
// certificate from another CA is refused, a server certificate from another
// CA is refused, a client that spoofs its source address is not heard, a
// TAP client is told off by a TUN server; and none of it disturbs a good
// client.
func TestE2EAuth(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "nft")
	l := nsNewLab(t, "auth")
	star := l.Star(3)
	srvNS, c1NS, c2NS, xNS := star.Server, star.Clients[0], star.Clients[1], star.Clients[2]

	l.Cert("ca", "--dir", "pki", "--name", "E2E Auth CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24")
	l.Cert("issue", "--dir", "pki", "--name", "c3", "--ip", "10.77.0.13/24")
	l.Cert("ca", "--dir", "pki2", "--name", "E2E Other CA")
	l.Cert("issue", "--dir", "pki2", "--name", "evil", "--ip", "10.77.0.13/24")

	l.StartQuictun(srvNS, "server", e2eListenArgs("--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24")...)
	l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0")...)
	l.StartQuictun(c2NS, "client2", e2eConnectArgs("c2", "--dev", "qt0")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)

	// client2 pings the server all along; at the end every echo but the
	// one in flight when it is stopped must have been answered.
	watch := l.Start(c2NS, "client2-ping", "ping", "-i", "0.2", "-c", "300", "-w", "60", "10.77.0.1")

	// reject runs a client that must give up: non-zero exit in
	// e2eRejectTimeout, with a `quictun: …` line matching want.
	reject := func(t *testing.T, name string, want *regexp.Regexp, args ...string) {
		l := l.With(t)
		start := time.Now()
		code, stderr, exited := l.RunQuictun(xNS, name, e2eRejectTimeout, args...)
		line := e2eErrorLine(stderr)
		switch {
		case !exited:
			t.Errorf("%s still running after %v; want a non-zero exit", name, e2eRejectTimeout)
		case code == 0:
			t.Errorf("%s exited 0; want non-zero", name)
		case line == "":
			t.Errorf("%s exited %d without a `quictun: …` line on stderr", name, code)
		case !want.MatchString(line):
			t.Errorf("%s: error line %q does not match %v", name, line, want)
		default:
			t.Logf("%s exited %d after %v: %s", name, code, time.Since(start).Round(time.Millisecond), line)
		}
		if t.Failed() {
			t.Logf("stderr of %s:\n%s", name, stderr)
		}
		l.PingAll(c1NS, "10.77.0.1", 2)
	}

	t.Run("client cert from another CA", func(t *testing.T) {
		reject(t, "evil", regexp.MustCompile(`(?i)certificate`), "connect", "--server", "10.0.0.1:4433",
			"--cert", "pki2/evil.crt", "--key", "pki2/evil.key", "--ca", "pki/ca.crt", "--dev", "qtx1")
	})

	t.Run("server cert from another CA", func(t *testing.T) {
		reject(t, "distrust", regexp.MustCompile(`(?i)certificate|authority`), "connect", "--server", "10.0.0.1:4433",
			"--cert", "pki/c3.crt", "--key", "pki/c3.key", "--ca", "pki2/ca.crt", "--dev", "qtx2")
	})

	t.Run("tap client to tun server", func(t *testing.T) {
		// \btun\b: the word, not the "tun" in "quictun".
		reject(t, "tapclient", regexp.MustCompile(`(?i)\btun\b`),
			e2eConnectArgs("c3", "--mode", "tap", "--dev", "qtx3")...)
	})

	t.Run("spoofed source", func(t *testing.T) {
		l := l.With(t)
		// Count, at the server, what the tunnel delivers from the spoofed
		// address and from client1's own one, before anything else sees it.
		rules := `table inet e2e {
	counter spoofed {}
	counter genuine {}
	chain pre {
		type filter hook prerouting priority -400; policy accept;
		iifname "qt0" ip saddr 10.77.0.99 counter name spoofed
		iifname "qt0" ip saddr 10.77.0.11 counter name genuine
	}
}`
		if out, err := nsRunInput(srvNS, rules, "nft", "-f", "-"); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
		l.Must(c1NS, "ip", "addr", "add", "10.77.0.99/32", "dev", "qt0")
		out, err := nsPing(c1NS, "-c", "3", "-i", "0.3", "-W", "1", "-I", "10.77.0.99", "10.77.0.1")
		if sent, got, _ := nsPingCounts(out); err == nil || got != 0 || sent != 3 {
			t.Errorf("ping from spoofed 10.77.0.99: want 3 sent, 0 answered:\n%s", out)
		}
		l.PingAll(c1NS, "10.77.0.1", 3)
		spoofed, genuine := e2eNftCounter(l, srvNS, "spoofed"), e2eNftCounter(l, srvNS, "genuine")
		if spoofed != 0 {
			t.Errorf("the server's qt0 delivered %d packets from spoofed 10.77.0.99", spoofed)
		}
		if genuine < 3 {
			t.Errorf("the server's qt0 delivered %d packets from client1's 10.77.0.11, want ≥ 3 (counter broken?)", genuine)
		}
		l.Must(c1NS, "ip", "addr", "del", "10.77.0.99/32", "dev", "qt0")
	})

	t.Run("client2 unharmed", func(t *testing.T) {
		watch.Stop(syscall.SIGINT, 5*time.Second) // ping prints its summary on SIGINT
		out := watch.Stdout()
		sent, got, ok := nsPingCounts(out)
		if !ok || sent < 5 || sent-got > 1 {
			t.Errorf("client2's ping during the test: %d sent, %d answered; want all but at most the last answered:\n%s", sent, got, out)
		} else {
			t.Logf("client2's ping during the test: %d sent, %d answered", sent, got)
		}
	})
}

var e2eNftPackets = regexp.MustCompile(`packets (\d+)`)

// e2eNftCounter reads a named counter of table inet e2e in ns.
func e2eNftCounter(l *nsLab, ns, name string) int {
	l.t.Helper()
	out := l.Must(ns, "nft", "list", "counter", "inet", "e2e", name)
	m := e2eNftPackets.FindStringSubmatch(out)
	if m == nil {
		l.t.Fatalf("nft counter %s: %q", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestE2EBadInput checks that `quictun listen` refuses bad input with a
// message that says what is wrong, and before it touches the system (no
// device is left behind).
func TestE2EBadInput(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "bad")
	ns := l.AddNS("srv")
	l.Cert("ca", "--dir", "pki", "--name", "E2E Bad Input CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "127.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	hold := l.Start(ns, "hold-udp", e2eNettoolPath, "hold-udp", "-listen", "127.0.0.1:4434")
	if !hold.WaitOutput("ready", 5*time.Second) {
		t.Fatalf("UDP port holder not ready:\n%s", hold.Dump())
	}
	links := l.Must(ns, "ip", "-br", "link")

	listen := func(port, cert, key, dev string) []string {
		return []string{"listen", "--listen", "127.0.0.1:" + port,
			"--cert", cert, "--key", key, "--ca", "pki/ca.crt",
			"--mode", "tun", "--dev", dev, "--ip", "10.77.0.1/24"}
	}
	for _, tc := range []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"missing cert", listen("4431", "pki/nope.crt", "pki/server.key", "qt0"), regexp.MustCompile(`pki/nope\.crt`)},
		{"key not matching cert", listen("4432", "pki/server.crt", "pki/c1.key", "qt0"), regexp.MustCompile(`(?i)pki/c1\.key.*(n[o']t (match|belong)|mismatch)|(n[o']t (match|belong)|mismatch).*pki/c1\.key`)},
		{"port in use", listen("4434", "pki/server.crt", "pki/server.key", "qt0"), regexp.MustCompile(`(?i)in use`)},
		{"dev name too long", listen("4435", "pki/server.crt", "pki/server.key", "qtnameistoolong0"), regexp.MustCompile(`(?i)\bdev\b`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := l.With(t)
			name := strings.ReplaceAll(tc.name, " ", "-")
			code, stderr, exited := l.RunQuictun(ns, name, 10*time.Second, tc.args...)
			line := e2eErrorLine(stderr)
			switch {
			case !exited:
				t.Errorf("still running after 10 s; want a non-zero exit")
			case code == 0:
				t.Errorf("exited 0; want non-zero")
			case !tc.want.MatchString(line):
				t.Errorf("error line %q does not match %v", line, tc.want)
			default:
				t.Logf("exit %d: %s", code, line)
			}
			if now := l.Must(ns, "ip", "-br", "link"); now != links {
				t.Errorf("links changed by a failed start:\nbefore:\n%s\nafter:\n%s", links, now)
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr)
			}
		})
	}
}
