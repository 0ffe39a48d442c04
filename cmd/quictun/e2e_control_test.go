package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quictun/quictun/internal/control"
)

// e2eCtl runs `quictun args…` in ns (a control command: status, kick,
// reload) and returns its combined output and exit code.
func e2eCtl(l *nsLab, ns string, args ...string) (string, int) {
	l.t.Helper()
	out, err := nsRun(ns, nsCmdTimeout, append([]string{l.Quictun()}, args...)...)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out, 0
	case errors.As(err, &ee):
		return out, ee.ExitCode()
	}
	l.t.Fatalf("quictun %s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	return out, -1
}

// e2eStatus runs `quictun status --json [args…]` in ns and decodes it,
// failing the test if it does not succeed.
func e2eStatus(l *nsLab, ns string, args ...string) control.Status {
	l.t.Helper()
	out, code := e2eCtl(l, ns, append([]string{"status", "--json"}, args...)...)
	if code != 0 {
		l.t.Fatalf("quictun status --json %s in %s: exit %d\n%s", strings.Join(args, " "), ns, code, out)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		l.t.Fatalf("quictun status --json in %s: %v\n%s", ns, err, out)
	}
	return st
}

// e2eSession returns the server's session of name in st, or nil.
func e2eSession(st control.Status, name string) *control.Session {
	if st.Server == nil {
		return nil
	}
	for i := range st.Server.Sessions {
		if st.Server.Sessions[i].Name == name {
			return &st.Server.Sessions[i]
		}
	}
	return nil
}

// e2eMustSession is e2eSession failing the test when the session is not
// listed.
func e2eMustSession(t *testing.T, st control.Status, name string) control.Session {
	t.Helper()
	s := e2eSession(st, name)
	if s == nil {
		t.Fatalf("the server's status lists no session %s: %+v", name, st.Server)
	}
	return *s
}

// e2eWithin fails the test unless got is in [want, want·(1+slack)].
func e2eWithin(t *testing.T, what string, got, want uint64, slack float64) {
	t.Helper()
	if got < want || float64(got) > float64(want)*(1+slack) {
		t.Errorf("%s: %d, want %d to %d (+%.0f %%)", what, got, want, uint64(float64(want)*(1+slack)), slack*100)
	} else {
		t.Logf("%s: %d for %d sent (+%.1f %%)", what, got, want, (float64(got)/float64(want)-1)*100)
	}
}

