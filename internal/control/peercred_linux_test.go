package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The peer-credential tests start copies of this test binary as other
// users (syscall.Credential), which needs root. The children run
// TestHelperProcess, told what to do by the environment.
const (
	helperEnvRole = "QUICTUN_CONTROL_HELPER" // "client" or "server"
	helperEnvAddr = "QUICTUN_CONTROL_HELPER_ADDR"
)

// TestHelperProcess is not a test: it is the child of the peer-credential
// tests. As "client" it asks for a status and prints the outcome; as
// "server" it serves until its standard input closes.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperEnvAddr)
	switch os.Getenv(helperEnvRole) {
	case "client":
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := GetStatus(c, addr)
		var ce *Error
		switch {
		case errors.As(err, &ce):
			fmt.Printf("code=%s error=%s\n", ce.Code, ce.Message)
		case err != nil:
			fmt.Printf("failed: %v\n", err)
		default:
			fmt.Printf("ok role=%s\n", st.Role)
		}
		os.Exit(0)
	case "server":
		s, err := Listen(addr, Handlers{Status: sampleStatus}, nil)
		if err != nil {
			fmt.Printf("failed: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		s.Close()
		os.Exit(0)
	default:
		t.Skip("the child process of the peer-credential tests")
	}
}

// helperBinary copies this test binary where any user may run it (the
// build directory is root's alone) and returns its path.
func helperBinary(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "quictun-control-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "control.test")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// helperCmd returns a command running the helper as role, as uid (and
// the same gid), on addr.
func helperCmd(bin, role, addr string, uid uint32) *exec.Cmd {
	cmd := exec.Command(bin, "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnvRole+"="+role, helperEnvAddr+"="+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	return cmd
}

// askAs runs the client helper as uid against addr and returns what it
// printed.
func askAs(t *testing.T, bin, addr string, uid uint32) string {
	t.Helper()
	out, err := helperCmd(bin, "client", addr, uid).CombinedOutput()
	if err != nil {
		t.Fatalf("client helper as uid %d: %v\n%s", uid, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestPeerCredRefused: a user who is neither root nor the server's user
// is refused with permission_denied before any handler runs, the refusal
// is logged, and root is still answered.
func TestPeerCredRefused(t *testing.T) {
	bin := helperBinary(t)
	var logs syncBuffer
	var served atomic.Int64
	addr := testAddr()
	listen(t, addr, Handlers{Status: func() Status { served.Add(1); return sampleStatus() }},
		slog.New(slog.NewTextHandler(&logs, nil)))

	out := askAs(t, bin, addr, 65534)
	if !strings.HasPrefix(out, "code="+CodePermission+" ") || !strings.Contains(out, "you are uid 65534") || !strings.Contains(out, "sudo") {
		t.Errorf("uid 65534 asking a root server got %q, want code %s saying who it is and what to do", out, CodePermission)
	}
	if n := served.Load(); n != 0 {
		t.Errorf("the status handler ran %d times for a refused peer", n)
	}
	if got := logs.String(); !strings.Contains(got, "control request refused") || !strings.Contains(got, "uid=65534") {
		t.Errorf("the refusal was not logged with the uid:\n%s", got)
	}
	if _, err := GetStatus(ctx(t), addr); err != nil {
		t.Errorf("root after the refusal: %v", err)
	}
}

// TestPeerCredSameUser runs the server as uid 65534 (as after a privilege
// drop): that user and root are answered, another user is refused.
func TestPeerCredSameUser(t *testing.T) {
	bin := helperBinary(t)
	addr := testAddr()
	srv := helperCmd(bin, "server", addr, 65534)
	stdin, err := srv.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- srv.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			srv.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("server helper: %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server helper not ready in 10 s")
	}

	if out := askAs(t, bin, addr, 65534); out != "ok role=server" {
		t.Errorf("the server's own user: %q, want a status", out)
	}
	if _, err := GetStatus(ctx(t), addr); err != nil {
		t.Errorf("root: %v, want a status", err)
	}
	if out := askAs(t, bin, addr, 65533); !strings.HasPrefix(out, "code="+CodePermission+" ") || !strings.Contains(out, "uid 65534") {
		t.Errorf("another user: %q, want code %s naming the server's uid", out, CodePermission)
	}
}
