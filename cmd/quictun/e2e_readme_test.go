package main

// End-to-end tests of what the README tells a new user to type: the default
// --listen taking IPv4 and IPv6 clients once the firewall rule it gives is
// in, the forwarding and NAT (or return route) that --route needs, and the
// bridge commands of the TAP section in their safe order. The commands are
// read from README.md and run as written (without "sudo"), so that the
// text and the tests cannot drift apart.

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"
)

// e2eReadmeBlock returns the commands of README.md's fenced code block that
// contains marker: one per line, a leading "sudo " taken off, blank lines
// and comments left out. It fails the test when no block contains marker.
func e2eReadmeBlock(t *testing.T, marker string) []string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var block []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "```") {
			if in && strings.Contains(strings.Join(block, "\n"), marker) {
				var cmds []string
				for _, c := range block {
					if c != "" && !strings.HasPrefix(c, "#") {
						cmds = append(cmds, strings.TrimPrefix(c, "sudo "))
					}
				}
				return cmds
			}
			in, block = !in, nil
			continue
		}
		if in {
			block = append(block, line)
		}
	}
	t.Fatalf("README.md has no code block with %q", marker)
	return nil
}

// e2eReadmeRun runs the README's block that contains marker in ns, one
// `sh -c` per line, and fails the test on the first error.
func e2eReadmeRun(l *nsLab, ns, marker string) {
	l.t.Helper()
	for _, cmd := range e2eReadmeBlock(l.t, marker) {
		l.Must(ns, "sh", "-c", cmd)
	}
}

// TestE2EListenDefault starts a server without --listen behind a firewall
// that drops what it was not told to let in, as a filtering Debian host's
// would: no client gets through until the README's nft rule opens the
// port; then one client over IPv4 and one over IPv6 reach the server and
// each other, on the one socket that the default opens.
func TestE2EListenDefault(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "nft", "ss")
	l := nsNewLab(t, "lsn")
	star := l.Star(2)
	srvNS, c4NS, c6NS := star.Server, star.Clients[0], star.Clients[1]
	l.Must(srvNS, "ip", "addr", "add", "fd00::1/64", "dev", "eth0", "nodad")
	l.Must(c6NS, "ip", "addr", "add", "fd00::12/64", "dev", "eth0", "nodad")
	l.WaitPing(c6NS, "fd00::1", nsPingTimeout)
	firewall := `table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		meta l4proto { icmp, ipv6-icmp } accept
	}
}`
	if out, err := nsRunInput(srvNS, firewall, "nft", "-f", "-"); err != nil {
		t.Fatalf("nft: %v\n%s", err, out)
	}

	l.Cert("ca", "--dir", "pki", "--name", "E2E listen CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1", "--host", "fd00::1")
	l.Cert("issue", "--dir", "pki", "--name", "c4", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "c6", "--ip", "10.77.0.12/24")
	// No --listen, and none from the environment either.
	srv := l.Start(srvNS, "server", "env", "-u", "QUICTUN_LISTEN", l.Quictun(), "--log-level", e2eLogLevel(),
		"listen", "--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt",
		"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24")
	if !srv.WaitOutput("msg=listening", 10*time.Second) {
		t.Fatalf("server not listening:\n%s", srv.Dump())
	}
	// One socket, for both families: ss shows an IPv6 socket that takes
	// IPv4 too (IPV6_V6ONLY off) as *:4433.
	if out := l.Must(srvNS, "ss", "-Hlun"); !e2eHasField(out, "*:4433") {
		t.Errorf("want one dual-stack socket *:4433:\n%s", out)
	}

	l.StartQuictun(c4NS, "client-v4", e2eConnectArgs("c4", "--dev", "qt0")...)
	if err := nsWaitPing(c4NS, "10.77.0.1", 3*time.Second); err == nil {
		t.Fatal("a tunnel came up through a firewall that drops UDP 4433: the test's firewall is broken")
	}
	e2eReadmeRun(l, srvNS, "udp dport 4433")
	l.WaitPing(c4NS, "10.77.0.1", nsPingTimeout)
	l.StartQuictun(c6NS, "client-v6", "connect", "--server", "[fd00::1]:4433",
		"--cert", "pki/c6.crt", "--key", "pki/c6.key", "--ca", "pki/ca.crt", "--dev", "qt0")
	l.WaitPing(c6NS, "10.77.0.1", nsPingTimeout)

	l.PingAll(c4NS, "10.77.0.1", 3)
	l.PingAll(c6NS, "10.77.0.1", 3)
	l.PingAll(c4NS, "10.77.0.12", 3) // client to client, one underlay family to the other
	l.MustTransfer(c4NS, srvNS, "10.77.0.1:5001", 10*e2eMB)
	l.MustTransfer(srvNS, c6NS, "10.77.0.12:5002", 10*e2eMB)
	log := srv.Stderr()
	for _, remote := range []string{"remote=10.0.0.11:", "remote=[fd00::12]:"} {
		if !strings.Contains(log, remote) {
			t.Errorf("server log has no %s…:\n%s", remote, log)
		}
	}
}

