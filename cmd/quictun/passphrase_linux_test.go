package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	qcrypto "github.com/quictun/quictun/crypto"
)

// openPTY opens a pseudo-terminal pair (/dev/ptmx and its /dev/pts/N),
// closed at cleanup, and makes the slave the terminal passphrases are
// asked on.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	var n int
	ctl := func(fd uintptr) {
		if err = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); err == nil {
			n, err = unix.IoctlGetInt(int(fd), unix.TIOCGPTN)
		}
	}
	if rc, cerr := m.SyscallConn(); cerr != nil {
		t.Fatal(cerr)
	} else if cerr := rc.Control(ctl); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatalf("unlock the pseudo-terminal: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	old := terminal
	terminal = s
	t.Cleanup(func() { terminal = old })
	return m, s
}

// typeWhenNoEcho waits (at most 10 s) until the terminal slave has echo
// off, as while a passphrase is read, then types text on the master.
func typeWhenNoEcho(t *testing.T, master, slave *os.File, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the terminal's echo was never turned off: is the passphrase read with echo?")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := master.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
}

// echoed returns what the terminal wrote back to the master so far.
func echoed(t *testing.T, master *os.File) string {
	t.Helper()
	if err := master.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var out []byte
	buf := make([]byte, 4096)
	for range 100 {
		n, err := master.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(out)
}

// TestPassphrasePrompt asks the passphrases on a real (pseudo-)terminal:
// cert ca --encrypt asks twice and encrypts with what was typed, with the
// echo off; cert issue asks for the CA key's; two different passphrases
// write nothing.
func TestPassphrasePrompt(t *testing.T) {
	master, slave := openPTY(t)
	dir := filepath.Join(t.TempDir(), "pki")

	type result struct {
		out string
		err error
	}
	run := func(args ...string) <-chan result {
		done := make(chan result, 1)
		go func() {
			out, err := runCert(t, args...)
			done <- result{out, err}
		}()
		return done
	}
	wait := func(done <-chan result) result {
		t.Helper()
		select {
		case r := <-done:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("the command did not finish in 30 s")
			return result{}
		}
	}

	// Both lines typed at once while the echo is off: the terminal
	// buffers the second for the second prompt.
	done := run("ca", "--dir", dir, "--encrypt")
	typeWhenNoEcho(t, master, slave, "typed secret\ntyped secret\n")
	if r := wait(done); r.err != nil {
		t.Fatalf("cert ca --encrypt on a terminal: %v\n%s", r.err, r.out)
	}
	if e := echoed(t, master); strings.Contains(e, "typed secret") {
		t.Errorf("the terminal echoed the passphrase: %q", e)
	}
	ca, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if _, err := qcrypto.LoadKeyPair(ca, key, fixed("typed secret")); err != nil {
		t.Fatalf("ca.key does not open with the typed passphrase: %v", err)
	}

	done = run("issue", "--dir", dir, "--name", "laptop1")
	typeWhenNoEcho(t, master, slave, "typed secret\n")
	if r := wait(done); r.err != nil {
		t.Fatalf("cert issue asking the CA passphrase on a terminal: %v\n%s", r.err, r.out)
	}
	if _, err := os.Stat(filepath.Join(dir, "laptop1.crt")); err != nil {
		t.Errorf("cert issue wrote no certificate: %v", err)
	}

	done = run("issue", "--dir", dir, "--name", "laptop2")
	typeWhenNoEcho(t, master, slave, "mistyped\n")
	if r := wait(done); !errors.Is(r.err, qcrypto.ErrWrongPassphrase) || r.err.Error() != "wrong passphrase for "+key {
		t.Errorf("a mistyped CA passphrase: %v, want %q", r.err, "wrong passphrase for "+key)
	}

	other := filepath.Join(t.TempDir(), "pki")
	done = run("ca", "--dir", other, "--encrypt")
	typeWhenNoEcho(t, master, slave, "one\ntwo\n")
	if r := wait(done); r.err == nil || !strings.Contains(r.err.Error(), "the two passphrases for "+filepath.Join(other, "ca.key")+" differ") {
		t.Errorf("two different passphrases: %v, want them said to differ", r.err)
	}
	if _, err := os.Stat(filepath.Join(other, "ca.key")); err == nil {
		t.Error("ca.key was written although the passphrases differ")
	}
}
