package main

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EReloadRoutes runs a TUN server from `listen --config server.toml`
// as an administrator would, with `route = ["192.168.10.0/24"]` and a pool,
// and a client connected to it. While a TCP transfer runs from the client
// through the tunnel, the file is rewritten with another route and pool
// and the server process is sent SIGHUP. The server must log the reload;
// the client's routing table must gain 192.168.20.0/24 on its tunnel
// device and lose 192.168.10.0/24, and a ping to an address behind the
// new route must be answered by the server; the transfer must end intact
// (same byte count and SHA-256 on both ends) on the same session (one
// "tunnel up" in the client's log, one "client connected" in the
// server's). A second client, whose certificate carries no address and
// which connects after the reload, must get its address from the new pool
// and the new route with its config.
func TestE2EReloadRoutes(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "tc", "ss")
	l := nsNewLab(t, "rld")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]
	oldRoute, newRoute := netip.MustParsePrefix("192.168.10.0/24"), netip.MustParsePrefix("192.168.20.0/24")
	oldPool, newPool := netip.MustParsePrefix("10.77.0.128/26"), netip.MustParsePrefix("10.77.0.192/26")

	l.Cert("ca", "--dir", "pki", "--name", "E2E reload CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "laptop") // no address: from the pool
	// An address behind each pushed route, so that a ping shows the route
	// carries packets to the server.
	l.Must(srvNS, "ip", "addr", "add", "192.168.10.1/32", "dev", "lo")
	l.Must(srvNS, "ip", "addr", "add", "192.168.20.1/32", "dev", "lo")

	serverFile := l.Path("server.toml")
	write := func(route, pool netip.Prefix) {
		t.Helper()
		content := fmt.Sprintf(`listen = "10.0.0.1:4433"
cert = "pki/server.crt"
key = "pki/server.key"
ca = "pki/ca.crt"
mode = "tun"
dev = "qt0"
ip = ["10.77.0.1/24"]
log-level = "info"
route = [%q]
pool = [%q]
`, route, pool)
		if err := os.WriteFile(serverFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(oldRoute, oldPool)
	// No --log-level on the command line: the file is the whole
	// configuration, as a user's would be.
	srv := l.Start(srvNS, "server", l.Quictun(), "listen", "--config", serverFile)
	c1 := l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	if !roamWaitLines(c1, 1, 5*time.Second, "tunnel up") {
		t.Fatalf("client1 logged no \"tunnel up\":\n%s", c1.Dump())
	}
	routes := e2eRoutes(l, c1NS, "qt0")
	if !e2eHasRoute(routes, oldRoute) || e2eHasRoute(routes, newRoute) {
		t.Fatalf("client1's routes on qt0 at start: want %v (from the file) and not %v:\n%s", oldRoute, newRoute, routes)
	}
	l.PingAll(c1NS, "192.168.10.1", 3)

	roamShape(l, c1NS, "qt0")
	x := roamStartTransfer(l, c1NS, srvNS, "10.77.0.1", "5001")
	time.Sleep(time.Second)
	x.Running(t, "the reload")

	write(newRoute, newPool)
	t.Logf("SIGHUP to the server, pid %d", srv.Pid())
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP to the server: %v", err)
	}
	if !roamWaitLines(srv, 1, 5*time.Second, "configuration reloaded", "route="+newRoute.String(), "pool="+newPool.String()) {
		t.Fatalf("the server did not log the reload of route and pool:\n%s", srv.Dump())
	}
	t.Logf("server: %s", roamLines(srv, "configuration reloaded")[0])
	if !roamWaitLines(srv, 1, 5*time.Second, "pushed routes changed", "added="+newRoute.String(),
		"removed="+oldRoute.String(), "clients=1") {
		t.Errorf("the server did not log the pushed change to its one client:\n%s", srv.Dump())
	}
	if lines := roamLines(srv, "configuration reloaded; some changes were left as they were"); len(lines) > 0 {
		t.Errorf("the server left changes as they were: %s", lines)
	}

	// The client applies the pushed list: 192.168.20.0/24 on qt0, and
	// 192.168.10.0/24 gone.
	deadline := time.Now().Add(5 * time.Second)
	for {
		routes = e2eRoutes(l, c1NS, "qt0")
		if e2eHasRoute(routes, newRoute) && !e2eHasRoute(routes, oldRoute) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the reload client1's routes on qt0 are not %v alone (want %v added, %v removed):\n%s\n%s\n%s",
				newRoute, newRoute, oldRoute, routes, srv.Dump(), c1.Dump())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := l.Run(c1NS, "ip", "route", "show", oldRoute.String()); err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("client1 still has a route for %v (on any device): %v\n%s", oldRoute, err, out)
	}
	x.Running(t, "the client applied the new routes")
	if !roamWaitLines(c1, 1, 5*time.Second, "routes changed", "via=\"server push\"",
		"added="+newRoute.String(), "removed="+oldRoute.String()) {
		t.Errorf("client1 did not log the pushed change:\n%s", c1.Dump())
	} else {
		t.Logf("client1: %s", roamLines(c1, "routes changed")[0])
	}
	t.Logf("client1's routes on qt0 after the reload:\n%s", routes)
	l.PingAll(c1NS, "192.168.20.1", 3)

	x.Wait(t)
	if n := roamCount(c1, "tunnel up"); n != 1 {
		t.Errorf("client1 logged %d×\"tunnel up\", want 1: the reload must not make it reconnect", n)
	}
	if n := roamCount(srv, "client connected"); n != 1 {
		t.Errorf("the server logged %d×\"client connected\", want 1 (client1's session unchanged):\n%s", n, srv.Stderr())
	}
	roamAlive(t, srv, c1)

	t.Run("new client gets the new pool", func(t *testing.T) {
		c2 := l.With(t).StartQuictun(c2NS, "client2", e2eConnectArgs("laptop", "--dev", "qt0")...)
		got := e2eWaitIPv4(l.With(t), c2NS, "qt0", nsPingTimeout)
		t.Logf("client2 got %v", got)
		if !newPool.Contains(got.Addr()) {
			t.Errorf("client2 connected after the reload got %v, want an address from the new pool %v (the old one was %v)",
				got, newPool, oldPool)
		}
		l.With(t).WaitPing(c2NS, "10.77.0.1", nsPingTimeout)
		if !roamWaitLines(srv, 1, 5*time.Second, "client connected", "peer=laptop", "addresses="+got.String()) {
			t.Errorf("the server did not log client2 with %v:\n%s", got, srv.Dump())
		}
		if routes := e2eRoutes(l.With(t), c2NS, "qt0"); !e2eHasRoute(routes, newRoute) || e2eHasRoute(routes, oldRoute) {
			t.Errorf("client2's routes on qt0: want %v alone from its config:\n%s", newRoute, routes)
		}
		roamAlive(t, srv, c1, c2)
	})
}

// e2eRoutes returns `ip -o route show dev <dev>` in ns.
func e2eRoutes(l *nsLab, ns, dev string) string {
	l.t.Helper()
	return l.Must(ns, "ip", "-o", "route", "show", "dev", dev)
}

// e2eHasRoute reports whether `ip -o route` output has a route for p.
func e2eHasRoute(out string, p netip.Prefix) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == p.String() {
			return true
		}
	}
	return false
}
