package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestE2ETAPIsolation runs a TAP server whose device is in a bridge with a
// LAN host, from `listen --config server.toml` with isolate-clients =
// true (and so pin-macs on), and two TAP clients, a and b, with addresses
// on the LAN's network on their devices:
//
//	lan 192.168.0.5 ── br0 [server] qtap0 ══ QUIC ══ qtap0 [a] 192.168.0.11
//	                                           ╚═══ qtap0 [b] 192.168.0.12
//
// Isolated, both clients reach the LAN host but not each other: a's ARP
// for b gets no answer, a's frames to b's MAC (from a static neighbour
// entry) are dropped and the server's status counts them as policy. With
// their MACs pinned, b cannot use a's MAC: its frames are dropped and
// counted as spoofed while a keeps reaching the LAN host and the LAN host
// reaches a. Then the file is rewritten without isolate-clients and
// `quictun reload` applies it live: on the same sessions a and b now
// reach each other, which proves the topology would let them, and b with
// a's MAC now takes it over, as pinning had stopped it from doing.
func TestE2ETAPIsolation(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "tiso")
	star := l.Star(2)
	srvNS, aNS, bNS := star.Server, star.Clients[0], star.Clients[1]
	lanNS := l.AddNS("lan")
	l.Veth(lanNS, "eth0", srvNS, "lan")
	l.Bridge(srvNS, "br0", "lan")
	l.Must(lanNS, "ip", "addr", "add", "192.168.0.5/24", "dev", "eth0")
	const lanIP, aIP, bIP = "192.168.0.5", "192.168.0.11", "192.168.0.12"

	l.Cert("ca", "--dir", "pki", "--name", "E2E TAP isolation CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "a")
	l.Cert("issue", "--dir", "pki", "--name", "b")

	serverFile := l.Path("server.toml")
	write := func(policy string) {
		t.Helper()
		content := `listen = "10.0.0.1:4433"
cert = "pki/server.crt"
key = "pki/server.key"
ca = "pki/ca.crt"
mode = "tap"
dev = "qtap0"
bridge = "br0"
log-level = "info"
` + policy
		if err := os.WriteFile(serverFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("isolate-clients = true\n")
	srv := l.Start(srvNS, "server", l.Quictun(), "listen", "--config", serverFile)
	ca := l.StartQuictun(aNS, "client-a", e2eConnectArgs("a", "--mode", "tap", "--dev", "qtap0")...)
	cb := l.StartQuictun(bNS, "client-b", e2eConnectArgs("b", "--mode", "tap", "--dev", "qtap0")...)
	for ns, ip := range map[string]string{aNS: aIP, bNS: bIP} {
		e2eWaitLink(l, ns, "qtap0", nsPingTimeout)
		l.Must(ns, "ip", "addr", "add", ip+"/24", "dev", "qtap0")
	}
	l.WaitPing(aNS, lanIP, nsPingTimeout)
	l.WaitPing(bNS, lanIP, nsPingTimeout)
	macA := strings.TrimSpace(l.Must(aNS, "cat", "/sys/class/net/qtap0/address"))
	macB := strings.TrimSpace(l.Must(bNS, "cat", "/sys/class/net/qtap0/address"))
	macLAN := strings.TrimSpace(l.Must(lanNS, "cat", "/sys/class/net/eth0/address"))
	if macA == macB {
		t.Fatalf("both clients' TAP devices have MAC %s", macA)
	}
	drops := func(t *testing.T, name, reason string) uint64 {
		t.Helper()
		return e2eMustSession(t, e2eStatus(l, srvNS), name).Drops[reason]
	}

	t.Run("isolated: the LAN host reaches both, they not each other", func(t *testing.T) {
		l := l.With(t)
		l.PingAll(lanNS, aIP, 3)
		l.PingAll(lanNS, bIP, 3)
		out, err := nsPing(aNS, "-c", "3", "-i", "0.2", "-W", "1", bIP)
		if _, got, _ := nsPingCounts(out); err == nil || got != 0 {
			t.Errorf("a pinged b with clients isolated: %v\n%s", err, out)
		}
		if neigh := l.Must(aNS, "ip", "neigh", "show", bIP, "dev", "qtap0"); strings.Contains(neigh, "lladdr") {
			t.Errorf("a's ARP for b was answered with clients isolated:\n%s", neigh)
		}
	})

	t.Run("isolated: frames to the other client's MAC count as policy", func(t *testing.T) {
		l := l.With(t)
		l.PingAll(bNS, lanIP, 1) // b's MAC fresh in the switch
		before := drops(t, "a", "policy")
		l.Must(aNS, "ip", "neigh", "replace", bIP, "lladdr", macB, "dev", "qtap0", "nud", "permanent")
		out, err := nsPing(aNS, "-c", "5", "-i", "0.2", "-W", "1", bIP)
		if _, got, _ := nsPingCounts(out); err == nil || got != 0 {
			t.Errorf("a reached b's MAC with clients isolated: %v\n%s", err, out)
		}
		l.Must(aNS, "ip", "neigh", "del", bIP, "dev", "qtap0")
		if after := drops(t, "a", "policy"); after < before+5 {
			t.Errorf("a's policy drops went from %d to %d for 5 echoes to b's MAC, want at least %d", before, after, before+5)
		} else {
			t.Logf("a's policy drops: %d → %d", before, after)
		}
		out, code := e2eCtl(l, srvNS, "status")
		if code != 0 || !strings.Contains(out, "policy ") {
			t.Errorf("quictun status (exit %d) shows no policy drops:\n%s", code, out)
		} else {
			t.Logf("quictun status:\n%s", out)
		}
	})

	t.Run("pinned: b cannot send with a's MAC", func(t *testing.T) {
		l := l.With(t)
		l.PingAll(aNS, lanIP, 1) // a's MAC fresh in the switch
		before := drops(t, "b", "spoofed")
		l.Must(bNS, "ip", "link", "set", "dev", "qtap0", "address", macA)
		// A static neighbour entry (the MAC change flushed b's), so that
		// each echo leaves b as a frame of its own with a's MAC.
		l.Must(bNS, "ip", "neigh", "replace", lanIP, "lladdr", macLAN, "dev", "qtap0", "nud", "permanent")
		out, err := nsPing(bNS, "-c", "5", "-i", "0.2", "-W", "1", lanIP)
		if _, got, _ := nsPingCounts(out); err == nil || got != 0 {
			t.Errorf("b reached the LAN host with a's MAC: %v\n%s", err, out)
		}
		if after := drops(t, "b", "spoofed"); after < before+5 {
			t.Errorf("b's spoofed drops went from %d to %d for 5 echoes with a's MAC, want at least %d", before, after, before+5)
		} else {
			t.Logf("b's spoofed drops: %d → %d", before, after)
		}
		// a's MAC stayed a's: both ways between a and the LAN work.
		l.PingAll(aNS, lanIP, 5)
		l.PingAll(lanNS, aIP, 5)
		if !roamWaitLines(srv, 1, 5*time.Second, "dropped frame with a source MAC pinned to another port", "peer=b", "held_by=a") {
			t.Errorf("the server did not log b's frames with a's MAC:\n%s", srv.Dump())
		}
		l.Must(bNS, "ip", "neigh", "del", lanIP, "dev", "qtap0")
		l.Must(bNS, "ip", "link", "set", "dev", "qtap0", "address", macB)
		l.WaitPing(bNS, lanIP, nsPingTimeout)
	})

	t.Run("reloaded without isolation: the clients reach each other", func(t *testing.T) {
		l := l.With(t)
		write("")
		if out, code := e2eCtl(l, srvNS, "reload"); code != 0 {
			t.Fatalf("quictun reload: exit %d\n%s", code, out)
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "TAP switch policy changed", "isolate_clients=false", "pin_macs=false") {
			t.Fatalf("the server did not log the policy change:\n%s", srv.Dump())
		}
		l.WaitPing(aNS, bIP, nsPingTimeout)
		l.PingAll(aNS, bIP, 3)
		l.PingAll(bNS, aIP, 3)
		if n := roamCount(srv, "client connected"); n != 2 {
			t.Errorf("the server logged %d×\"client connected\", want 2: the reload must not drop a session", n)
		}
	})

	t.Run("unpinned: a MAC moves to the client that sent it last", func(t *testing.T) {
		// What pinning stops, now that the reload turned it off: b with
		// a's MAC takes it over and gets the LAN host's answers.
		l := l.With(t)
		l.Must(bNS, "ip", "link", "set", "dev", "qtap0", "address", macA)
		l.Must(bNS, "ip", "neigh", "replace", lanIP, "lladdr", macLAN, "dev", "qtap0", "nud", "permanent")
		l.PingAll(bNS, lanIP, 3)
		l.Must(bNS, "ip", "neigh", "del", lanIP, "dev", "qtap0")
		l.Must(bNS, "ip", "link", "set", "dev", "qtap0", "address", macB)
		l.WaitPing(aNS, lanIP, nsPingTimeout) // a's frames move it back
		l.PingAll(lanNS, aIP, 3)
	})
	roamAlive(t, srv, ca, cb)
}

// e2eWaitLink waits until dev exists in ns, failing the test after
// timeout.
func e2eWaitLink(l *nsLab, ns, dev string, timeout time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(timeout)
	for !l.LinkExists(ns, dev) {
		if time.Now().After(deadline) {
			l.t.Fatalf("no %s in %s after %v", dev, ns, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
