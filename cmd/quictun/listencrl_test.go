package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
)

// has reports whether one line of the log contains every one of want.
func (l *syncLog) has(want ...string) bool {
	for _, line := range strings.Split(l.String(), "\n") {
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if ok && line != "" {
			return true
		}
	}
	return false
}

// crlPKI makes a CA and the client certificates names in dir and returns
// their serials by name.
func crlPKI(t *testing.T, dir string, names ...string) map[string]*big.Int {
	t.Helper()
	mustRunCert(t, "ca", "--dir", dir)
	out := map[string]*big.Int{}
	for _, n := range names {
		mustRunCert(t, "issue", "--dir", dir, "--name", n)
		out[n] = serialOf(t, filepath.Join(dir, n+".crt"))
	}
	return out
}

// waitFor polls cond every 20 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// drain empties a Changed channel, so that the next value is a new change.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func TestServerCRL(t *testing.T) {
	dir := t.TempDir()
	serials := crlPKI(t, dir, "a", "b", "c")
	mustRunCert(t, "revoke", "--dir", dir, "--name", "a", "--reason", "keyCompromise")
	crlFile, caFile := filepath.Join(dir, crlName), filepath.Join(dir, "ca.crt")
	var logs syncLog
	log := slog.New(slog.NewTextHandler(&logs, nil))

	s, err := newServerCRL(crlFile, caFile, log)
	if err != nil {
		t.Fatal(err)
	}
	revs := s.Revocations()
	if !revs.IsRevoked(serials["a"]) || revs.IsRevoked(serials["b"]) {
		t.Fatalf("after loading: a revoked %v, b revoked %v; want true, false", revs.IsRevoked(serials["a"]), revs.IsRevoked(serials["b"]))
	}
	if !logs.has(`msg="CRL loaded"`, "file="+crlFile, "revoked=1", "added=1", "number=1") {
		t.Errorf("no \"CRL loaded\" line with the count:\n%s", logs.String())
	}
	stop := s.Watch()
	defer stop()

	t.Run("replaced by rename", func(t *testing.T) {
		drain(revs.Changed())
		mustRunCert(t, "revoke", "--dir", dir, "--name", "b") // writes a temporary file, renames it
		if !waitFor(2*time.Second, func() bool { return revs.IsRevoked(serials["b"]) }) {
			t.Fatalf("b not revoked 2 s after crl.pem was replaced:\n%s", logs.String())
		}
		select {
		case <-revs.Changed():
		case <-time.After(time.Second):
			t.Error("the set changed without a signal on Changed")
		}
		if !revs.IsRevoked(serials["a"]) || revs.IsRevoked(serials["c"]) {
			t.Error("a replaced CRL lost a, or revoked c")
		}
		if !logs.has(`msg="CRL loaded"`, "revoked=2", "added=1", "removed=0", "number=2") {
			t.Errorf("no log line for the new CRL:\n%s", logs.String())
		}
	})

	t.Run("rewritten in place", func(t *testing.T) {
		data, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		mustRunCert(t, "revoke", "--dir", dir, "--name", "c")
		newer, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		// Put the old one back through the watched inode, then the new.
		for _, d := range [][]byte{data, newer} {
			f, err := os.OpenFile(crlFile, os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(d); err != nil {
				t.Fatal(err)
			}
			f.Close()
			time.Sleep(3 * crlPoll)
		}
		if !waitFor(2*time.Second, func() bool { return revs.IsRevoked(serials["c"]) }) {
			t.Fatalf("c not revoked 2 s after crl.pem was rewritten in place:\n%s", logs.String())
		}
	})

	t.Run("broken file keeps the old CRL", func(t *testing.T) {
		good, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		other := t.TempDir()
		crlPKI(t, other)
		mustRunCert(t, "crl", "--dir", other)
		foreign, err := os.ReadFile(filepath.Join(other, crlName))
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []struct {
			name string
			data []byte
			want string
		}{
			{"garbage", []byte("not a CRL"), "not a valid X.509 CRL"},
			{"another CA's", foreign, "not signed by the CA"},
		} {
			if err := qcrypto.WriteFile(crlFile, bad.data, 0o644, true); err != nil {
				t.Fatal(err)
			}
			if !waitFor(2*time.Second, func() bool { return logs.has("could not be loaded", bad.want, "stays in force") }) {
				t.Errorf("%s CRL: no error logged:\n%s", bad.name, logs.String())
			}
			if !revs.IsRevoked(serials["a"]) || !revs.IsRevoked(serials["c"]) {
				t.Errorf("%s CRL replaced the one in force", bad.name)
			}
			if err := s.Reload(); err == nil || !strings.Contains(err.Error(), crlFile) || !strings.Contains(err.Error(), "stays in force") {
				t.Errorf("Reload of the %s CRL: %v, want an error naming %s", bad.name, err, crlFile)
			}
		}
		if err := qcrypto.WriteFile(crlFile, good, 0o644, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Errorf("Reload of the good CRL again: %v", err)
		}
	})

	t.Run("gone and back", func(t *testing.T) {
		good, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(crlFile); err != nil {
			t.Fatal(err)
		}
		if !waitFor(2*time.Second, func() bool { return logs.has("CRL file cannot be read", "stays in force") }) {
			t.Errorf("no warning for the missing CRL file:\n%s", logs.String())
		}
		if !revs.IsRevoked(serials["a"]) {
			t.Error("a missing CRL file dropped the CRL in force")
		}
		n := strings.Count(logs.String(), `msg="CRL loaded"`)
		if err := qcrypto.WriteFile(crlFile, good, 0o644, true); err != nil {
			t.Fatal(err)
		}
		if !waitFor(2*time.Second, func() bool { return strings.Count(logs.String(), `msg="CRL loaded"`) > n }) {
			t.Errorf("the CRL file back in place was not read:\n%s", logs.String())
		}
	})
}

