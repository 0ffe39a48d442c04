package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// e2eNotifyMsg is one sd_notify datagram and the PID that sent it.
type e2eNotifyMsg struct {
	text   string
	pid    int32
	frozen bool // the sender was stopped on arrival (e2eNotifySocket.freeze)
}

// e2eNotifySocket is a stand-in for systemd's notify socket: a Unix
// datagram socket that learns each sender's PID (SO_PASSCRED), as systemd
// does to accept messages from the main process only (NotifyAccess=main).
type e2eNotifySocket struct {
	path string
	msgs chan e2eNotifyMsg
	// freeze, when set, is a PID that gets SIGSTOP the moment a READY=1
	// arrives from it, so the test sees the state READY=1 was sent in,
	// not a moment later; the test sends SIGCONT.
	freeze atomic.Int32
}

func e2eListenNotify(t *testing.T, dir, name string) *e2eNotifySocket {
	t.Helper()
	path := filepath.Join(dir, name)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	// Writable by the unprivileged service user, as systemd's is.
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	s := &e2eNotifySocket{path: path, msgs: make(chan e2eNotifyMsg, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		for {
			n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
			if err != nil {
				return
			}
			m := e2eNotifyMsg{text: string(buf[:n]), pid: -1}
			if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(cmsgs) > 0 {
				if cred, err := unix.ParseUnixCredentials(&cmsgs[0]); err == nil {
					m.pid = cred.Pid
				}
			}
			if pid := s.freeze.Load(); pid > 0 && pid == m.pid && strings.Contains("\n"+m.text+"\n", "\nREADY=1\n") {
				syscall.Kill(int(pid), syscall.SIGSTOP)
				m.frozen = true
			}
			select {
			case s.msgs <- m:
			default: // a flood from a broken process; the test fails on what it misses
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// waitFor returns the first message that has the line want, failing the
// test if none comes within timeout; it and the messages before it are
// appended to seen.
func (s *e2eNotifySocket) waitFor(t *testing.T, want string, timeout time.Duration, seen *[]e2eNotifyMsg) e2eNotifyMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-s.msgs:
			*seen = append(*seen, m)
			if strings.Contains("\n"+m.text+"\n", "\n"+want+"\n") {
				return m
			}
		case <-deadline:
			t.Fatalf("no %s on %s within %v", want, s.path, timeout)
			return e2eNotifyMsg{}
		}
	}
}

// e2eServiceUser is the user the e2e systemd tests run quictun as, like a
// unit's DynamicUser=: nobody.
const e2eServiceUser = 65534

// e2eAsService returns the command line that runs quictun args… as
// contrib/systemd's units do: NOTIFY_SOCKET set, an unprivileged user
// keeping only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE (AmbientCapabilities=,
// CapabilityBoundingSet=), no new privileges. env and setpriv exec, so the
// PID is quictun's.
//
// The service user opens /dev/net/tun itself, which distributions make
// mode 0666 (CAP_NET_ADMIN does not pass file permissions); some machines
// (this project's VMs among them) have it 0600. So the process runs in a
// mount namespace of its own with a /dev/net that holds a 0666 node of
// the same device: nothing of the host's /dev changes, and the node goes
// with the namespace. unshare and sh exec, so the PID stays quictun's.
func e2eAsService(bin, notify string, args ...string) []string {
	caps := "+net_admin,+net_bind_service"
	return append([]string{"unshare", "--mount", "sh", "-c",
		`mount -t tmpfs -o mode=0755 quictun-e2e /dev/net && mknod -m 0666 /dev/net/tun c 10 200 && exec "$@"`, "sh",
		"env", "NOTIFY_SOCKET=" + notify,
		"setpriv", fmt.Sprintf("--reuid=%d", e2eServiceUser), fmt.Sprintf("--regid=%d", e2eServiceUser), "--clear-groups",
		"--inh-caps=" + caps, "--ambient-caps=" + caps, "--bounding-set=-all," + caps, "--no-new-privs",
		bin, "--log-level", e2eLogLevel()}, args...)
}

// e2eProcStatus returns a field of /proc/<pid>/status.
func e2eProcStatus(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

// TestE2ESystemdNotify runs a server and a client the way
// contrib/systemd's Type=notify units do (an unprivileged user with
// CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, credentials in a directory of its
// own, NOTIFY_SOCKET) and checks the notify protocol end to end: a client
// started while the server is down sends no READY=1; the server's READY=1
// comes once it listens (on port 443, which needs CAP_NET_BIND_SERVICE)
// with its device up; the client's once its device is configured and the
// tunnel carries a ping at once; every message from the quictun process
// itself (systemd's NotifyAccess=main), also after --low-latency's
// re-exec; STOPPING=1 on SIGTERM, after which each removes its device and
// exits 0, still without root.
func TestE2ESystemdNotify(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		stop := t.Skipf
		if os.Getenv("QUICTUN_E2E") == "1" {
			stop = t.Fatalf
		}
		stop("needs setpriv (Debian package util-linux): %v", err)
	}
	l := nsNewLab(t, "sdn")
	star := l.Star(1)
	srvNS, cNS := star.Server, star.Clients[0]
	l.Cert("ca", "--dir", "pki", "--name", "E2E systemd CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24")

	// A directory the service user can traverse: the binary (as in
	// /usr/local/bin), one credentials directory per service owned by
	// that user (as LoadCredential= makes), the notify sockets.
	dir, err := os.MkdirTemp("", "qt-sdn-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "quictun")
	e2eCopyFile(t, l.Quictun(), bin, 0o755)
	creds := func(service string, files map[string]string) string {
		cd := filepath.Join(dir, service+".cred")
		if err := os.Mkdir(cd, 0o500); err != nil {
			t.Fatal(err)
		}
		for dst, src := range files {
			e2eCopyFile(t, l.Path("pki", src), filepath.Join(cd, dst), 0o400)
			if err := os.Chown(filepath.Join(cd, dst), e2eServiceUser, e2eServiceUser); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(cd, e2eServiceUser, e2eServiceUser); err != nil {
			t.Fatal(err)
		}
		return cd
	}
	srvCred := creds("server", map[string]string{"server.crt": "server.crt", "server.key": "server.key", "ca.crt": "ca.crt"})
	cCred := creds("client", map[string]string{"client.crt": "c1.crt", "client.key": "c1.key", "ca.crt": "ca.crt"})
	srvNotify := e2eListenNotify(t, dir, "server.notify")
	cNotify := e2eListenNotify(t, dir, "client.notify")

	// The client first: it keeps redialling, and must not say READY=1.
	client := l.Start(cNS, "client", e2eAsService(bin, cNotify.path, "connect", "--server", "10.0.0.1:443", "--dev", "qt0",
		"--cert", cCred+"/client.crt", "--key", cCred+"/client.key", "--ca", cCred+"/ca.crt")...)
	cNotify.freeze.Store(int32(client.Pid()))
	var cSeen []e2eNotifyMsg
	cNotify.waitFor(t, "STATUS=connecting to 10.0.0.1:443", 10*time.Second, &cSeen)
	for _, m := range cSeen {
		if strings.Contains(m.text, "READY=1") {
			t.Fatalf("the client sent READY=1 before it dialled: %q", m.text)
		}
	}
	early := time.After(1500 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case m := <-cNotify.msgs:
			cSeen = append(cSeen, m)
			if strings.Contains(m.text, "READY=1") {
				t.Fatalf("the client sent READY=1 while the server was down: %q", m.text)
			}
		case <-early:
			waiting = false
		}
	}
	if client.Exited() {
		t.Fatalf("the client exited while the server was down:\n%s", client.Dump())
	}

	server := l.Start(srvNS, "server", e2eAsService(bin, srvNotify.path, "listen", "--listen", "10.0.0.1:443",
		"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24",
		"--cert", srvCred+"/server.crt", "--key", srvCred+"/server.key", "--ca", srvCred+"/ca.crt")...)
	srvNotify.freeze.Store(int32(server.Pid()))
	var srvSeen []e2eNotifyMsg
	ready := srvNotify.waitFor(t, "READY=1", 15*time.Second, &srvSeen)
	// The server is stopped where it sent READY=1: its device must be up
	// with its address by then.
	e2eCheckReadyDevice(t, l, server, ready, srvNS, "10.77.0.1/24")
	if !strings.Contains(ready.text, "STATUS=listening on 10.0.0.1:443, device qt0") {
		t.Errorf("server READY=1 without its status line: %q", ready.text)
	}

	ready = cNotify.waitFor(t, "READY=1", 15*time.Second, &cSeen)
	e2eCheckReadyDevice(t, l, client, ready, cNS, "10.77.0.11/24")
	if out, err := l.Run(cNS, "ping", "-c", "1", "-W", "2", "10.77.0.1"); err != nil {
		t.Errorf("client READY=1, but the tunnel does not carry a ping at once: %v\n%s", err, out)
	}
	if !strings.Contains(ready.text, "STATUS=tunnel up to 10.0.0.1:443") {
		t.Errorf("client READY=1 without its status line: %q", ready.text)
	}

	for _, p := range []*nsProc{server, client} {
		// The credentials of a unit's process, read where systemd would
		// not be needed to read them.
		if uid := e2eProcStatus(t, p.Pid(), "Uid"); strings.Fields(uid)[0] != strconv.Itoa(e2eServiceUser) {
			t.Errorf("%s runs as uid %s, want %d", p.name, uid, e2eServiceUser)
		}
		capEff, err := strconv.ParseUint(e2eProcStatus(t, p.Pid(), "CapEff"), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint64(1)<<unix.CAP_NET_ADMIN | 1<<unix.CAP_NET_BIND_SERVICE; capEff != want {
			t.Errorf("%s has effective capabilities %#x, want %#x (CAP_NET_ADMIN, CAP_NET_BIND_SERVICE)", p.name, capEff, want)
		}
	}

	// SIGTERM: STOPPING=1, then a clean exit that removes the device.
	for _, d := range []struct {
		p    *nsProc
		ns   string
		sock *e2eNotifySocket
		seen *[]e2eNotifyMsg
	}{{client, cNS, cNotify, &cSeen}, {server, srvNS, srvNotify, &srvSeen}} {
		if err := d.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		d.sock.waitFor(t, "STOPPING=1", 5*time.Second, d.seen)
		if code, exited := d.p.Wait(10 * time.Second); !exited || code != 0 {
			t.Errorf("%s after SIGTERM: exit code %d, exited %v:\n%s", d.p.name, code, exited, d.p.Dump())
		}
		if l.LinkExists(d.ns, "qt0") {
			t.Errorf("%s left qt0 behind", d.p.name)
		}
	}

	// NotifyAccess=main: systemd takes messages from the main PID only.
	for _, d := range []struct {
		p    *nsProc
		seen []e2eNotifyMsg
	}{{server, srvSeen}, {client, cSeen}} {
		for _, m := range d.seen {
			if int(m.pid) != d.p.Pid() {
				t.Errorf("%s: %q came from PID %d, not the service's PID %d", d.p.name, m.text, m.pid, d.p.Pid())
			}
		}
		t.Logf("%s sent %d messages, the first %q", d.p.name, len(d.seen), d.seen[0].text)
	}
}

// e2eCheckReadyDevice checks, while p is stopped where it sent READY=1,
// that its device qt0 in ns is up with addr, then lets p go on.
func e2eCheckReadyDevice(t *testing.T, l *nsLab, p *nsProc, ready e2eNotifyMsg, ns, addr string) {
	t.Helper()
	if !ready.frozen {
		t.Fatalf("%s: READY=1 from PID %d, not from the service's PID %d", p.name, ready.pid, p.Pid())
	}
	defer p.cmd.Process.Signal(syscall.SIGCONT)
	addrs, err := l.Run(ns, "ip", "-o", "addr", "show", "dev", "qt0")
	if err != nil || !strings.Contains(addrs, " "+addr+" ") {
		t.Errorf("%s sent READY=1 before qt0 had %s: %v %s", p.name, addr, err, addrs)
	}
	link, err := l.Run(ns, "ip", "-o", "link", "show", "dev", "qt0")
	if err != nil || !strings.Contains(link, ",UP") {
		t.Errorf("%s sent READY=1 before qt0 was up: %v %s", p.name, err, link)
	}
}

// e2eCopyFile copies src to dst with mode.
func e2eCopyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode); err != nil {
		t.Fatal(err)
	}
}
