package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The test binary is nettool too: with nettoolTestMain=1 in its
// environment it runs main, so that the tests can start it inside a
// network namespace with `ip netns exec` without building anything.
const nettoolTestMain = "NETTOOL_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(nettoolTestMain) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// requireRoot skips a test that needs network namespaces and raw sockets,
// or fails it when QUICTUN_E2E=1 asks for every root-only test.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatalf("needs ip (Debian package iproute2): %v", err)
		}
		return
	}
	if os.Getenv("QUICTUN_E2E") == "1" {
		t.Fatal("needs root for network namespaces and raw sockets (QUICTUN_E2E=1 makes this a failure)")
	}
	t.Skip("needs root for network namespaces and raw sockets")
}

// run runs a command, bounded, and fails the test on error.
func run(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// addNS makes namespace ntping<pid>-<role> with its loopback up, removed
// at cleanup, and returns its name.
func addNS(t *testing.T, role string) string {
	ns := fmt.Sprintf("ntping%d-%s", os.Getpid(), role)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// pingPair makes two namespaces joined by a veth: a (10.9.0.1/24,
// fd09::1/64) and b (10.9.0.2/24, fd09::2/64). It returns their names.
func pingPair(t *testing.T) (a, b string) {
	a, b = addNS(t, "a"), addNS(t, "b")
	run(t, "ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
	for i, ns := range []string{a, b} {
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("10.9.0.%d/24", i+1), "dev", "eth0")
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("fd09::%d/64", i+1), "dev", "eth0", "nodad")
		run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	return a, b
}

// nettoolIn runs this binary as nettool with args in namespace ns and
// returns its output, exit code and how long it ran.
func nettoolIn(t *testing.T, ns string, args ...string) (string, int, time.Duration) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, exe}, args...)...)
	cmd.Env = append(os.Environ(), nettoolTestMain+"=1")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	el := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("nettool %s ran past 30 s:\n%s", strings.Join(args, " "), out)
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("nettool %s: %v", strings.Join(args, " "), err)
		}
		code = ee.ExitCode()
	}
	return string(out), code, el
}

var (
	pingSummary = regexp.MustCompile(`(?m)^(\d+) packets transmitted, (\d+) received, (\d+)% packet loss$`)
	pingRTT     = regexp.MustCompile(`(?m)^rtt min/avg/max = ([0-9.]+)/([0-9.]+)/([0-9.]+) ms$`)
	pingReply   = regexp.MustCompile(`(?m)^\d+ bytes from \S+: icmp_seq=\d+ time=[0-9.]+ ms$`)
)

// TestPing pings between two namespaces and into the void, over IPv4 and
// IPv6, and checks what it prints, its exit code and its time bound.
func TestPing(t *testing.T) {
	requireRoot(t)
	a, _ := pingPair(t)
	// In q the kernel ignores echo requests: q's own requests to its
	// loopback reach its raw socket, but no reply does, so counting a
	// request as a reply would show here.
	q := addNS(t, "q")
	run(t, "ip", "netns", "exec", q, "sysctl", "-qw", "net.ipv4.icmp_echo_ignore_all=1")
	run(t, "ip", "netns", "exec", q, "sysctl", "-qw", "net.ipv6.icmp.echo_ignore_all=1")

	tests := []struct {
		name     string
		ns       string
		args     []string
		replies  int           // want this many replies; -1: an error before any ping
		maxTime  time.Duration // it must end within this
		wantLine string        // a line it must print
	}{
		{"ipv4", a, []string{"ping", "-count", "3", "10.9.0.2"}, 3, 3 * time.Second, "3 packets transmitted, 3 received, 0% packet loss"},
		{"ipv6", a, []string{"ping", "-count", "3", "fd09::2"}, 3, 3 * time.Second, "3 packets transmitted, 3 received, 0% packet loss"},
		{"ipv4 loopback", a, []string{"ping", "-count", "2", "-interval", "50ms", "127.0.0.1"}, 2, 2 * time.Second, ""},
		{"ipv6 large payload", a, []string{"ping", "-count", "2", "-size", "1400", "fd09::2"}, 2, 2 * time.Second, "1408 bytes from fd09::2"},
		{"ipv4 own requests are not replies", q, []string{"ping", "-count", "2", "-wait", "300ms", "127.0.0.1"}, 0, 2 * time.Second,
			"2 packets transmitted, 0 received, 100% packet loss"},
		{"ipv6 own requests are not replies", q, []string{"ping", "-count", "2", "-wait", "300ms", "::1"}, 0, 2 * time.Second,
			"2 packets transmitted, 0 received, 100% packet loss"},
		{"nobody there", a, []string{"ping", "-count", "3", "-interval", "100ms", "-wait", "500ms", "10.9.0.99"}, 0, 2 * time.Second,
			"3 packets transmitted, 0 received, 100% packet loss"},
		{"no route", a, []string{"ping", "-count", "2", "-wait", "200ms", "198.51.100.1"}, 0, 2 * time.Second, "network is unreachable"},
		{"bad count", a, []string{"ping", "-count", "0", "10.9.0.2"}, -1, time.Second, "-count 0: want 1..1000"},
		{"a name, not an address", a, []string{"ping", "localhost"}, -1, time.Second, "not a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code, el := nettoolIn(t, tt.ns, tt.args...)
			if el > tt.maxTime {
				t.Errorf("took %v, want at most %v", el.Round(time.Millisecond), tt.maxTime)
			}
			if tt.wantLine != "" && !strings.Contains(out, tt.wantLine) {
				t.Errorf("output lacks %q:\n%s", tt.wantLine, out)
			}
			if tt.replies < 0 {
				if code != 1 {
					t.Errorf("exit code %d, want 1:\n%s", code, out)
				}
				return
			}
			m := pingSummary.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no summary line:\n%s", out)
			}
			if got := len(pingReply.FindAllString(out, -1)); got != tt.replies || m[2] != fmt.Sprint(tt.replies) {
				t.Errorf("%d reply lines, summary says %s received; want %d:\n%s", got, m[2], tt.replies, out)
			}
			wantCode := 1 // unless every echo is answered
			if m[1] == m[2] {
				wantCode = 0
			}
			if code != wantCode {
				t.Errorf("exit code %d, want %d:\n%s", code, wantCode, out)
			}
			if hasRTT := pingRTT.MatchString(out); hasRTT != (tt.replies > 0) {
				t.Errorf("rtt line present: %v, want %v:\n%s", hasRTT, tt.replies > 0, out)
			}
		})
	}
}