// TestE2EReadmeRoute gives the server --route for a LAN behind it and
// checks that the client routes the LAN into the tunnel but reaches it only
// once the server forwards: with the README's NAT commands, then instead
// with its return route on the LAN side.
func TestE2EReadmeRoute(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "nft", "sysctl")
	l := nsNewLab(t, "rte")
	star := l.Star(1)
	srvNS, cNS := star.Server, star.Clients[0]
	// The LAN: the server's eth1 192.168.10.1, a host 192.168.10.5 that
	// knows no route to the tunnel's 10.77.0.0/24.
	lanNS := l.AddNS("lan")
	l.Veth(srvNS, "eth1", lanNS, "eth0")
	l.Must(srvNS, "ip", "addr", "add", "192.168.10.1/24", "dev", "eth1")
	l.Must(lanNS, "ip", "addr", "add", "192.168.10.5/24", "dev", "eth0")
	l.Must(srvNS, "sysctl", "-qw", "net.ipv4.ip_forward=0")

	l.Cert("ca", "--dir", "pki", "--name", "E2E route CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.StartQuictun(srvNS, "server", e2eListenArgs("--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24",
		"--route", "192.168.10.0/24")...)
	l.StartQuictun(cNS, "client", e2eConnectArgs("c1", "--dev", "qt0")...)
	l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)
	if out := l.Must(cNS, "ip", "route", "get", "192.168.10.5"); !strings.Contains(out, "dev qt0") {
		t.Fatalf("the client does not route the pushed 192.168.10.0/24 into the tunnel:\n%s", out)
	}
	if err := nsWaitPing(cNS, "192.168.10.5", 2*time.Second); err == nil {
		t.Fatal("the LAN answered with forwarding off")
	}

	t.Run("NAT", func(t *testing.T) {
		l := l.With(t)
		e2eReadmeRun(l, srvNS, "masquerade")
		l.WaitPing(cNS, "192.168.10.5", nsPingTimeout)
		l.PingAll(cNS, "192.168.10.5", 3)
		l.MustTransfer(cNS, lanNS, "192.168.10.5:5001", 5*e2eMB)
	})
	t.Run("return route", func(t *testing.T) {
		l := l.With(t)
		l.Must(srvNS, "nft", "delete", "table", "ip", "quictun")
		if err := nsWaitPing(cNS, "192.168.10.5", 2*time.Second); err == nil {
			t.Fatal("the LAN answered without NAT and without a route back")
		}
		e2eReadmeRun(l, lanNS, "ip route add 10.77.0.0/24")
		l.WaitPing(cNS, "192.168.10.5", nsPingTimeout)
		l.PingAll(cNS, "192.168.10.5", 3)
	})
}

