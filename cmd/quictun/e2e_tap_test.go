package main

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2ETAP is the two-site layer-2 scenario: two LANs whose hosts keep
// their default MTU 1500, joined into one Ethernet segment by a TAP tunnel
// between their routers (siteA listens, siteB connects, both TAP devices in
// the site's bridge br0).
func TestE2ETAP(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "tap")
	s := l.TwoSite()
	if err := nsWaitPing(s.HostA, "192.168.0.3", time.Second); err == nil {
		t.Fatal("hostA reaches hostB before any tunnel: the topology leaks")
	}

	l.Cert("ca", "--dir", "pki", "--name", "E2E TAP CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "siteb")
	srv := l.StartQuictun(s.SiteA, "server", "listen", "--listen", "10.0.0.1:4433",
		"--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt",
		"--mode", "tap", "--dev", "qtap0", "--bridge", "br0")
	cli := l.StartQuictun(s.SiteB, "client", "connect", "--server", "10.0.0.1:4433",
		"--cert", "pki/siteb.crt", "--key", "pki/siteb.key", "--ca", "pki/ca.crt",
		"--mode", "tap", "--dev", "qtap0", "--bridge", "br0")

	e2eCheckTwoSite(l, s)

	t.Run("tap devices", func(t *testing.T) {
		l := l.With(t)
		for _, ns := range []string{s.SiteA, s.SiteB} {
			if mtu := l.LinkMTU(ns, "qtap0"); mtu != 1500 {
				t.Errorf("qtap0 in %s: MTU %d, want 1500 (hosts on the bridge keep 1500)", ns, mtu)
			}
			if out := l.Must(ns, "ip", "-o", "link", "show", "dev", "qtap0"); !strings.Contains(out, "master br0") {
				t.Errorf("qtap0 in %s is not a port of br0:\n%s", ns, out)
			}
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		l := l.With(t)
		for _, p := range []struct {
			proc *nsProc
			ns   string
		}{{cli, s.SiteB}, {srv, s.SiteA}} {
			if p.proc.Exited() {
				t.Fatalf("%s exited before SIGTERM", p.proc.name)
			}
			code, exited := p.proc.Stop(syscall.SIGTERM, nsStopTimeout)
			if !exited || code != 0 {
				t.Errorf("%s after SIGTERM: exited=%v (in %v) code=%d, want exit 0", p.proc.name, exited, nsStopTimeout, code)
			}
			if l.LinkExists(p.ns, "qtap0") {
				t.Errorf("%s left qtap0 behind in %s", p.proc.name, p.ns)
			}
			if !l.LinkExists(p.ns, "br0") {
				t.Errorf("%s removed br0 in %s, which it did not create", p.proc.name, p.ns)
			}
		}
	})
}

// e2eCheckTwoSite checks that hostA and hostB share one Ethernet segment
// whatever joins the sites: ARP crosses (hostA learns hostB's real MAC),
// full-size 1514-byte frames cross with DF, and 20 MB cross intact both
// ways. The harness's own test runs it over a VXLAN to prove the checks.
func e2eCheckTwoSite(l *nsLab, s *nsTwoSite) {
	l.t.Helper()
	l.WaitPing(s.HostA, "192.168.0.3", nsPingTimeout)

	l.t.Run("arp", func(t *testing.T) {
		l := l.With(t)
		mac := strings.TrimSpace(l.Must(s.HostB, "cat", "/sys/class/net/eth0/address"))
		out := l.Must(s.HostA, "ip", "neigh", "show", "192.168.0.3", "dev", "eth0")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "lladdr "+mac+" ") {
			t.Errorf("hostA's neighbour entry for 192.168.0.3: want exactly one with lladdr %s (hostB's eth0), got:\n%s", mac, out)
		}
		l.PingAll(s.HostB, "192.168.0.5", 3)
	})

	l.t.Run("full-size frames", func(t *testing.T) {
		l := l.With(t)
		// 1472 bytes of ICMP data + 28 = 1500-byte packets, 1514-byte frames.
		l.PingAll(s.HostA, "192.168.0.3", 5, "-M", "do", "-s", "1472")
		l.PingAll(s.HostB, "192.168.0.5", 5, "-M", "do", "-s", "1472")
	})

	l.t.Run("transfer", func(t *testing.T) {
		l := l.With(t)
		l.MustTransfer(s.HostA, s.HostB, "192.168.0.3:5001", 20*e2eMB)
		l.MustTransfer(s.HostB, s.HostA, "192.168.0.5:5002", 20*e2eMB)
	})
}