func TestServerCRLStale(t *testing.T) {
	dir := t.TempDir()
	serials := crlPKI(t, dir, "a")
	// A context with no flags set: the CA key is not encrypted.
	ca, err := openCA(cli.NewContext(&cli.App{ErrWriter: io.Discard}, flag.NewFlagSet("test", flag.ContinueOnError), nil), dir)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := filepath.Join(dir, crlName)
	_, err = writeCRL(crlFile, ca, qcrypto.CRLOptions{
		Revoke: []qcrypto.Revocation{{Serial: serials["a"]}}, Days: 30, Now: time.Now().AddDate(0, 0, -40),
	})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncLog
	s, err := newServerCRL(crlFile, filepath.Join(dir, "ca.crt"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !logs.has("level=WARN", "CRL is stale", "file="+crlFile) {
		t.Errorf("no warning for a CRL 10 days past its nextUpdate:\n%s", logs.String())
	}
	if !s.Revocations().IsRevoked(serials["a"]) {
		t.Error("a stale CRL is not enforced")
	}
}

func TestServerCRLStartErrors(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	crlPKI(t, dir)
	crlPKI(t, other)
	mustRunCert(t, "crl", "--dir", other)
	log := slog.New(slog.DiscardHandler)
	ca := filepath.Join(dir, "ca.crt")
	for _, tt := range []struct{ name, file, want string }{
		{"missing", filepath.Join(dir, "none.pem"), "does not exist"},
		{"another CA's", filepath.Join(other, crlName), "not signed by the CA"},
		{"a certificate", ca, "not a CRL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newServerCRL(tt.file, ca, log)
			if err == nil || !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "--crl") {
				t.Errorf("newServerCRL(%s) = %v, want an error naming --crl and the file and saying %q", tt.file, err, tt.want)
			}
		})
	}
	if s, err := newServerCRL("", ca, log); err != nil || s.Revocations().IsRevoked(big.NewInt(1)) {
		t.Errorf("no --crl: %v, %v", s, err)
	}
}

