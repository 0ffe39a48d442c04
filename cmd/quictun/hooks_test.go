package main

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookLog is a logger whose output a test reads.
type hookLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *hookLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *hookLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestHooks(t *testing.T, up, down string, timeout time.Duration) (*hooks, *hookLog) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("hooks run /bin/sh")
	}
	lg := &hookLog{}
	return &hooks{up: up, down: down, timeout: timeout,
		log: slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug}))}, lg
}

// waitFile waits up to 10 s for path to contain want.
func waitFile(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in 10 s; it has %q", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHookEnvironment: both hooks see the tunnel's QUICTUN_* variables,
// and the parent's environment, and a QUICTUN_* variable of the parent
// meant for quictun's flags does not leak through as the tunnel's.
func TestHookEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("QUICTUN_SERVER", "from-the-parent:4433")
	t.Setenv("HOOK_TEST_PARENT", "kept")
	dump := `env | grep -E '^(QUICTUN_(HOOK|DEV|MODE|ADDRESSES|ROUTES|GATEWAY|IDENTITY|SERVER|MTU)|HOOK_TEST_PARENT)=' | sort > "` + dir + `/$QUICTUN_HOOK.env"`
	h, lg := newTestHooks(t, dump, dump, 10*time.Second)
	h.Up(hookEnv{dev: "qt0", mode: "tun",
		addresses: []netip.Prefix{netip.MustParsePrefix("10.77.0.11/24"), netip.MustParsePrefix("fd77::11/64")},
		routes:    []netip.Prefix{netip.MustParsePrefix("192.168.77.0/24")},
		gateways:  []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")},
		identity:  "laptop1", mtu: 1414})
	h.Down()
	for _, which := range []string{"up", "down"} {
		b, err := os.ReadFile(filepath.Join(dir, which+".env"))
		if err != nil {
			t.Fatalf("%s hook: %v\n%s", which, err, lg)
		}
		want := strings.Join([]string{
			"HOOK_TEST_PARENT=kept",
			"QUICTUN_ADDRESSES=10.77.0.11/24,fd77::11/64",
			"QUICTUN_DEV=qt0",
			"QUICTUN_GATEWAY=10.77.0.1,fd77::1",
			"QUICTUN_HOOK=" + which,
			"QUICTUN_IDENTITY=laptop1",
			"QUICTUN_MODE=tun",
			"QUICTUN_MTU=1414",
			"QUICTUN_ROUTES=192.168.77.0/24",
			"QUICTUN_SERVER=",
		}, "\n") + "\n"
		if string(b) != want {
			t.Errorf("%s hook environment:\n%s\nwant:\n%s", which, b, want)
		}
	}
	if !strings.Contains(lg.String(), `msg="hook ran" hook=up`) || !strings.Contains(lg.String(), `msg="hook ran" hook=down`) {
		t.Errorf("log does not say both hooks ran:\n%s", lg)
	}
}

// TestHookFailure: a failing hook is logged with its exit status and its
// output, cut to hookOutputMax.
func TestHookFailure(t *testing.T) {
	h, lg := newTestHooks(t, `echo boom >&2; head -c 5000 /dev/zero | tr '\0' x; exit 3`, "", 10*time.Second)
	h.Up(hookEnv{})
	h.Down() // waits for --up
	log := lg.String()
	for _, want := range []string{`msg="hook failed" hook=up`, `status="exit status 3"`, "boom", "(" + strconv.Itoa(len("boom\n")+5000-hookOutputMax) + " more bytes)"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, strings.Repeat("x", 2100)) {
		t.Error("the output was not cut")
	}
}

// TestHookTimeout: a hook that hangs is killed at its timeout, with what
// it started in the background.
func TestHookTimeout(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	h, lg := newTestHooks(t, `sleep 60 & echo $! > "`+pidFile+`"; echo waiting; wait`, "", 300*time.Millisecond)
	start := time.Now()
	h.Up(hookEnv{})
	h.Down()
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("the hung hook took %v to end, want about its 300 ms timeout", el)
	}
	log := lg.String()
	for _, want := range []string{`msg="hook killed: it ran longer than its timeout" hook=up`, "timeout=300ms", "waiting"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The background sleep was killed too: gone, or a zombie waiting for
	// its new parent to reap it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			break
		}
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hook's background sleep (pid %d) still runs: %s", pid, stat)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHookOnce: --up runs once however often the tunnel comes up, --down
// only after --up has finished and only once, and neither without Up.
func TestHookOnce(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	h, lg := newTestHooks(t, `sleep 0.3; echo up >> "`+log+`"`, `echo down >> "`+log+`"`, 10*time.Second)
	h.Down() // before Up: nothing to undo
	for range 50 {
		h.Up(hookEnv{dev: "qt0"})
	}
	h.Down()
	h.Down()
	b, _ := os.ReadFile(log)
	if string(b) != "up\ndown\n" {
		t.Errorf("hooks ran as %q, want %q\n%s", b, "up\ndown\n", lg)
	}
}
