package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// e2eRevokeBound is the bound: the session of a client revoked on
// a running server ends within a second of the reload (or of the CRL
// file being replaced).
const e2eRevokeBound = time.Second

// e2eRevokedLine is what a revoked client says when it exits.
var e2eRevokedLine = regexp.MustCompile(`^quictun: .*certificate is revoked`)

// e2eLogTime returns the time= of a slog text line.
func e2eLogTime(t *testing.T, line string) time.Time {
	t.Helper()
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, "time="); ok {
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatalf("log line %q: time %q: %v", line, v, err)
			}
			return ts
		}
	}
	t.Fatalf("log line without time=: %q", line)
	return time.Time{}
}

// e2eRevokedExit checks that client p ended its tunnel because its
// certificate was revoked within e2eRevokeBound of since (by the time of
// its "tunnel down" log line), and then exited with status 2 saying so.
func e2eRevokedExit(t *testing.T, p *nsProc, since time.Time) {
	t.Helper()
	code, exited := p.Wait(e2eRejectTimeout)
	if !exited {
		t.Fatalf("%s still running %v after its certificate was revoked:\n%s", p.name, e2eRejectTimeout, p.Dump())
	}
	line := e2eErrorLine(p.Stderr())
	if code != 2 || !e2eRevokedLine.MatchString(line) {
		t.Errorf("%s exited %d with %q; want exit status 2 (not restarted by systemd) saying the certificate is revoked", p.name, code, line)
	}
	down := roamLines(p, "tunnel down", `reason="certificate revoked"`)
	if len(down) != 1 {
		t.Fatalf("%s logged %d×\"tunnel down\" reason=\"certificate revoked\", want 1:\n%s", p.name, len(down), p.Stderr())
	}
	el := e2eLogTime(t, down[0]).Sub(since)
	t.Logf("%s: tunnel down %v after the revocation, then exit %d: %s", p.name, el.Round(time.Millisecond), code, line)
	if el > e2eRevokeBound {
		t.Errorf("%s's session ended %v after the revocation, want within %v", p.name, el.Round(time.Millisecond), e2eRevokeBound)
	}
	if n := roamCount(p, "tunnel up"); n != 1 {
		t.Errorf("%s logged %d×\"tunnel up\", want 1: a revoked client must not come back", p.name, n)
	}
}