// TestE2EControl drives the control socket of running tunnels: a TUN
// server and two clients on the star underlay, all with device qt0 in
// their own network namespace. status (table and --json) in each
// namespace reaches that namespace's process, with figures checked
// against the traffic the test sends and drops it provokes; kick ends a
// session, which the client replaces; reload without a configuration file
// fails with the reason and leaves the tunnels up; a user who is neither
// root nor quictun's is refused.
func TestE2EControl(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "setpriv")
	l := nsNewLab(t, "ctl")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	l.Cert("ca", "--dir", "pki", "--name", "E2E Control CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24")
	srv := l.StartQuictun(srvNS, "server", e2eListenArgs("--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24")...)
	c1 := l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0")...)
	// client2 names no device: its socket starts when its first connection
	// sets the device up, as the default qt0.
	c2 := l.StartQuictun(c2NS, "client2", e2eConnectArgs("c2")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)

	t.Run("each namespace its own process", func(t *testing.T) {
		l := l.With(t)
		st := e2eStatus(l, srvNS, "--dev", "qt0")
		if st.Role != "server" || st.PID != srv.Pid() || st.Device != "qt0" || st.Mode != "tun" || st.Server == nil ||
			st.Server.Listen != "10.0.0.1:4433" || st.Certificate.Name != "server" || len(st.Certificate.Fingerprint) != 64 {
			t.Errorf("server namespace: %+v, want the server (pid %d) listening on 10.0.0.1:4433", st, srv.Pid())
		}
		for _, c := range []struct {
			ns, name, addr string
			p              *nsProc
		}{{c1NS, "c1", "10.77.0.11/24", c1}, {c2NS, "c2", "10.77.0.12/24", c2}} {
			s := e2eMustSession(t, st, c.name)
			if !slices.Equal(s.Addresses, []string{c.addr}) || !strings.HasPrefix(s.Remote, "10.0.0.1") ||
				len(s.Fingerprint) != 64 || s.PacketSize != 1452 || s.RTTMillis <= 0 || s.PeerNotAfter.Before(time.Now()) {
				t.Errorf("the server's session %s: %+v", c.name, s)
			}
			cs := e2eStatus(l, c.ns) // without --dev: the only quictun there
			if cs.Role != "client" || cs.PID != c.p.Pid() || cs.Device != "qt0" || cs.Mode != "tun" || cs.Client == nil {
				t.Fatalf("%s's namespace: %+v, want its client (pid %d)", c.name, cs, c.p.Pid())
			}
			cl := cs.Client
			if cl.State != "up" || cl.Server != "10.0.0.1:4433" || cl.Session == nil || cl.Session.Name != c.name ||
				!slices.Equal(cl.Session.Addresses, []string{c.addr}) || cl.Session.Remote != "10.0.0.1:4433" ||
				cl.Session.Fingerprint != st.Certificate.Fingerprint || cs.Certificate.Fingerprint != s.Fingerprint {
				t.Errorf("%s's status: %+v session %+v", c.name, cl, cl.Session)
			}
		}
	})

	t.Run("nothing running", func(t *testing.T) {
		l := l.With(t)
		out, code := e2eCtl(l, star.Router, "status", "--dev", "qt0")
		if code != 1 || !strings.Contains(out, "no quictun running with --dev qt0 in this network namespace") {
			t.Errorf("status --dev qt0 where nothing runs: exit %d\n%s", code, out)
		}
		out, code = e2eCtl(l, star.Router, "kick", "c1")
		if code != 1 || !strings.Contains(out, "no quictun is running in this network namespace") {
			t.Errorf("kick where nothing runs: exit %d\n%s", code, out)
		}
		out, code = e2eCtl(l, srvNS, "status", "--dev", "qt1")
		if code != 1 || !strings.Contains(out, "no quictun running with --dev qt1") {
			t.Errorf("status --dev qt1 next to a server on qt0: exit %d\n%s", code, out)
		}
	})

	t.Run("figures", func(t *testing.T) {
		l := l.With(t)
		const up, down = 8 * e2eMB, 4 * e2eMB
		s0 := e2eMustSession(t, e2eStatus(l, srvNS), "c1")
		k0 := e2eStatus(l, c1NS).Client.Session
		l.MustTransfer(c1NS, srvNS, "10.77.0.1:5001", up)
		l.MustTransfer(srvNS, c1NS, "10.77.0.11:5002", down)
		s1 := e2eMustSession(t, e2eStatus(l, srvNS), "c1")
		k1 := e2eStatus(l, c1NS).Client.Session
		// IP packets count with their headers: about 4 % over the TCP
		// payload at this MTU, and the other transfer's ACKs come on top.
		e2eWithin(t, "server: bytes received from c1", s1.RxBytes-s0.RxBytes, up, 0.08)
		e2eWithin(t, "client c1: bytes sent", k1.TxBytes-k0.TxBytes, up, 0.08)
		e2eWithin(t, "server: bytes sent to c1", s1.TxBytes-s0.TxBytes, down, 0.15)
		e2eWithin(t, "client c1: bytes received", k1.RxBytes-k0.RxBytes, down, 0.15)
		if min := uint64(up / 1414); s1.RxPackets-s0.RxPackets < min {
			t.Errorf("server: %d packets from c1 for %d bytes, want at least %d", s1.RxPackets-s0.RxPackets, up, min)
		}

		// Pings of a known size, counted exactly: 20 echo requests of 1028
		// bytes arrive, 20 replies leave.
		s0, k0 = s1, k1
		l.PingAll(c1NS, "10.77.0.1", 20, "-s", "1000")
		s1 = e2eMustSession(t, e2eStatus(l, srvNS), "c1")
		k1 = e2eStatus(l, c1NS).Client.Session
		for _, d := range []struct {
			what       string
			pkts, byts uint64
		}{
			{"server rx from c1", s1.RxPackets - s0.RxPackets, s1.RxBytes - s0.RxBytes},
			{"server tx to c1", s1.TxPackets - s0.TxPackets, s1.TxBytes - s0.TxBytes},
			{"client c1 tx", k1.TxPackets - k0.TxPackets, k1.TxBytes - k0.TxBytes},
			{"client c1 rx", k1.RxPackets - k0.RxPackets, k1.RxBytes - k0.RxBytes},
		} {
			// A stray packet (ND, a retransmitted FIN) may cross meanwhile.
			if d.pkts < 20 || d.pkts > 22 || d.byts < 20*1028 || d.byts > 20*1028+2*1500 {
				t.Errorf("%s during 20 pings of 1028 bytes: %d packets, %d bytes", d.what, d.pkts, d.byts)
			}
		}

		out, code := e2eCtl(l, srvNS, "status")
		if code != 0 {
			t.Fatalf("status: exit %d\n%s", code, out)
		}
		t.Logf("quictun status on the server:\n%s", out)
		for _, want := range []string{"server qt0 (tun), listening on 10.0.0.1:4433", "session c1\n", "session c2\n",
			"addresses:    10.77.0.11/24\n", "sent:", "MiB in", "received:", "cert expires:"} {
			if !strings.Contains(out, want) {
				t.Errorf("quictun status lacks %q", want)
			}
		}
		out, code = e2eCtl(l, c1NS, "status")
		t.Logf("quictun status on client1:\n%s", out)
		if code != 0 || !strings.Contains(out, "client qt0 (tun), server 10.0.0.1:4433") || !strings.Contains(out, "state:       up since") {
			t.Errorf("quictun status on client1: exit %d", code)
		}
	})

	t.Run("drops by reason", func(t *testing.T) {
		l := l.With(t)
		st := e2eStatus(l, srvNS)
		spoofed0, noRoute0 := e2eMustSession(t, st, "c1").Drops["spoofed"], st.Server.Drops["no_route"]
		// client1 sends from an address that is not its own…
		l.Must(c1NS, "ip", "addr", "add", "10.77.0.99/32", "dev", "qt0")
		nsPing(c1NS, "-c", "3", "-i", "0.2", "-W", "1", "-I", "10.77.0.99", "10.77.0.1")
		l.Must(c1NS, "ip", "addr", "del", "10.77.0.99/32", "dev", "qt0")
		// …and the server's kernel sends to a tunnel address nobody has.
		nsPing(srvNS, "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.55")
		st = e2eStatus(l, srvNS)
		if got := e2eMustSession(t, st, "c1").Drops["spoofed"] - spoofed0; got != 3 {
			t.Errorf("c1's spoofed drops grew by %d for 3 spoofed pings", got)
		}
		if got := st.Server.Drops["no_route"] - noRoute0; got != 2 {
			t.Errorf("the server's no_route drops grew by %d for 2 pings to 10.77.0.55", got)
		}
		if d := e2eMustSession(t, st, "c2").Drops; d["spoofed"] != 0 {
			t.Errorf("c2's session shows spoofed drops it did not cause: %v", d)
		}
		out, _ := e2eCtl(l, srvNS, "status", "--dev", "qt0")
		if !strings.Contains(out, "no_route ") || !strings.Contains(out, "spoofed ") {
			t.Errorf("quictun status does not show the drops:\n%s", out)
		}
	})

	t.Run("a client before its first connection", func(t *testing.T) {
		l := l.With(t)
		// --dev names the device, so the socket is there while the client
		// still dials a port where nothing answers.
		p := l.StartQuictun(c2NS, "client-dialling", "connect", "--server", "10.0.0.1:4999",
			"--cert", "pki/c2.crt", "--key", "pki/c2.key", "--ca", "pki/ca.crt", "--dev", "qt9")
		var st control.Status
		deadline := time.Now().Add(10 * time.Second)
		for {
			// Until the process has started, nothing listens.
			if _, code := e2eCtl(l, c2NS, "status", "--dev", "qt9"); code == 0 {
				st = e2eStatus(l, c2NS, "--dev", "qt9")
			}
			if st.Client != nil && st.Client.LastError != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if st.PID != p.Pid() || st.Client == nil || st.Client.State != "connecting" || st.Client.LastError == "" ||
			st.Client.Session != nil || st.Mode != "" || st.Client.Server != "10.0.0.1:4999" {
			t.Errorf("a client that never connected: %+v %+v", st, st.Client)
		}
		out, code := e2eCtl(l, c2NS, "status")
		t.Logf("quictun status with two clients in one namespace:\n%s", out)
		if code != 0 || !strings.Contains(out, "client qt0 (tun)") || !strings.Contains(out, "client qt9 (mode not known yet), server 10.0.0.1:4999") {
			t.Errorf("status without --dev in a namespace with two quictun processes: exit %d", code)
		}
		out, code = e2eCtl(l, c2NS, "reload")
		if code != 2 || !strings.Contains(out, "several quictun processes run in this network namespace (devices qt0, qt9): choose one with --dev") {
			t.Errorf("reload without --dev next to two processes: exit %d\n%s", code, out)
		}
		p.Stop(syscall.SIGTERM, nsStopTimeout)
	})

	t.Run("reload without a configuration file", func(t *testing.T) {
		l := l.With(t)
		before := e2eMustSession(t, e2eStatus(l, srvNS), "c1").ConnectedAt
		for _, d := range []struct {
			ns string
			p  *nsProc
		}{{srvNS, srv}, {c1NS, c1}} {
			out, code := e2eCtl(l, d.ns, "reload")
			if code != 1 || !strings.Contains(out, "reload failed: nothing to reload: this quictun was started without a configuration file") {
				t.Errorf("reload of %s: exit %d, want 1 with the reason\n%s", d.p.name, code, out)
			}
			if !d.p.WaitOutput(`msg="reload failed" via="control socket"`, 5*time.Second) {
				t.Errorf("%s did not log the failed reload:\n%s", d.p.name, d.p.Dump())
			}
			if d.p.Exited() {
				t.Fatalf("%s exited on reload:\n%s", d.p.name, d.p.Dump())
			}
		}
		l.PingAll(c1NS, "10.77.0.1", 3)
		if after := e2eMustSession(t, e2eStatus(l, srvNS), "c1").ConnectedAt; !after.Equal(before) {
			t.Errorf("c1's session was replaced by the reload (connected %v, now %v)", before, after)
		}
	})

	t.Run("not for other users", func(t *testing.T) {
		l := l.With(t)
		// A copy nobody may run (the build directory is root's alone).
		dir, err := os.MkdirTemp("", "quictun-e2e-ctl-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		b, err := os.ReadFile(l.Quictun())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "quictun"), b, 0o755)
		}
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
		out, err := nsRun(srvNS, nsCmdTimeout, "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--",
			filepath.Join(dir, "quictun"), "status", "--dev", "qt0")
		if err == nil || !strings.Contains(out, "permission denied") || !strings.Contains(out, "sudo") {
			t.Errorf("status as nobody: %v, want a refusal that says to use sudo\n%s", err, out)
		} else {
			t.Logf("as nobody: %s", strings.TrimSpace(out))
		}
		if !srv.WaitOutput("control request refused", 5*time.Second) {
			t.Errorf("the server did not log the refusal")
		}
	})

	t.Run("kick", func(t *testing.T) {
		l := l.With(t)
		st := e2eStatus(l, srvNS)
		c1Before, c2Before := e2eMustSession(t, st, "c1").ConnectedAt, e2eMustSession(t, st, "c2").ConnectedAt

		out, code := e2eCtl(l, srvNS, "kick", "nobody")
		if code != 1 || !strings.Contains(out, `no client "nobody" is connected (connected: c1, c2)`) {
			t.Errorf("kick nobody: exit %d\n%s", code, out)
		}
		out, code = e2eCtl(l, c1NS, "kick", "c1")
		if code != 1 || !strings.Contains(out, "this quictun is not a server") {
			t.Errorf("kick on a client: exit %d\n%s", code, out)
		}

		out, code = e2eCtl(l, srvNS, "kick", "c1")
		if code != 0 || !strings.Contains(out, "kicked c1") {
			t.Fatalf("kick c1: exit %d\n%s", code, out)
		}
		if !srv.WaitOutput(`msg="client kicked: closing its session" peer=c1`, 5*time.Second) {
			t.Errorf("the server did not log the kick:\n%s", srv.Dump())
		}
		if !c1.WaitOutput(`msg="tunnel down" reason="kicked by the server's administrator"`, 5*time.Second) {
			t.Errorf("client1 did not log why its tunnel went down:\n%s", c1.Dump())
		}
		// The session ends; client1 redials and gets a new one.
		deadline := time.Now().Add(10 * time.Second)
		var s *control.Session
		for {
			s = e2eSession(e2eStatus(l, srvNS), "c1")
			if s != nil && s.ConnectedAt.After(c1Before) || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if s == nil || !s.ConnectedAt.After(c1Before) {
			t.Fatalf("10 s after the kick the server lists c1 as %+v, want a new session (the old one began %v)", s, c1Before)
		}
		if now := e2eMustSession(t, e2eStatus(l, srvNS), "c2").ConnectedAt; !now.Equal(c2Before) {
			t.Errorf("kicking c1 replaced c2's session")
		}
		cs := e2eStatus(l, c1NS).Client
		if !strings.Contains(cs.LastError, "kicked") {
			t.Errorf("client1's last error %q does not say it was kicked", cs.LastError)
		}
		l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	})

	t.Run("sockets gone on exit", func(t *testing.T) {
		l := l.With(t)
		for _, p := range []*nsProc{c2, c1, srv} {
			if code, ok := p.Stop(syscall.SIGTERM, nsStopTimeout); !ok || code != 0 {
				t.Errorf("%s: exit %d (in time: %v)", p.name, code, ok)
			}
		}
		for _, ns := range []string{srvNS, c1NS, c2NS} {
			if out, code := e2eCtl(l, ns, "status"); code != 1 || !strings.Contains(out, "no quictun is running") {
				t.Errorf("status in %s after the process stopped: exit %d\n%s", ns, code, out)
			}
		}
	})
}
