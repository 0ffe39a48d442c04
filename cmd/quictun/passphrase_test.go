package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	qcrypto "github.com/quictun/quictun/crypto"
)

// noTerminal makes passphrases unaskable for the test (as under systemd or
// in a pipe), whatever the test binary's standard input is.
func noTerminal(t *testing.T) {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	old := terminal
	terminal = f
	t.Cleanup(func() {
		terminal = old
		f.Close()
	})
}

// writeSecret writes a passphrase file, mode 0600, and returns its path.
func writeSecret(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pemType returns the type of the first PEM block of file.
func pemType(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSuffix(strings.TrimPrefix(first, "-----BEGIN "), "-----")
}

// fixed returns a passphrase source giving p.
func fixed(p string) qcrypto.Passphrase {
	return func(string) ([]byte, error) { return []byte(p), nil }
}

func TestCertEncrypt(t *testing.T) {
	noTerminal(t)
	top := t.TempDir()
	dir := filepath.Join(top, "pki")
	file := func(name string) string { return filepath.Join(dir, name) }
	caPass := writeSecret(t, top, "ca.pass", "ca secret\n")
	keyPass := writeSecret(t, top, "laptop1.pass", "laptop secret\r\nthe second line is not the passphrase\n")
	wrongPass := writeSecret(t, top, "wrong.pass", "not the ca secret\n")

	out := mustRunCert(t, "ca", "--dir", dir, "--encrypt", "--passphrase-file", caPass)
	if !strings.Contains(out, "encrypted with the passphrase") {
		t.Errorf("cert ca --encrypt printed %q, want it to say the key is encrypted", out)
	}
	checkMode(t, file("ca.key"), 0o600)
	if got := pemType(t, file("ca.key")); got != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("ca.key is %q, want ENCRYPTED PRIVATE KEY", got)
	}
	if _, err := qcrypto.LoadKeyPair(file("ca.crt"), file("ca.key"), fixed("ca secret")); err != nil {
		t.Fatalf("ca.key does not open with the passphrase of the file's first line: %v", err)
	}
	if openssl, err := exec.LookPath("openssl"); err == nil {
		if out, err := exec.Command(openssl, "pkey", "-in", file("ca.key"), "-passin", "file:"+caPass, "-noout").CombinedOutput(); err != nil {
			t.Errorf("openssl pkey does not open ca.key with --passphrase-file's file: %v\n%s", err, out)
		}
	}

	// A signing command given the CA's passphrase file.
	mustRunCert(t, "issue", "--dir", dir, "--name", "server", "--server", "--host", "10.0.0.1", "--passphrase-file", caPass)
	if got := pemType(t, file("server.key")); got != "PRIVATE KEY" {
		t.Errorf("server.key (no --encrypt) is %q, want PRIVATE KEY", got)
	}

	// The errors are one line, exit status 2, and nothing is written.
	bad := []struct {
		name string
		args []string
		want string // the whole message, or a part of it when it ends in "…"
	}{
		{"wrong CA passphrase", []string{"issue", "--dir", dir, "--name", "c1", "--passphrase-file", wrongPass},
			"wrong passphrase for " + file("ca.key")},
		{"no terminal, no file", []string{"issue", "--dir", dir, "--name", "c1"},
			file("ca.key") + " is encrypted and standard input is not a terminal to ask its passphrase on: give it with --passphrase-file FILE"},
		{"missing passphrase file", []string{"issue", "--dir", dir, "--name", "c1", "--passphrase-file", filepath.Join(top, "nope")},
			"--passphrase-file " + filepath.Join(top, "nope") + " does not exist…"},
		{"empty passphrase file", []string{"issue", "--dir", dir, "--name", "c1", "--passphrase-file", writeSecret(t, top, "empty.pass", "\nsecond\n")},
			"its first line is empty…"},
		{"new key passphrase without --encrypt", []string{"issue", "--dir", dir, "--name", "c1", "--passphrase-file", caPass, "--key-passphrase-file", keyPass},
			"--key-passphrase-file is the passphrase to encrypt the new key with: add --encrypt…"},
		{"--encrypt without a terminal or file", []string{"issue", "--dir", dir, "--name", "c1", "--passphrase-file", caPass, "--encrypt"},
			"encrypting " + file("c1.key") + " needs a passphrase and standard input is not a terminal to ask it on: give it with --key-passphrase-file FILE"},
		{"cert ca --passphrase-file without --encrypt", []string{"ca", "--dir", filepath.Join(top, "pki2"), "--passphrase-file", caPass},
			"--passphrase-file is the passphrase to encrypt ca.key with: add --encrypt"},
		{"cert ca --encrypt with an empty passphrase", []string{"ca", "--dir", filepath.Join(top, "pki2"), "--encrypt", "--passphrase-file", writeSecret(t, top, "empty2.pass", "")},
			"its first line is empty…"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCert(t, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			if want, part := strings.CutSuffix(tt.want, "…"); part && !strings.Contains(err.Error(), want) || !part && err.Error() != want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit status %d, want 2", code)
			}
			for _, f := range []string{"c1.crt", "c1.key"} {
				if _, err := os.Stat(file(f)); err == nil {
					t.Errorf("%s was written", f)
				}
			}
		})
	}

	// --encrypt: the new key has its own passphrase, not the CA's.
	out = mustRunCert(t, "issue", "--dir", dir, "--name", "laptop1", "--ip", "10.77.0.11/24",
		"--passphrase-file", caPass, "--encrypt", "--key-passphrase-file", keyPass)
	if !strings.Contains(out, "encrypted with the passphrase") {
		t.Errorf("cert issue --encrypt printed %q", out)
	}
	checkMode(t, file("laptop1.key"), 0o600)
	if got := pemType(t, file("laptop1.key")); got != "ENCRYPTED PRIVATE KEY" {
		t.Fatalf("laptop1.key is %q, want ENCRYPTED PRIVATE KEY", got)
	}
	pair, err := qcrypto.LoadKeyPair(file("laptop1.crt"), file("laptop1.key"), fixed("laptop secret"))
	if err != nil {
		t.Fatalf("laptop1.key does not open with its passphrase: %v", err)
	}
	if pair.Leaf.Subject.CommonName != "laptop1" {
		t.Errorf("laptop1.crt is %q's", pair.Leaf.Subject.CommonName)
	}
	if _, err := qcrypto.LoadKeyPair(file("laptop1.crt"), file("laptop1.key"), fixed("ca secret")); !errors.Is(err, qcrypto.ErrWrongPassphrase) {
		t.Errorf("laptop1.key with the CA's passphrase: %v, want ErrWrongPassphrase", err)
	}

	// A CA key open to others is warned about, naming the fix.
	if err := os.Chmod(file("ca.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	out = mustRunCert(t, "issue", "--dir", dir, "--name", "phone", "--passphrase-file", caPass)
	if want := "warning: private key file is open to others: " + file("ca.key") + " has mode 0644, so others than its owner may read it: run `chmod 600 " + file("ca.key") + "`"; !strings.Contains(out, want) {
		t.Errorf("cert issue with ca.key mode 0644 printed %q, want the warning %q", out, want)
	}
}

// TestPassphraseFlagsInHelp: the help of each command that reads an
// encrypted key names the flag that gives its passphrase.
func TestPassphraseFlagsInHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"cert", "ca", "--help"}, []string{"--encrypt", "--passphrase-file FILE"}},
		{[]string{"cert", "issue", "--help"}, []string{"--passphrase-file FILE", "--encrypt", "--key-passphrase-file FILE", "of the new <name>.key"}},
		{[]string{"connect", "--help"}, []string{"--key-passphrase-file FILE", "CREDENTIALS_DIRECTORY"}},
		{[]string{"listen", "--help"}, []string{"--key-passphrase-file FILE"}},
	} {
		app := newApp()
		var out strings.Builder
		app.Writer, app.ErrWriter = &out, &out
		if err := app.Run(append([]string{"quictun"}, tt.args...)); err != nil {
			t.Fatalf("%s: %v", strings.Join(tt.args, " "), err)
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("quictun %s lacks %q", strings.Join(tt.args, " "), w)
			}
		}
	}
}
