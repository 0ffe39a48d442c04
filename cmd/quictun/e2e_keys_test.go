package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestE2EEncryptedKeys runs a tunnel whose keys are all encrypted: a CA
// made with cert ca --encrypt signs (its passphrase from a file), the
// server's and a client's keys come from cert issue --encrypt, another
// client's key is encrypted by OpenSSL's default (PBKDF2, AES-256-CBC),
// and listen and connect read the passphrases from --key-passphrase-file
// as a systemd credential would give them. A wrong passphrase (to cert
// issue, to connect) and a key file open to others are one line each,
// exit status 2: the server refuses such a key, the client warns and
// connects.
func TestE2EEncryptedKeys(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "openssl")
	l := nsNewLab(t, "keys")
	star := l.Star(2)
	srvNS, c1NS, c2NS := star.Server, star.Clients[0], star.Clients[1]

	secret := func(name, content string) {
		if err := os.WriteFile(l.Path(name), []byte(content+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	secret("ca.pass", "the CA passphrase")
	secret("server.pass", "the server passphrase")
	secret("c1.pass", "the c1 passphrase")
	secret("c2.pass", "the c2 passphrase")
	secret("wrong.pass", "not the c1 passphrase")

	l.Cert("ca", "--dir", "pki", "--name", "E2E Keys CA", "--encrypt", "--passphrase-file", "ca.pass")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1",
		"--passphrase-file", "ca.pass", "--encrypt", "--key-passphrase-file", "server.pass")
	l.Cert("issue", "--dir", "pki", "--name", "c1", "--ip", "10.77.0.11/24",
		"--passphrase-file", "ca.pass", "--encrypt", "--key-passphrase-file", "c1.pass")
	l.Cert("issue", "--dir", "pki", "--name", "c2", "--ip", "10.77.0.12/24", "--passphrase-file", "ca.pass")
	// OpenSSL 3's default encryption of a PKCS#8 key (what genpkey -aes256
	// writes too), left mode 0644 as a careless copy would be.
	l.Host("openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", "pki/c2.key", "-out", "pki/c2-openssl.key", "-passout", "file:c2.pass")
	if out := l.Host("openssl", "asn1parse", "-in", "pki/c2-openssl.key"); !strings.Contains(out, ":PBKDF2") {
		t.Fatalf("openssl did not write a PBKDF2 key:\n%s", out)
	}
	if err := os.Chmod(l.Path("pki", "c2-openssl.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The server's key as a careless copy.
	b, err := os.ReadFile(l.Path("pki", "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.Path("pki", "open-server.key"), b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The quictun binary itself: a wrong CA passphrase is one line on
	// stderr and exit status 2, and nothing is written.
	t.Run("cert issue with a wrong CA passphrase", func(t *testing.T) {
		cmd := exec.Command(l.Quictun(), "cert", "issue", "--dir", "pki", "--name", "c9", "--passphrase-file", "wrong.pass")
		cmd.Dir = l.Path()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("exit %v, want status 2", err)
		}
		if got, want := stdout.String()+stderr.String(), "quictun: wrong passphrase for pki/ca.key\n"; got != want {
			t.Errorf("output %q, want exactly %q", got, want)
		}
		if _, err := os.Stat(l.Path("pki", "c9.crt")); err == nil {
			t.Error("c9.crt was written")
		}
	})

	// failsWith runs quictun, which must exit 2 at once with the error
	// line want.
	failsWith := func(t *testing.T, ns, name, want string, args ...string) {
		l := l.With(t)
		code, stderr, exited := l.RunQuictun(ns, name, e2eRejectTimeout, args...)
		switch line := e2eErrorLine(stderr); {
		case !exited:
			t.Errorf("%s still running after %v", name, e2eRejectTimeout)
		case code != 2:
			t.Errorf("%s exited %d, want 2 (a restart cannot fix it)\n%s", name, code, stderr)
		case line != want:
			t.Errorf("%s: error line\n%q, want\n%q", name, line, want)
		}
	}
	listen := func(extra ...string) []string {
		return e2eListenArgs(append([]string{"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24"}, extra...)...)
	}

	t.Run("server refuses a key open to others", func(t *testing.T) {
		failsWith(t, srvNS, "open-key", "quictun: --key: private key file is open to others: pki/open-server.key has mode 0644, so others than its owner may read it: run `chmod 600 pki/open-server.key`",
			append(listen("--key-passphrase-file", "server.pass"), "--key", "pki/open-server.key")...)
	})
	t.Run("server without its passphrase", func(t *testing.T) {
		failsWith(t, srvNS, "no-pass", "quictun: pki/server.key is encrypted and standard input is not a terminal to ask its passphrase on: give it with --key-passphrase-file FILE",
			listen()...)
	})

	server := l.StartQuictun(srvNS, "server", listen("--key-passphrase-file", "server.pass")...)
	l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0", "--key-passphrase-file", "c1.pass")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)

	t.Run("client with OpenSSL's encrypted key open to others", func(t *testing.T) {
		l := l.With(t)
		c2 := l.StartQuictun(c2NS, "client2", e2eConnectArgs("c2", "--dev", "qt0", "--key", "pki/c2-openssl.key", "--key-passphrase-file", "c2.pass")...)
		l.WaitPing(c2NS, "10.77.0.1", nsPingTimeout)
		l.PingAll(c2NS, "10.77.0.11", 3) // through the hub to client1
		want := "run `chmod 600 pki/c2-openssl.key`"
		if !c2.WaitOutput(want, 0) || !strings.Contains(c2.Stderr(), "the private key of --key is open to others") {
			t.Errorf("client2 did not warn about its key file with %q:\n%s", want, c2.Dump())
		}
	})

	t.Run("client with a wrong passphrase", func(t *testing.T) {
		failsWith(t, c2NS, "wrong-pass", "quictun: wrong passphrase for pki/c1.key",
			e2eConnectArgs("c1", "--dev", "qtw0", "--key-passphrase-file", "wrong.pass")...)
	})

	if server.Exited() {
		t.Fatalf("the server exited:\n%s", server.Dump())
	}
	l.PingAll(c1NS, "10.77.0.1", 2)
}
