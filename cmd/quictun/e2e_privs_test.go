package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quictun/quictun/internal/privdrop"
)

// e2eNetAdmin is CAP_NET_ADMIN as a capability mask.
const e2eNetAdmin = uint64(1) << privdrop.CapNetAdmin

// TestE2EPrivDrop runs a TUN server and a client with --user nobody
// --group nogroup and --up/--down hooks, and checks what they must still
// do unprivileged: every thread of both processes is nobody:nogroup with
// CAP_NET_ADMIN alone; the hooks ran as nobody with the tunnel's
// environment; a restarted server (another process, as nobody too once
// set up) is reconnected to and carries traffic, and it installs the route
// of the client's certificate at the reconnection (netlink, as nobody); a
// failing --up is logged and the tunnel stays up; on exit the server's
// device goes, and the client — whose device existed before it started,
// so only netlink can take its configuration off — leaves no address or
// route behind.
func TestE2EPrivDrop(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	uid, _, err := privdrop.LookupUser("nobody")
	if err != nil {
		t.Fatalf("needs the user nobody: %v", err)
	}
	gid, err := privdrop.LookupGroup("nogroup")
	if err != nil {
		t.Fatalf("needs the group nogroup: %v", err)
	}
	l := nsNewLab(t, "priv")
	star := l.Star(1)
	srvNS, cNS := star.Server, star.Clients[0]
	l.Cert("ca", "--dir", "pki", "--name", "E2E privileges CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24", "--route", "192.168.50.0/24")

	// The hooks run as nobody, who cannot reach the lab directory: they
	// write to a directory of their own.
	hookDir, err := os.MkdirTemp("", "quictun-e2e-hooks-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hookDir) })
	if err := os.Chmod(hookDir, 0o777); err != nil {
		t.Fatal(err)
	}
	hook := func(who string) string {
		return `{ env | grep '^QUICTUN_' | grep -v '^QUICTUN_E2E' | sort; echo "id=$(id -u):$(id -g)"; grep -E '^Cap(Eff|Amb):' /proc/self/status; } > ` +
			hookDir + "/" + who + `.$QUICTUN_HOOK`
	}
	readHook := func(t *testing.T, name string) map[string]string {
		t.Helper()
		path := filepath.Join(hookDir, name)
		deadline := time.Now().Add(15 * time.Second)
		for {
			b, err := os.ReadFile(path)
			if err == nil && strings.Contains(string(b), "CapAmb:") {
				m := map[string]string{}
				for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
					k, v, _ := strings.Cut(line, "=")
					if strings.HasPrefix(line, "Cap") {
						k, v, _ = strings.Cut(line, ":")
						v = strings.TrimSpace(v)
					}
					m[k] = v
				}
				return m
			}
			if time.Now().After(deadline) {
				t.Fatalf("hook output %s: not there after 15 s: %v", name, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	checkHook := func(t *testing.T, name string, want map[string]string) {
		t.Helper()
		got := readHook(t, name)
		want["id"] = fmt.Sprintf("%d:%d", uid, gid)
		want["CapEff"] = fmt.Sprintf("%016x", e2eNetAdmin)
		want["CapAmb"] = fmt.Sprintf("%016x", e2eNetAdmin)
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s=%q, want %q", name, k, got[k], v)
			}
		}
	}
	// checkCreds checks every thread of p after its privilege drop.
	checkCreds := func(t *testing.T, p *nsProc) {
		t.Helper()
		if !p.WaitOutput(`msg="dropped privileges"`, 15*time.Second) {
			t.Fatalf("%s did not drop privileges:\n%s", p.name, p.Dump())
		}
		threads, err := privdrop.ProcessThreads(p.Pid())
		if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		if len(threads) < 2 {
			t.Errorf("%s: %d threads; a Go program has several", p.name, len(threads))
		}
		for _, th := range threads {
			if th.UID != uid || th.GID != gid || !th.SameIDs || len(th.Groups) != 1 || th.Groups[0] != gid ||
				th.Effective != e2eNetAdmin || th.Permitted != e2eNetAdmin || th.Bounding != e2eNetAdmin {
				t.Errorf("%s thread %d: %+v, want uid %d gid %d groups [%d] and CAP_NET_ADMIN (%#x) alone",
					p.name, th.TID, th, uid, gid, gid, e2eNetAdmin)
			}
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d\n", uid, uid, uid, uid), fmt.Sprintf("Gid:\t%d\t%d\t%d\t%d\n", gid, gid, gid, gid),
			fmt.Sprintf("CapEff:\t%016x\n", e2eNetAdmin)} {
			if !strings.Contains(string(status), want) {
				t.Errorf("%s: /proc/%d/status lacks %q", p.name, p.Pid(), want)
			}
		}
	}
	hasRoute := func(ns, route string) bool {
		out, _ := l.Run(ns, "ip", "route", "show", route)
		return strings.Contains(out, "dev qt0")
	}
	waitRoute := func(t *testing.T, ns, route string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for hasRoute(ns, route) != want {
			if time.Now().After(deadline) {
				out, _ := l.Run(ns, "ip", "route")
				t.Fatalf("in %s: route %s via qt0 present=%v after 10 s, want %v:\n%s", ns, route, !want, want, out)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	listenArgs := func(extra ...string) []string {
		return e2eListenArgs(append([]string{"--dev", "qt0", "--ip", "10.77.0.1/24", "--route", "192.168.77.0/24",
			"--user", "nobody", "--group", "nogroup"}, extra...)...)
	}

	// The client's device exists before it starts (and stays after it).
	l.Must(cNS, "ip", "tuntap", "add", "qt0", "mode", "tun")
	srv := l.StartQuictun(srvNS, "server", listenArgs("--up", hook("server"), "--down", hook("server"))...)
	c := l.StartQuictun(cNS, "client", e2eConnectArgs("c1", "--dev", "qt0",
		"--user", "nobody", "--group", "nogroup", "--up", hook("client"), "--down", hook("client"))...)
	l.WaitPing(cNS, "10.77.0.1", nsPingTimeout)

	t.Run("every thread nobody with CAP_NET_ADMIN", func(t *testing.T) {
		checkCreds(t, srv)
		checkCreds(t, c)
	})
	t.Run("up hooks", func(t *testing.T) {
		checkHook(t, "server.up", map[string]string{"QUICTUN_HOOK": "up", "QUICTUN_DEV": "qt0", "QUICTUN_MODE": "tun",
			"QUICTUN_ADDRESSES": "10.77.0.1/24", "QUICTUN_ROUTES": "192.168.77.0/24", "QUICTUN_GATEWAY": "",
			"QUICTUN_IDENTITY": "server", "QUICTUN_SERVER": "", "QUICTUN_MTU": "1414"})
		checkHook(t, "client.up", map[string]string{"QUICTUN_HOOK": "up", "QUICTUN_DEV": "qt0", "QUICTUN_MODE": "tun",
			"QUICTUN_ADDRESSES": "10.77.0.11/24", "QUICTUN_ROUTES": "192.168.77.0/24", "QUICTUN_GATEWAY": "10.77.0.1",
			"QUICTUN_IDENTITY": "c1", "QUICTUN_SERVER": "10.0.0.1:4433", "QUICTUN_MTU": "1414"})
	})
	t.Run("routes", func(t *testing.T) {
		waitRoute(t, cNS, "192.168.77.0/24", true)   // pushed by the server
		waitRoute(t, srvNS, "192.168.50.0/24", true) // the client certificate's, added after the server's drop
	})
	if t.Failed() {
		return
	}

	var srv2 *nsProc
	t.Run("server restart", func(t *testing.T) {
		if code, ok := srv.Stop(syscall.SIGTERM, nsStopTimeout); !ok || code != 0 {
			t.Fatalf("server: exited by itself %v, code %d:\n%s", ok, code, srv.Dump())
		}
		checkHook(t, "server.down", map[string]string{"QUICTUN_HOOK": "down", "QUICTUN_DEV": "qt0", "QUICTUN_ADDRESSES": "10.77.0.1/24"})
		if l.LinkExists(srvNS, "qt0") {
			t.Error("the server's device is still there after it stopped")
		}
		if strings.Contains(srv.Stderr(), "could not undo") {
			t.Errorf("the server could not undo its configuration as nobody:\n%s", srv.Dump())
		}
		// The new server's --up fails: logged, and the tunnel comes up all the
		// same. It pushes one more route, which the client, as nobody,
		// installs at the reconnection.
		srv2 = l.StartQuictun(srvNS, "server2", listenArgs("--route", "192.168.78.0/24", "--up", "echo up-hook-broke >&2; exit 3")...)
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(c.Stderr(), `msg="tunnel up"`) < 2 {
			if time.Now().After(deadline) || c.Exited() {
				t.Fatalf("the client did not reconnect in 20 s:\n%s\n%s", c.Dump(), srv2.Dump())
			}
			time.Sleep(50 * time.Millisecond)
		}
		l.PingAll(cNS, "10.77.0.1", 5)
		l.MustTransfer(cNS, srvNS, "10.77.0.1:5001", 8*e2eMB)
		checkCreds(t, srv2)
		checkCreds(t, c)                             // still nobody after redialling (a new socket each time)
		waitRoute(t, srvNS, "192.168.50.0/24", true) // the new server, as nobody, at the reconnection
		waitRoute(t, cNS, "192.168.78.0/24", true)   // pushed by the new server, installed by the client as nobody
		waitRoute(t, cNS, "192.168.77.0/24", true)   // still pushed
		if !srv2.WaitOutput(`msg="hook failed" hook=up`, 10*time.Second) {
			t.Fatalf("the failing --up was not logged:\n%s", srv2.Dump())
		}
		for _, want := range []string{`status="exit status 3"`, "up-hook-broke"} {
			if !strings.Contains(srv2.Stderr(), want) {
				t.Errorf("the failing hook's log lacks %q:\n%s", want, srv2.Stderr())
			}
		}
		l.PingAll(cNS, "10.77.0.1", 3)
		if n := strings.Count(c.Stderr(), `msg="hook ran" hook=up`); n != 1 {
			t.Errorf("the client's --up ran %d times, want once (not again at the reconnection)", n)
		}
	})
	t.Run("exit", func(t *testing.T) {
		if code, ok := c.Stop(syscall.SIGTERM, nsStopTimeout); !ok || code != 0 {
			t.Fatalf("client: exited by itself %v, code %d:\n%s", ok, code, c.Dump())
		}
		checkHook(t, "client.down", map[string]string{"QUICTUN_HOOK": "down", "QUICTUN_DEV": "qt0",
			"QUICTUN_ADDRESSES": "10.77.0.11/24", "QUICTUN_GATEWAY": "10.77.0.1"})
		if strings.Contains(c.Stderr(), "could not undo") {
			t.Errorf("the client could not undo its configuration as nobody:\n%s", c.Dump())
		}
		if !l.LinkExists(cNS, "qt0") {
			t.Fatal("the client's device, there before it started, was removed")
		}
		if out := l.Must(cNS, "ip", "-o", "addr", "show", "dev", "qt0"); strings.Contains(out, "10.77.0.11") {
			t.Errorf("the client's address is still on its device:\n%s", out)
		}
		if hasRoute(cNS, "192.168.77.0/24") {
			t.Error("the pushed route is still there after the client stopped")
		}
		// The server removes the route of the client's certificate when the
		// client leaves, as nobody.
		waitRoute(t, srvNS, "192.168.50.0/24", false)
		if code, ok := srv2.Stop(syscall.SIGTERM, nsStopTimeout); !ok || code != 0 {
			t.Fatalf("server2: exited by itself %v, code %d:\n%s", ok, code, srv2.Dump())
		}
		if l.LinkExists(srvNS, "qt0") {
			t.Error("the server's device is still there after it stopped")
		}
	})
}