// TestE2EReadmeBridge checks the TAP section's bridge commands on a site
// whose only link, eth1 (192.168.1.2/24, default route via 192.168.1.1),
// goes to its LAN: putting eth1 into a bridge alone cuts the site off,
// the README's commands keep it on the LAN with eth1's MAC, and the MAC
// stays when quictun's TAP joins the bridge.
func TestE2EReadmeBridge(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "brg")
	// site makes a site namespace and its LAN gateway, and returns the
	// site's namespace.
	site := func(l *nsLab, role string) string {
		s, gw := l.AddNS(role), l.AddNS(role+"gw")
		l.Veth(s, "eth1", gw, "eth0")
		l.Must(gw, "ip", "addr", "add", "192.168.1.1/24", "dev", "eth0")
		l.Must(s, "ip", "addr", "add", "192.168.1.2/24", "dev", "eth1")
		l.Must(s, "ip", "route", "add", "default", "via", "192.168.1.1")
		l.WaitPing(s, "192.168.1.1", nsPingTimeout)
		return s
	}
	mac := func(l *nsLab, ns, dev string) string {
		return strings.TrimSpace(l.Must(ns, "cat", "/sys/class/net/"+dev+"/address"))
	}

	t.Run("eth1 into the bridge alone", func(t *testing.T) {
		l := l.With(t)
		s := site(l, "naive")
		l.Must(s, "ip", "link", "add", "br0", "type", "bridge")
		l.Must(s, "ip", "link", "set", "br0", "up")
		l.Must(s, "ip", "link", "set", "eth1", "master", "br0")
		l.Must(s, "ip", "neigh", "flush", "all") // as when the cached entries age out
		if err := nsWaitPing(s, "192.168.1.1", 3*time.Second); err == nil {
			t.Error("the site still reaches its gateway with its address left on a bridge port; the README's warning is wrong")
		}
	})

	t.Run("the README's commands", func(t *testing.T) {
		l := l.With(t)
		s := site(l, "site")
		ethMAC := mac(l, s, "eth1")
		e2eReadmeRun(l, s, "master br0")
		l.Must(s, "ip", "neigh", "flush", "all")
		l.PingAll(s, "192.168.1.1", 3)
		if out := l.Must(s, "ip", "-br", "-4", "addr", "show", "dev", "eth1"); strings.Contains(out, "192.168.1.2") {
			t.Errorf("eth1 kept its address:\n%s", out)
		}
		if out := l.Must(s, "ip", "-br", "addr", "show", "dev", "br0"); !e2eHasField(out, "192.168.1.2/24") {
			t.Errorf("br0 lacks 192.168.1.2/24:\n%s", out)
		}
		if out := l.Must(s, "ip", "route", "show", "default"); !strings.Contains(out, "via 192.168.1.1 dev br0") {
			t.Errorf("default route not via br0:\n%s", out)
		}
		if got := mac(l, s, "br0"); got != ethMAC {
			t.Errorf("br0 has MAC %s, want eth1's %s", got, ethMAC)
		}

		// quictun's TAP joins the bridge; the bridge keeps its MAC.
		l.Cert("ca", "--dir", "pki", "--name", "E2E bridge CA")
		l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "192.168.1.2")
		srv := l.StartQuictun(s, "server", "listen", "--listen", "192.168.1.2:4433",
			"--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt",
			"--mode", "tap", "--bridge", "br0")
		if !srv.WaitOutput("msg=listening", 10*time.Second) {
			t.Fatalf("server not listening:\n%s", srv.Dump())
		}
		if out := l.Must(s, "ip", "-br", "link", "show", "master", "br0"); !strings.Contains(out, "qtap0") {
			t.Fatalf("qtap0 not in br0:\n%s", out)
		}
		if got := mac(l, s, "br0"); got != ethMAC {
			t.Errorf("br0's MAC changed to %s when the TAP joined, want eth1's %s", got, ethMAC)
		}
		l.PingAll(s, "192.168.1.1", 3)
	})
}
