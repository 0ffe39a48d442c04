package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eMTU1300 matches ping's report of an ICMP "Frag needed and DF set
// (mtu = 1300)", or of the path MTU the kernel cached from one
// ("local error: message too long, mtu=1300").
var e2eMTU1300 = regexp.MustCompile(`mtu ?= ?1300\b`)

// TestE2ETUN runs a TUN hub with two clients on the star underlay: server
// 10.77.0.1/24 fd77::1/64, client1 10.77.0.11 fd77::11 and client2
// 10.77.0.12 fd77::12 (addresses from their certificates; client2 with
// --mtu 1300). It checks addresses, pings both ways and client to client
// through the hub, IPv6, the device MTU and ICMP for oversized packets,
// 20 MB transfers, and a clean server shutdown.
func TestE2ETUN(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "tun")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	l.Cert("ca", "--dir", "pki", "--name", "E2E TUN CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24", "--ip", "fd77::11/64")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24", "--ip", "fd77::12/64")
	srv := l.StartQuictun(srvNS, "server", e2eListenArgs(
		"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24", "--ip", "fd77::1/64")...)
	c1 := l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0")...)
	c2 := l.StartQuictun(c2NS, "client2", e2eConnectArgs("c2", "--dev", "qt0", "--mtu", "1300", "--low-latency=false")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)

	t.Run("SIGHUP keeps the tunnel", func(t *testing.T) {
		// Without a --config file to reload, SIGHUP is logged and
		// ignored: its default action would kill the process and leave
		// the device and routes behind.
		for _, p := range []*nsProc{srv, c1} {
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatalf("%s: %v", p.name, err)
			}
			if !p.WaitOutput("SIGHUP received", 5*time.Second) {
				t.Errorf("%s logged nothing for SIGHUP:\n%s", p.name, p.Dump())
			}
		}
		time.Sleep(200 * time.Millisecond)
		for _, p := range []*nsProc{srv, c1} {
			if p.Exited() {
				t.Fatalf("%s exited on SIGHUP:\n%s", p.name, p.Dump())
			}
		}
		l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	})
	t.Run("low latency", func(t *testing.T) {
		// --low-latency (the default) re-executes quictun, same PID, with
		// GODEBUG keeping the runtime monitor awake; client2 opted out.
		for _, d := range []struct {
			p    *nsProc
			want bool
		}{{srv, true}, {c1, true}, {c2, false}} {
			env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", d.p.cmd.Process.Pid))
			if err != nil {
				t.Fatalf("%s: %v", d.p.name, err)
			}
			has := bytes.Contains(env, []byte("\x00GODEBUG="+sysmonGODEBUG+"\x00")) ||
				bytes.HasPrefix(env, []byte("GODEBUG="+sysmonGODEBUG+"\x00"))
			if has != d.want {
				t.Errorf("%s: GODEBUG=%s in its environment: %v, want %v", d.p.name, sysmonGODEBUG, has, d.want)
			}
		}
	})

	t.Run("addresses", func(t *testing.T) {
		l := l.With(t)
		for _, d := range []struct {
			ns   string
			want []string
		}{
			{srvNS, []string{"10.77.0.1/24", "fd77::1/64"}},
			{c1NS, []string{"10.77.0.11/24", "fd77::11/64"}},
			{c2NS, []string{"10.77.0.12/24", "fd77::12/64"}},
		} {
			out := l.Must(d.ns, "ip", "-br", "addr", "show", "dev", "qt0")
			for _, w := range d.want {
				if !e2eHasField(out, w) {
					t.Errorf("qt0 in %s lacks %s:\n%s", d.ns, w, out)
				}
			}
		}
	})

	t.Run("ping", func(t *testing.T) {
		l := l.With(t)
		l.PingAll(c1NS, "10.77.0.1", 3)
		l.PingAll(srvNS, "10.77.0.11", 3)
		l.PingAll(srvNS, "10.77.0.12", 3)
		// Client to client, through the hub.
		l.PingAll(c1NS, "10.77.0.12", 3)
		l.PingAll(c2NS, "10.77.0.11", 3)
	})

	t.Run("ipv6", func(t *testing.T) {
		l := l.With(t)
		// Duplicate address detection may hold a fresh address back a while.
		l.WaitPing(c1NS, "fd77::1", nsPingTimeout)
		l.PingAll(c1NS, "fd77::1", 3)
		l.PingAll(srvNS, "fd77::11", 3)
		l.WaitPing(c1NS, "fd77::12", nsPingTimeout)
		l.PingAll(c1NS, "fd77::12", 3)
	})

	t.Run("mtu", func(t *testing.T) {
		l := l.With(t)
		mtu := l.LinkMTU(c1NS, "qt0")
		srvMTU := l.LinkMTU(srvNS, "qt0")
		t.Logf("derived TUN MTU: client %d, server %d", mtu, srvMTU)
		if mtu < 1280 || mtu > 1500 {
			t.Fatalf("client qt0 MTU %d, want between 1280 and 1500 (about 1414)", mtu)
		}
		// The largest packet the device takes crosses, with DF…
		l.PingAll(c1NS, "10.77.0.1", 3, "-M", "do", "-s", strconv.Itoa(mtu-28))
		l.PingAll(srvNS, "10.77.0.11", 3, "-M", "do", "-s", strconv.Itoa(min(mtu, srvMTU)-28))
		// …and one byte more is refused by the client's own kernel.
		out, err := nsPing(c1NS, "-c", "1", "-W", "1", "-M", "do", "-s", strconv.Itoa(mtu-27), "10.77.0.1")
		if err == nil || !strings.Contains(strings.ToLower(out), "message too long") {
			t.Errorf("ping -M do -s %d (MTU %d + 1): err=%v, want a local 'message too long':\n%s", mtu-27, mtu, err, out)
		}
	})

	t.Run("mtu 1300 client", func(t *testing.T) {
		l := l.With(t)
		if mtu := l.LinkMTU(c2NS, "qt0"); mtu != 1300 {
			t.Errorf("client2 started with --mtu 1300 has qt0 MTU %d", mtu)
		}
		// 1372 + 28 = 1400 bytes: fits the server's device, not client2's.
		// The server must answer "Frag needed (mtu = 1300)", not drop it.
		out, _ := nsPing(srvNS, "-c", "3", "-W", "1", "-M", "do", "-s", "1372", "10.77.0.12")
		if !e2eMTU1300.MatchString(out) {
			t.Errorf("server → client2 (MTU 1300), 1400-byte DF ping: want ICMP Frag needed (mtu = 1300), got:\n%s", out)
		} else {
			t.Logf("server → client2, 1400-byte DF ping:\n%s", out)
		}
		// The same from client1, whose packet the hub forwards.
		mtu := l.LinkMTU(c1NS, "qt0")
		out, _ = nsPing(c1NS, "-c", "3", "-W", "1", "-M", "do", "-s", strconv.Itoa(mtu-28), "10.77.0.12")
		if !e2eMTU1300.MatchString(out) {
			t.Errorf("client1 → client2 (MTU 1300), %d-byte DF ping through the hub: want ICMP Frag needed (mtu = 1300), got:\n%s", mtu, out)
		}
		// What fits still crosses.
		l.PingAll(srvNS, "10.77.0.12", 3, "-M", "do", "-s", "1272")
	})

	t.Run("transfer", func(t *testing.T) {
		l := l.With(t)
		l.MustTransfer(c1NS, srvNS, "10.77.0.1:5001", 20*e2eMB)
		l.MustTransfer(srvNS, c1NS, "10.77.0.11:5002", 20*e2eMB)
		l.MustTransfer(c1NS, c2NS, "10.77.0.12:5003", 20*e2eMB)
	})

	t.Run("shutdown", func(t *testing.T) {
		l := l.With(t)
		for _, p := range []*nsProc{srv, c1, c2} {
			if p.Exited() {
				t.Errorf("%s exited during the test", p.name)
			}
		}
		before := len(c1.Stderr())
		code, exited := srv.Stop(syscall.SIGTERM, nsStopTimeout)
		if !exited || code != 0 {
			t.Errorf("server after SIGTERM: exited=%v (in %v) code=%d, want exit 0", exited, nsStopTimeout, code)
		}
		if l.LinkExists(srvNS, "qt0") {
			t.Errorf("server left qt0 behind:\n%s", l.Must(srvNS, "ip", "-br", "link"))
		}
		// How client1 takes it is up to the client (it may redial); show it.
		if e2eWaitGrowth(c1, before, 3*time.Second) {
			t.Logf("client1 after the server stopped:\n%s", strings.TrimSpace(c1.Stderr()[before:]))
		}
	})
}

// e2eWaitGrowth waits up to timeout until p's stderr is longer than n bytes.
func e2eWaitGrowth(p *nsProc, n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for len(p.Stderr()) <= n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let the rest of the burst arrive
	return true
}

// e2eHasField reports whether one of the whitespace-separated fields of out
// is exactly f (so 10.77.0.1/24 does not match 10.77.0.11/24).
func e2eHasField(out, f string) bool {
	for _, x := range strings.Fields(out) {
		if x == f {
			return true
		}
	}
	return false
}