// TestServerCRLReload: SIGHUP and `quictun reload` re-read the CRL with
// or without a configuration file; a changed crl key in the file switches
// to the new file, and a bad one changes nothing.
func TestServerCRLReload(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	serials := crlPKI(t, dir, "a", "b")
	mustRunCert(t, "crl", "--dir", dir)
	crlFile, caFile := filepath.Join(dir, crlName), filepath.Join(dir, "ca.crt")
	var logs syncLog
	log := slog.New(slog.NewTextHandler(&logs, nil))

	// startListen runs listen's Before with args and returns its reload
	// function and CRL as runListen builds them.
	startListen := func(t *testing.T, args ...string) (func() error, *serverCRL) {
		t.Helper()
		var reload func() error
		var crl *serverCRL
		err := runWithAction(t, func(c *cli.Context) error {
			var err error
			if crl, err = setupServerCRL(c, log); err != nil {
				return err
			}
			reload = crl.withReload(reloader(c, log, nil, nil))
			return nil
		}, append([]string{"listen"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return reload, crl
	}

	t.Run("without a config file", func(t *testing.T) {
		reload, crl := startListen(t, "--cert", "/c", "--key", "/k", "--ca", caFile, "--crl", crlFile)
		mustRunCert(t, "revoke", "--dir", dir, "--name", "a")
		if err := reload(); err != nil {
			t.Fatalf("reload: %v", err)
		}
		if !crl.Revocations().IsRevoked(serials["a"]) {
			t.Error("reload did not read the new CRL")
		}
		reload, _ = startListen(t, "--cert", "/c", "--key", "/k", "--ca", caFile)
		if err := reload(); !errors.Is(err, errNoConfigFile) {
			t.Errorf("reload without --config and --crl: %v, want errNoConfigFile", err)
		}
	})

	t.Run("crl key", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.pem")
		data, err := os.ReadFile(crlFile)
		if err != nil {
			t.Fatal(err)
		}
		conf := "cert = \"/c.crt\"\nkey = \"/k.key\"\nca = \"" + caFile + "\"\nip = [\"10.77.0.1/24\"]\n"
		cdir := t.TempDir()
		path := writeFile(t, cdir, "server.toml", conf+"crl = \""+crlFile+"\"\n")
		reload, crl := startListen(t, "--config", path)
		if crl.Path() != crlFile {
			t.Fatalf("CRL %q from the file, want %q", crl.Path(), crlFile)
		}

		// The same key, a new CRL in the file: read again.
		mustRunCert(t, "revoke", "--dir", dir, "--name", "b")
		if err := reload(); err != nil {
			t.Fatal(err)
		}
		if !crl.Revocations().IsRevoked(serials["b"]) {
			t.Error("a reload with the crl key unchanged did not read the new CRL")
		}

		// A key pointing to a broken file: refused, the old one in force.
		if err := os.WriteFile(other, []byte("junk"), 0o644); err != nil {
			t.Fatal(err)
		}
		writeFile(t, cdir, "server.toml", conf+"crl = \""+other+"\"\n")
		err = reload()
		if err == nil || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), "crl") {
			t.Errorf("reload to a broken CRL: %v, want an error naming the key and %s", err, other)
		}
		if crl.Path() != crlFile || !crl.Revocations().IsRevoked(serials["b"]) {
			t.Errorf("a refused CRL changed the one in force (path %q)", crl.Path())
		}

		// Fixed: switched, read once.
		if err := os.WriteFile(other, data, 0o644); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(logs.String(), `msg="CRL loaded"`)
		if err := reload(); err != nil {
			t.Fatal(err)
		}
		if crl.Path() != other || crl.Revocations().IsRevoked(serials["b"]) {
			t.Errorf("after the switch: path %q, b revoked %v; want %s and false (the older CRL)", crl.Path(), crl.Revocations().IsRevoked(serials["b"]), other)
		}
		if got := strings.Count(logs.String(), `msg="CRL loaded"`) - n; got != 1 {
			t.Errorf("the switch loaded the CRL %d times, want once", got)
		}
		if !logs.has(`msg="configuration reloaded"`, "crl="+other) {
			t.Errorf("the reload did not name the crl change:\n%s", logs.String())
		}
	})
}