// TestE2ERevoke revokes connected clients on a running TUN server
// (`listen --config` with `crl = …`): once by pointing the crl key at a
// new CRL and running `quictun reload`, once by `quictun cert revoke`
// rewriting the CRL file the server watches. Each time the revoked
// client's session ends within a second and the client exits non-zero
// saying its certificate is revoked, while another client's TCP transfer
// through the tunnel goes on and ends intact. Then a revoked client is
// kept out: a new client process (a fresh handshake), and a client that
// had a TLS session ticket and resumes it with a restarted server (the
// certificate revoked while the server was gone).
func TestE2ERevoke(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "tc", "ss")
	l := nsNewLab(t, "rvk")
	star := l.Star(3)
	srvNS, aNS, bNS, cNS := star.Server, star.Clients[0], star.Clients[1], star.Clients[2]

	l.Cert("ca", "--dir", "pki", "--name", "E2E Revoke CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	for i, n := range []string{"c1", "c2", "c3"} {
		l.Cert("issue", "--dir", "pki", "--name", n, "--ip", fmt.Sprintf("10.77.0.%d/24", 11+i))
	}
	l.Cert("crl", "--dir", "pki") // nobody revoked yet
	serverFile := l.Path("server.toml")
	writeConfig := func(crl string) {
		t.Helper()
		content := fmt.Sprintf(`listen = "10.0.0.1:4433"
cert = "pki/server.crt"
key = "pki/server.key"
ca = "pki/ca.crt"
dev = "qt0"
ip = ["10.77.0.1/24"]
crl = %q
`, crl)
		if err := os.WriteFile(serverFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("pki/crl.pem")
	srv := l.StartQuictun(srvNS, "server", "listen", "--config", serverFile)
	if !roamWaitLines(srv, 1, 10*time.Second, "CRL loaded", "revoked=0") {
		t.Fatalf("the server did not log the CRL it loaded:\n%s", srv.Dump())
	}
	a := l.StartQuictun(aNS, "clientA", e2eConnectArgs("c1", "--dev", "qt0")...)
	b := l.StartQuictun(bNS, "clientB", e2eConnectArgs("c2", "--dev", "qt0")...)
	c := l.StartQuictun(cNS, "clientC", e2eConnectArgs("c3", "--dev", "qt0")...)
	for _, ns := range []string{aNS, bNS, cNS} {
		l.WaitPing(ns, "10.77.0.1", nsPingTimeout)
	}
	roamShape(l, bNS, "qt0")

	t.Run("reload", func(t *testing.T) {
		l := l.With(t)
		// The new CRL goes to another directory, so that only the reload
		// (which switches the crl key to it) can bring it in: the file the
		// server watches does not change.
		l.Host("cp", "-a", "pki", "pki-next")
		out := l.Cert("revoke", "--dir", "pki-next", "--name", "c1", "--reason", "keyCompromise")
		t.Logf("cert revoke: %s", strings.TrimSpace(out))
		x := roamStartTransfer(l, bNS, srvNS, "10.77.0.1", "5001")
		time.Sleep(500 * time.Millisecond)
		x.Running(t, "the reload")
		writeConfig("pki-next/crl.pem")
		start := time.Now()
		out = l.Must(srvNS, l.Quictun(), "reload")
		t.Logf("quictun reload: %s (%v)", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
		e2eRevokedExit(t, a, start)
		if !roamWaitLines(srv, 1, 5*time.Second, "closing the session of a revoked certificate", "peer=c1") {
			t.Errorf("the server did not log closing c1's session:\n%s", srv.Stderr())
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "CRL loaded", "pki-next/crl.pem", "revoked=1", "added=1") {
			t.Errorf("the server did not log the new CRL:\n%s", srv.Stderr())
		}
		x.Running(t, "client A was dropped")
		l.PingAll(cNS, "10.77.0.1", 3)
		x.Wait(t)
		roamAlive(t, srv, b, c)
	})

	t.Run("file replaced", func(t *testing.T) {
		l := l.With(t)
		x := roamStartTransfer(l, bNS, srvNS, "10.77.0.1", "5002")
		time.Sleep(500 * time.Millisecond)
		x.Running(t, "the revocation")
		// Nothing but the file: cert revoke replaces pki-next/crl.pem.
		start := time.Now()
		l.Cert("revoke", "--dir", "pki-next", "--name", "c3", "--reason", "cessationOfOperation")
		e2eRevokedExit(t, c, start)
		if !roamWaitLines(srv, 1, 5*time.Second, "closing the session of a revoked certificate", "peer=c3") {
			t.Errorf("the server did not log closing c3's session:\n%s", srv.Stderr())
		}
		x.Running(t, "client C was dropped")
		x.Wait(t)
		l.PingAll(bNS, "10.77.0.1", 3)
		roamAlive(t, srv, b)
	})

	t.Run("fresh handshake refused", func(t *testing.T) {
		l := l.With(t)
		code, stderr, exited := l.RunQuictun(aNS, "clientA-again", e2eRejectTimeout, e2eConnectArgs("c1", "--dev", "qt0")...)
		line := e2eErrorLine(stderr)
		if !exited || code != 2 || !e2eRevokedLine.MatchString(line) {
			t.Errorf("a new client with c1's revoked certificate: exited=%v code %d, %q; want exit status 2 saying it is revoked", exited, code, line)
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "client refused", "peer=c1", `reason="certificate revoked"`, "resumed=false") {
			t.Errorf("the server did not log refusing c1's new handshake:\n%s", srv.Stderr())
		}
		roamAlive(t, srv, b)
	})

	t.Run("resumption refused", func(t *testing.T) {
		l := l.With(t)
		// B holds a session ticket of this server (whose ticket key is
		// derived from its certificate key, so a restarted server takes
		// it). The server dies without telling B, c2 is revoked meanwhile,
		// and the new server must refuse B's resumed handshake.
		if code, _ := srv.Stop(syscall.SIGKILL, nsStopTimeout); code != -1 {
			t.Fatalf("server after SIGKILL: exit code %d, want death by signal", code)
		}
		l.Cert("revoke", "--dir", "pki-next", "--name", "c2")
		srv2 := l.StartQuictun(srvNS, "server2", "listen", "--config", serverFile)
		if !roamWaitLines(srv2, 1, 10*time.Second, "CRL loaded", "revoked=3") {
			t.Fatalf("the new server did not load the CRL with three certificates:\n%s", srv2.Dump())
		}
		// A packet into the tunnel makes B find out (a stateless reset) and redial.
		ping := l.Start(bNS, "clientB-ping", "ping", "-i", "0.2", "-c", "50", "-w", "15", "10.77.0.1")
		code, exited := b.Wait(e2eRejectTimeout)
		ping.Stop(syscall.SIGINT, 5*time.Second)
		if !exited {
			t.Fatalf("client B still running %v after the restart, revoked:\n%s\n%s", e2eRejectTimeout, b.Dump(), srv2.Dump())
		}
		if line := e2eErrorLine(b.Stderr()); code != 2 || !e2eRevokedLine.MatchString(line) {
			t.Errorf("client B exited %d with %q; want exit status 2 saying the certificate is revoked", code, line)
		}
		if !roamWaitLines(srv2, 1, 5*time.Second, "client refused", "peer=c2", `reason="certificate revoked"`, "resumed=true") {
			t.Errorf("the new server did not refuse c2's resumed handshake (want a \"client refused\" line with resumed=true):\n%s", srv2.Stderr())
		}
		if n := roamCount(srv2, "client connected"); n != 0 {
			t.Errorf("the new server let %d clients in; all are revoked", n)
		}
	})
}

// TestE2ERevokeOtherCRLs gives `listen --crl` CRLs made by `openssl ca
// -gencrl` and by `easyrsa gen-crl`: the client each lists is refused
// (non-zero exit, saying it is revoked), the other one connects.
func TestE2ERevokeOtherCRLs(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "openssl")
	l := nsNewLab(t, "rvko")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	// check runs a server with the given PKI files and CRL, and clients
	// revoked (must be refused) and kept (must get through).
	check := func(t *testing.T, name, ca, cert, key, crl string, revoked, kept [2]string, extra ...string) {
		l := l.With(t)
		args := append([]string{"listen", "--listen", "10.0.0.1:4433", "--cert", cert, "--key", key, "--ca", ca,
			"--dev", "qt0", "--ip", "10.77.0.1/24", "--crl", crl}, extra...)
		srv := l.StartQuictun(srvNS, name+"-server", args...)
		if !roamWaitLines(srv, 1, 10*time.Second, "CRL loaded", "revoked=1") {
			t.Fatalf("the server did not load the %s CRL with one certificate:\n%s", name, srv.Dump())
		}
		k := l.StartQuictun(c2NS, name+"-kept", "connect", "--server", "10.0.0.1:4433",
			"--cert", kept[0], "--key", kept[1], "--ca", ca, "--dev", "qt0")
		l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)
		code, stderr, exited := l.RunQuictun(c1NS, name+"-revoked", e2eRejectTimeout, "connect", "--server", "10.0.0.1:4433",
			"--cert", revoked[0], "--key", revoked[1], "--ca", ca, "--dev", "qt0")
		line := e2eErrorLine(stderr)
		if !exited || code != 2 || !e2eRevokedLine.MatchString(line) {
			t.Errorf("the client the %s CRL lists: exited=%v code %d, %q; want exit status 2 saying it is revoked", name, exited, code, line)
		} else {
			t.Logf("the client the %s CRL lists: exit %d: %s", name, code, line)
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "client refused", `reason="certificate revoked"`) {
			t.Errorf("the server did not log the refusal:\n%s", srv.Stderr())
		}
		l.PingAll(c2NS, "10.77.0.1", 3)
		roamAlive(t, srv, k)
		k.Stop(syscall.SIGTERM, nsStopTimeout)
		srv.Stop(syscall.SIGTERM, nsStopTimeout)
	}

	t.Run("openssl ca -gencrl", func(t *testing.T) {
		l := l.With(t)
		e2eOpenSSLPKI(l)
		// A second client, and the CA database openssl ca keeps.
		cnf := "ossl/openssl.cnf"
		l.Host("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "ossl/phone.key")
		l.Host("openssl", "req", "-new", "-config", cnf, "-key", "ossl/phone.key", "-subj", "/CN=phone-openssl", "-out", "ossl/phone.csr")
		l.Host("openssl", "x509", "-req", "-in", "ossl/phone.csr", "-CA", "ossl/ca.crt", "-CAkey", "ossl/ca.key",
			"-CAcreateserial", "-days", "30", "-sha256", "-extfile", cnf, "-extensions", "client", "-out", "ossl/phone.crt")
		l.Host("sh", "-c", "cat > ossl/ca.cnf <<'EOF'\n"+e2eOpenSSLCAConfig+"EOF\n")
		l.Host("touch", "ossl/index.txt")
		l.Host("sh", "-c", "echo 01 > ossl/crlnumber")
		l.Host("openssl", "ca", "-config", "ossl/ca.cnf", "-revoke", "ossl/laptop.crt", "-crl_reason", "keyCompromise")
		l.Host("openssl", "ca", "-config", "ossl/ca.cnf", "-gencrl", "-out", "ossl/crl.pem")
		check(t, "openssl", "ossl/ca.crt", "ossl/server.crt", "ossl/server.key", "ossl/crl.pem",
			[2]string{"ossl/laptop.crt", "ossl/laptop.key"}, [2]string{"ossl/phone.crt", "ossl/phone.key"},
			"--pool", "10.77.0.128/25")
	})

	t.Run("easyrsa gen-crl", func(t *testing.T) {
		l := l.With(t)
		easyrsa := "/usr/share/easy-rsa/easyrsa"
		if p, err := exec.LookPath("easyrsa"); err == nil {
			easyrsa = p
		} else if _, err := os.Stat(easyrsa); err != nil {
			if os.Getenv("QUICTUN_E2E") == "1" {
				t.Fatal("easy-rsa is not installed (apt-get install easy-rsa)")
			}
			t.Skip("easy-rsa is not installed (apt-get install easy-rsa)")
		}
		ersa := func(args ...string) {
			t.Helper()
			l.Host(append([]string{"env", "EASYRSA_PKI=" + l.Path("erpki"), "EASYRSA_BATCH=1", easyrsa}, args...)...)
		}
		ersa("init-pki")
		ersa("--req-cn=E2E easy-rsa CA", "build-ca", "nopass")
		ersa("--subject-alt-name=IP:10.0.0.1", "build-server-full", "server", "nopass")
		ersa("--subject-alt-name=IP:10.77.0.11", "build-client-full", "c1", "nopass")
		ersa("--subject-alt-name=IP:10.77.0.12", "build-client-full", "c2", "nopass")
		// revoke moves the files of c1 away; keep a copy to connect with.
		l.Host("cp", "erpki/issued/c1.crt", "erpki/private/c1.key", ".")
		ersa("revoke", "c1", "keyCompromise")
		ersa("gen-crl")
		check(t, "easy-rsa", "erpki/ca.crt", "erpki/issued/server.crt", "erpki/private/server.key", "erpki/crl.pem",
			[2]string{"c1.crt", "c1.key"}, [2]string{"erpki/issued/c2.crt", "erpki/private/c2.key"})
	})
}
