package main

// The end-to-end harness: network namespaces joined by veths and bridges,
// processes started inside them with `ip netns exec`, and bounded checks
// (ping, TCP transfer with SHA-256 on both ends).
//
// Every name this file defines starts with ns or e2e, so that it cannot clash
// with the rest of package main.
//
// Everything a test makes is removed by the test (t.Cleanup), and only that:
// namespaces carry the per-run prefix qt<pid>-<test id>-, processes are
// stopped by their recorded PID (SIGTERM, then SIGKILL).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	nsCmdTimeout      = 20 * time.Second // default bound for one command in a namespace
	nsStopTimeout     = 5 * time.Second  // SIGTERM → SIGKILL
	nsPingTimeout     = 15 * time.Second // default bound for nsWaitPing
	nsPingInterval    = 200 * time.Millisecond
	nsTransferTimeout = 50 * time.Second // bound for one nsTransfer
	nsLogDumpMax      = 64 << 10         // bytes of a process log put into t.Log
	e2eMB             = 1 << 20
)

// nsTools maps each program the harness runs to the Debian package that has it.
var nsTools = map[string]string{
	"ip":      "iproute2",
	"ping":    "iputils-ping",
	"openssl": "openssl",
	"nft":     "nftables",
	"tc":      "iproute2",
	"ss":      "iproute2",
	"sysctl":  "procps",
	"setpriv": "util-linux",
}

// e2eRequireRoot skips the test unless it can create network namespaces and
// devices (root) and the programs it needs are installed: always ip and
// ping, plus the extra tools named. Under QUICTUN_E2E=1 (CI) it fails
// instead of skipping, so that a broken environment cannot pass as green.
// `go test -short` skips the end-to-end tests.
func e2eRequireRoot(t *testing.T, tools ...string) {
	t.Helper()
	must := os.Getenv("QUICTUN_E2E") == "1"
	stop := t.Skipf
	if must {
		stop = t.Fatalf
	}
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		stop("needs root for network namespaces; run as root or set QUICTUN_E2E=1 in CI to make this a failure")
	}
	for _, tool := range append([]string{"ip", "ping"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			stop("needs %q: apt-get install -y %s (sudo make deps installs what the tests need): %v", tool, nsTools[tool], err)
		}
	}
	if e2eNettoolErr != nil {
		t.Fatalf("build traffic helper: %v", e2eNettoolErr)
	}
	if e2eNettoolPath == "" {
		t.Fatal("traffic helper not built (TestMain did not run the build)")
	}
}

// nsLab is one test's set of namespaces, processes and files.
type nsLab struct {
	t      *testing.T
	prefix string // namespace name prefix: qt<pid>-<id>-
	dir    string // temporary directory: logs, PKI
}

// nsNewLab starts a lab for test t; id is a short name for the test
// ("tun", "tap"), unique among the tests of the package.
func nsNewLab(t *testing.T, id string) *nsLab {
	t.Helper()
	return &nsLab{
		t:      t,
		prefix: fmt.Sprintf("qt%d-%s-", os.Getpid(), id),
		dir:    t.TempDir(), // first, so it is removed after the logs were dumped
	}
}

// With returns a copy of the lab that reports to t (a subtest's), so that
// its checks fail the subtest and its processes stop when the subtest ends.
func (l *nsLab) With(t *testing.T) *nsLab {
	c := *l
	c.t = t
	return &c
}

// Host runs a command outside the namespaces, in the lab directory, and
// fails the test on error (e.g. openssl).
func (l *nsLab) Host(args ...string) string {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), nsCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = l.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Path returns the name joined to the lab's temporary directory.
func (l *nsLab) Path(name ...string) string {
	return filepath.Join(append([]string{l.dir}, name...)...)
}

// AddNS creates the namespace <prefix><role> with its loopback up, and
// removes it at cleanup. It returns the namespace's name.
func (l *nsLab) AddNS(role string) string {
	l.t.Helper()
	name := l.prefix + role
	if out, err := nsHostRun(nsCmdTimeout, "ip", "netns", "add", name); err != nil {
		l.t.Fatalf("create namespace: %v\n%s", err, out)
	}
	l.t.Cleanup(func() {
		if out, err := nsHostRun(nsCmdTimeout, "ip", "netns", "del", name); err != nil {
			l.t.Errorf("remove namespace %s: %v\n%s", name, err, out)
		}
	})
	l.Must(name, "ip", "link", "set", "lo", "up")
	return name
}

// Veth joins ns1 and ns2 with a veth pair named if1 (in ns1) and if2 (in
// ns2), both up. The names never exist outside the namespaces.
func (l *nsLab) Veth(ns1, if1, ns2, if2 string) {
	l.t.Helper()
	l.Must(ns1, "ip", "link", "add", if1, "type", "veth", "peer", "name", if2, "netns", ns2)
	l.Must(ns1, "ip", "link", "set", if1, "up")
	l.Must(ns2, "ip", "link", "set", if2, "up")
}

// Bridge creates bridge br in ns, up, with the given ports (existing
// interfaces in ns) attached.
func (l *nsLab) Bridge(ns, br string, ports ...string) {
	l.t.Helper()
	l.Must(ns, "ip", "link", "add", br, "type", "bridge")
	l.Must(ns, "ip", "link", "set", br, "up")
	for _, p := range ports {
		l.Must(ns, "ip", "link", "set", p, "master", br)
	}
}

// Run runs a command in ns with the default bound and returns its combined
// output.
func (l *nsLab) Run(ns string, args ...string) (string, error) {
	return nsRun(ns, nsCmdTimeout, args...)
}

// Must is Run that fails the test on error.
func (l *nsLab) Must(ns string, args ...string) string {
	l.t.Helper()
	out, err := nsRun(ns, nsCmdTimeout, args...)
	if err != nil {
		l.t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(args, " "), err, out)
	}
	return out
}

// nsRun runs a command in namespace ns ("" for the test's own namespace),
// killed after timeout, and returns its combined output.
func nsRun(ns string, timeout time.Duration, args ...string) (string, error) {
	if ns != "" {
		args = append([]string{"ip", "netns", "exec", ns}, args...)
	}
	return nsHostRun(timeout, args...)
}

// nsRunInput is nsRun (with the default bound) with stdin read from input.
func nsRunInput(ns, input string, args ...string) (string, error) {
	return nsHostRunInput(nsCmdTimeout, input, append([]string{"ip", "netns", "exec", ns}, args...)...)
}

func nsHostRun(timeout time.Duration, args ...string) (string, error) {
	return nsHostRunInput(timeout, "", args...)
}

func nsHostRunInput(timeout time.Duration, input string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(input)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, timeout)
	}
	return string(out), err
}

// nsProc is a process started in a namespace. Its stdout and stderr go to
// files in the lab's directory; they are put into the test log when the test
// fails.
type nsProc struct {
	name       string
	ns         string
	cmd        *exec.Cmd
	stdoutPath string
	stderrPath string
	done       chan struct{} // closed when the process has exited
	state      *os.ProcessState
}

// Start starts args in ns (`ip netns exec ns args…`, which execs, so the
// recorded PID is the program's own), in the lab directory (so relative
// paths such as pki/ca.crt work). name labels its log files and must be
// unique in the test. At cleanup the process is stopped (SIGTERM, SIGKILL
// after nsStopTimeout) and, if the test failed, its output is logged.
func (l *nsLab) Start(ns, name string, args ...string) *nsProc {
	l.t.Helper()
	p := &nsProc{
		name:       name,
		ns:         ns,
		stdoutPath: l.Path(name + ".stdout"),
		stderrPath: l.Path(name + ".stderr"),
		done:       make(chan struct{}),
	}
	stdout, err := os.Create(p.stdoutPath)
	if err != nil {
		l.t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := os.Create(p.stderrPath)
	if err != nil {
		l.t.Fatal(err)
	}
	defer stderr.Close()
	full := append([]string{"netns", "exec", ns}, args...)
	p.cmd = exec.Command("ip", full...)
	p.cmd.Dir = l.dir
	p.cmd.Stdout = stdout
	p.cmd.Stderr = stderr
	// If the test binary dies (a -timeout panic), the process is told to
	// stop too instead of being left behind.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		l.t.Fatalf("start %s in %s: %v", name, ns, err)
	}
	l.t.Logf("started %s (pid %d) in %s: %s", name, p.cmd.Process.Pid, ns, strings.Join(args, " "))
	go func() {
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	l.t.Cleanup(func() {
		if !p.Exited() {
			p.Stop(syscall.SIGTERM, nsStopTimeout)
		}
		if l.t.Failed() {
			l.t.Logf("%s", p.Dump())
		}
	})
	return p
}

// Pid returns the process's PID.
func (p *nsProc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *nsProc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit. It returns the exit
// code (-1 if it died from a signal) and whether it exited in time.
func (p *nsProc) Wait(timeout time.Duration) (code int, exited bool) {
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(timeout):
		return 0, false
	}
}

// Stop sends sig and waits up to timeout; if the process is still running
// then, it is killed (SIGKILL) and reaped. It returns the exit code as Wait
// does and whether the process exited by itself in time.
func (p *nsProc) Stop(sig syscall.Signal, timeout time.Duration) (code int, exited bool) {
	if p.Exited() {
		return p.state.ExitCode(), true
	}
	p.cmd.Process.Signal(sig)
	if code, ok := p.Wait(timeout); ok {
		return code, true
	}
	p.cmd.Process.Kill()
	<-p.done
	return p.state.ExitCode(), false
}

// Stdout returns what the process has written to stdout so far.
func (p *nsProc) Stdout() string { b, _ := os.ReadFile(p.stdoutPath); return string(b) }

// Stderr returns what the process has written to stderr so far.
func (p *nsProc) Stderr() string { b, _ := os.ReadFile(p.stderrPath); return string(b) }

// WaitOutput waits up to timeout until stdout or stderr contains s.
func (p *nsProc) WaitOutput(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.Stdout(), s) || strings.Contains(p.Stderr(), s) {
			return true
		}
		if p.Exited() || time.Now().After(deadline) {
			return strings.Contains(p.Stdout(), s) || strings.Contains(p.Stderr(), s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Dump returns the process's status and output for the test log (the last
// nsLogDumpMax bytes of each stream).
func (p *nsProc) Dump() string {
	var b strings.Builder
	status := "running"
	if p.Exited() {
		status = p.state.String()
	}
	fmt.Fprintf(&b, "==== %s (pid %d, ns %s): %s\n", p.name, p.Pid(), p.ns, status)
	for _, s := range []struct{ label, text string }{{"stdout", p.Stdout()}, {"stderr", p.Stderr()}} {
		if s.text == "" {
			continue
		}
		if len(s.text) > nsLogDumpMax {
			s.text = "…" + s.text[len(s.text)-nsLogDumpMax:]
		}
		fmt.Fprintf(&b, "---- %s %s:\n%s\n", p.name, s.label, strings.TrimRight(s.text, "\n"))
	}
	return b.String()
}

// e2eErrorLine returns the `quictun: …` line a failed command prints on
// stderr (the last one), or "" if there is none.
func e2eErrorLine(stderr string) string {
	var last string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "quictun: ") {
			last = line
		}
	}
	return last
}

// nsPing runs one bounded ping in ns and returns its output.
func nsPing(ns string, args ...string) (string, error) {
	return nsRun(ns, nsCmdTimeout, append([]string{"ping"}, args...)...)
}

// WaitPing pings addr from ns (one echo a try, nsPingInterval between tries)
// until a reply comes or timeout passes; then it fails the test with the
// last ping's output. Extra ping arguments (e.g. "-I", "qt0") go before the
// address.
func (l *nsLab) WaitPing(ns, addr string, timeout time.Duration, extra ...string) {
	l.t.Helper()
	if err := nsWaitPing(ns, addr, timeout, extra...); err != nil {
		l.t.Fatalf("ping %s from %s: %v", addr, ns, err)
	}
}

// nsWaitPing is WaitPing returning an error.
func nsWaitPing(ns, addr string, timeout time.Duration, extra ...string) error {
	deadline := time.Now().Add(timeout)
	var out string
	var err error
	for tries := 0; ; tries++ {
		args := append([]string{"-c", "1", "-W", "1"}, extra...)
		out, err = nsPing(ns, append(args, addr)...)
		if err == nil {
			return nil
		}
		if time.Now().Add(nsPingInterval).After(deadline) {
			return fmt.Errorf("no reply in %v (%d tries): %v\n%s", timeout, tries+1, err, out)
		}
		time.Sleep(nsPingInterval)
	}
}

// nsPingStats matches ping's summary line.
var nsPingStats = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// nsPingCounts parses how many echoes ping sent and how many replies it got.
func nsPingCounts(out string) (sent, received int, ok bool) {
	m := nsPingStats.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, false
	}
	sent, _ = strconv.Atoi(m[1])
	received, _ = strconv.Atoi(m[2])
	return sent, received, true
}

// PingAll sends count echoes from ns to addr (0.2 s apart, waiting at most
// 10 s in all) and fails the test unless every one is answered.
func (l *nsLab) PingAll(ns, addr string, count int, extra ...string) string {
	l.t.Helper()
	args := append([]string{"-c", strconv.Itoa(count), "-i", "0.2", "-w", "10"}, extra...)
	out, err := nsPing(ns, append(args, addr)...)
	sent, got, ok := nsPingCounts(out)
	if err != nil || !ok || got != count {
		l.t.Fatalf("ping %s %s from %s: want %d/%d replies, got %d/%d: %v\n%s",
			strings.Join(extra, " "), addr, ns, count, count, got, sent, err, out)
	}
	return out
}

// nsReport is what nettool prints at each end of a transfer.
type nsReport struct {
	Bytes  int64
	SHA256 string
}

func nsParseReport(out string) (nsReport, error) {
	for _, line := range strings.Split(out, "\n") {
		var r nsReport
		if _, err := fmt.Sscanf(line, "bytes=%d sha256=%s", &r.Bytes, &r.SHA256); err == nil && len(r.SHA256) == 64 {
			return r, nil
		}
	}
	return nsReport{}, fmt.Errorf("no transfer report in %q", out)
}

// e2eTransferSeq numbers transfers so that their log files differ.
var e2eTransferSeq struct {
	sync.Mutex
	n int
}

// nsTransfer moves size pseudo-random bytes over TCP from namespace from to
// a receiver in namespace to listening on toAddr (host:port), and checks
// that the receiver got exactly size bytes with the sender's SHA-256. It is
// bounded by nsTransferTimeout.
func (l *nsLab) Transfer(from, to, toAddr string, size int64) error {
	l.t.Helper()
	return l.transfer(from, to, toAddr, size, size, nsTransferTimeout)
}

// transfer is Transfer with the sender told to send sendSize bytes (which
// differs from size only in the harness's own test) and another bound.
func (l *nsLab) transfer(from, to, toAddr string, size, sendSize int64, timeout time.Duration) error {
	l.t.Helper()
	e2eTransferSeq.Lock()
	e2eTransferSeq.n++
	name := fmt.Sprintf("xfer%d-recv", e2eTransferSeq.n)
	e2eTransferSeq.Unlock()
	tmo := timeout.String()
	start := time.Now()
	recv := l.Start(to, name, e2eNettoolPath, "recv", "-listen", toAddr, "-timeout", tmo)
	sendOut, sendErr := nsRun(from, timeout+5*time.Second,
		e2eNettoolPath, "send", "-to", toAddr, "-bytes", strconv.FormatInt(sendSize, 10), "-timeout", tmo)
	code, exited := recv.Wait(10 * time.Second)
	if !exited {
		recv.Stop(syscall.SIGKILL, time.Second)
	}
	el := time.Since(start)
	var errs []error
	if sendErr != nil {
		errs = append(errs, fmt.Errorf("sender: %v\n%s", sendErr, sendOut))
	}
	if !exited || code != 0 {
		errs = append(errs, fmt.Errorf("receiver: exited=%v code=%d\n%s", exited, code, recv.Dump()))
	}
	sent, err := nsParseReport(sendOut)
	if err != nil {
		errs = append(errs, fmt.Errorf("sender: %w", err))
	}
	got, err := nsParseReport(recv.Stdout())
	if err != nil {
		errs = append(errs, fmt.Errorf("receiver: %w", err))
	}
	if len(errs) == 0 {
		if sent.Bytes != size {
			errs = append(errs, fmt.Errorf("sender sent %d bytes, want %d", sent.Bytes, size))
		}
		if got != sent {
			errs = append(errs, fmt.Errorf("receiver got %d bytes sha256 %s; sender sent %d bytes sha256 %s",
				got.Bytes, got.SHA256, sent.Bytes, sent.SHA256))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("transfer %d bytes %s → %s (%s): %w", size, from, to, toAddr, err)
	}
	l.t.Logf("transfer %d MB %s → %s (%s): intact, sha256 %s…, %v (%.0f Mbit/s)",
		size/e2eMB, from, to, toAddr, sent.SHA256[:12], el.Round(time.Millisecond),
		float64(size)*8/el.Seconds()/1e6)
	return nil
}

// MustTransfer is Transfer that fails the test on error.
func (l *nsLab) MustTransfer(from, to, toAddr string, size int64) {
	l.t.Helper()
	if err := l.Transfer(from, to, toAddr, size); err != nil {
		l.t.Fatal(err)
	}
}

// nsStar is the star underlay: a router namespace whose bridge br0 joins
// the server and the clients, each with eth0 on 10.0.0.0/24.
type nsStar struct {
	Router   string
	Server   string   // eth0 10.0.0.1/24
	Clients  []string // client i (from 0) has eth0 10.0.0.(11+i)/24
	ServerIP string   // "10.0.0.1"
}

// Star builds a star underlay with n clients and checks that the server
// answers every client's ping.
func (l *nsLab) Star(n int) *nsStar {
	l.t.Helper()
	s := &nsStar{Router: l.AddNS("router"), Server: l.AddNS("server"), ServerIP: "10.0.0.1"}
	l.Bridge(s.Router, "br0")
	l.Veth(s.Server, "eth0", s.Router, "srv")
	l.Must(s.Router, "ip", "link", "set", "srv", "master", "br0")
	l.Must(s.Server, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
	for i := range n {
		c := l.AddNS(fmt.Sprintf("c%d", i+1))
		port := fmt.Sprintf("cl%d", i+1)
		l.Veth(c, "eth0", s.Router, port)
		l.Must(s.Router, "ip", "link", "set", port, "master", "br0")
		l.Must(c, "ip", "addr", "add", fmt.Sprintf("10.0.0.%d/24", 11+i), "dev", "eth0")
		s.Clients = append(s.Clients, c)
	}
	for _, c := range s.Clients {
		l.WaitPing(c, s.ServerIP, nsPingTimeout)
	}
	return s
}

// ClientIP returns client i's underlay address.
func (s *nsStar) ClientIP(i int) string { return fmt.Sprintf("10.0.0.%d", 11+i) }

// nsTwoSite is the layer-2 two-site topology:
//
//	hostA ──eth0/ha── br0 [siteA] eth0 ══ 10.0.0.0/24 ══ eth0 [siteB] br0 ──hb/eth0── hostB
//	192.168.0.5/24          10.0.0.1           10.0.0.2                    192.168.0.3/24
//
// The hosts keep the default MTU 1500. Nothing joins the two bridges: only
// a tunnel between siteA and siteB can.
type nsTwoSite struct {
	HostA, SiteA, SiteB, HostB string
}

// TwoSite builds the two-site topology and checks the underlay.
func (l *nsLab) TwoSite() *nsTwoSite {
	l.t.Helper()
	s := &nsTwoSite{HostA: l.AddNS("hostA"), SiteA: l.AddNS("siteA"), SiteB: l.AddNS("siteB"), HostB: l.AddNS("hostB")}
	l.Veth(s.SiteA, "eth0", s.SiteB, "eth0")
	l.Must(s.SiteA, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
	l.Must(s.SiteB, "ip", "addr", "add", "10.0.0.2/24", "dev", "eth0")
	l.Veth(s.HostA, "eth0", s.SiteA, "ha")
	l.Veth(s.HostB, "eth0", s.SiteB, "hb")
	l.Bridge(s.SiteA, "br0", "ha")
	l.Bridge(s.SiteB, "br0", "hb")
	l.Must(s.HostA, "ip", "addr", "add", "192.168.0.5/24", "dev", "eth0")
	l.Must(s.HostB, "ip", "addr", "add", "192.168.0.3/24", "dev", "eth0")
	l.WaitPing(s.SiteB, "10.0.0.1", nsPingTimeout)
	return s
}

// LinkMTU returns the MTU of dev in ns.
func (l *nsLab) LinkMTU(ns, dev string) int {
	l.t.Helper()
	out := l.Must(ns, "cat", "/sys/class/net/"+dev+"/mtu")
	mtu, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		l.t.Fatalf("mtu of %s in %s: %q: %v", dev, ns, out, err)
	}
	return mtu
}

// LinkExists reports whether dev exists in ns.
func (l *nsLab) LinkExists(ns, dev string) bool {
	_, err := l.Run(ns, "ip", "link", "show", "dev", dev)
	return err == nil
}

// --- quictun itself ---

// e2eLogLevel is the --log-level given to quictun; QUICTUN_E2E_LOG_LEVEL
// overrides it (e.g. debug).
func e2eLogLevel() string {
	if v := os.Getenv("QUICTUN_E2E_LOG_LEVEL"); v != "" {
		return v
	}
	return "info"
}

// Quictun returns the path of the quictun binary TestMain built, failing
// the test when the build failed.
func (l *nsLab) Quictun() string {
	l.t.Helper()
	if e2eQuictunErr != nil {
		l.t.Fatalf("build quictun: %v", e2eQuictunErr)
	}
	if e2eQuictunPath == "" {
		l.t.Fatal("quictun not built (TestMain did not run the build)")
	}
	return e2eQuictunPath
}

// Cert runs `quictun cert args…` in the lab directory (paths such as
// "pki" are relative to it) and fails the test on error.
func (l *nsLab) Cert(args ...string) string {
	l.t.Helper()
	return l.Host(append([]string{l.Quictun(), "cert"}, args...)...)
}

// StartQuictun starts `quictun --log-level L args…` in ns, in the lab
// directory (so relative PKI paths work).
func (l *nsLab) StartQuictun(ns, name string, args ...string) *nsProc {
	l.t.Helper()
	full := append([]string{l.Quictun(), "--log-level", e2eLogLevel()}, args...)
	return l.Start(ns, name, full...)
}

// RunQuictun runs quictun in ns until it exits (bounded by timeout) and
// returns exit code, stderr and whether it exited by itself; a run that
// outlives timeout is stopped.
func (l *nsLab) RunQuictun(ns, name string, timeout time.Duration, args ...string) (code int, stderr string, exited bool) {
	l.t.Helper()
	p := l.StartQuictun(ns, name, args...)
	code, exited = p.Wait(timeout)
	if !exited {
		p.Stop(syscall.SIGTERM, nsStopTimeout)
	}
	return code, p.Stderr(), exited
}

// e2eListenArgs returns the arguments of a TUN `quictun listen` on the star
// underlay's server with the lab's pki.
func e2eListenArgs(extra ...string) []string {
	return append([]string{"listen",
		"--listen", "10.0.0.1:4433",
		"--cert", "pki/server.crt", "--key", "pki/server.key", "--ca", "pki/ca.crt",
	}, extra...)
}

// e2eConnectArgs returns the arguments of a `quictun connect` to the star
// underlay's server as client name of the lab's pki.
func e2eConnectArgs(name string, extra ...string) []string {
	return append([]string{"connect",
		"--server", "10.0.0.1:4433",
		"--cert", "pki/" + name + ".crt", "--key", "pki/" + name + ".key", "--ca", "pki/ca.crt",
	}, extra...)
}

// TestNetnsHarness checks the harness itself on plain kernel networking,
// without quictun: the star underlay, the two-site topology joined by a
// VXLAN in place of the tunnel (so that e2eCheckTwoSite is proven able to
// pass), transfers with checksums, and that the checks fail when they should.
func TestNetnsHarness(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)

	t.Run("star", func(t *testing.T) {
		t.Parallel()
		l := nsNewLab(t, "hs")
		s := l.Star(2)
		l.PingAll(s.Clients[0], s.ClientIP(1), 3)
		l.PingAll(s.Server, s.ClientIP(0), 3)
		l.MustTransfer(s.Clients[0], s.Server, "10.0.0.1:5001", 20*e2eMB)
		l.MustTransfer(s.Server, s.Clients[1], s.ClientIP(1)+":5002", 20*e2eMB)
		l.MustTransfer(s.Clients[1], s.Clients[0], s.ClientIP(0)+":5003", 20*e2eMB)

		// A short transfer is caught.
		if err := l.transfer(s.Clients[0], s.Server, "10.0.0.1:5004", 2*e2eMB, 2*e2eMB-1, 10*time.Second); err == nil {
			t.Error("transfer one byte short passed the check")
		} else {
			t.Logf("short transfer caught: %v", err)
		}
		if err := l.transfer(s.Clients[0], s.Server, "10.0.0.1:5005", 2*e2eMB, 2*e2eMB, 2*time.Second); err != nil {
			t.Errorf("transfer in 2 s failed: %v", err)
		}
		// A transfer to an address nobody has fails within its bound.
		start := time.Now()
		if err := l.transfer(s.Clients[1], s.Clients[0], "10.0.0.99:5006", e2eMB, e2eMB, 2*time.Second); err == nil {
			t.Error("transfer to a blackholed address passed")
		} else if el := time.Since(start); el > 20*time.Second {
			t.Errorf("failed transfer took %v, beyond its bound", el)
		}
		// Pings to nowhere fail, in their bound.
		start = time.Now()
		if err := nsWaitPing(s.Server, "10.0.0.99", time.Second); err == nil {
			t.Error("ping to a missing address succeeded")
		} else if el := time.Since(start); el > 5*time.Second {
			t.Errorf("failed nsWaitPing took %v", el)
		}
		out, err := nsPing(s.Server, "-c", "1", "-W", "1", "-M", "do", "-s", "1473", s.ClientIP(0))
		if err == nil || !strings.Contains(strings.ToLower(out), "message too long") {
			t.Errorf("oversized DF ping on a 1500 link: err=%v, want a local 'message too long':\n%s", err, out)
		}
	})

	t.Run("processes", func(t *testing.T) {
		t.Parallel()
		l := nsNewLab(t, "hp")
		ns := l.AddNS("p")
		p := l.Start(ns, "exit3", "sh", "-c", "echo out; echo err >&2; exit 3")
		if code, ok := p.Wait(5 * time.Second); !ok || code != 3 {
			t.Errorf("exit 3: got exited=%v code %d", ok, code)
		}
		if p.Stdout() != "out\n" || p.Stderr() != "err\n" {
			t.Errorf("output: stdout %q stderr %q", p.Stdout(), p.Stderr())
		}
		if got := e2eErrorLine("time=x level=INFO msg=a\nquictun: first\nquictun: open pki/x.crt: no such file\n"); got != "quictun: open pki/x.crt: no such file" {
			t.Errorf("e2eErrorLine: %q", got)
		}
		p = l.Start(ns, "sleep", "sleep", "60")
		if _, ok := p.Wait(300 * time.Millisecond); ok {
			t.Fatal("sleep 60 exited at once")
		}
		start := time.Now()
		if _, ok := p.Stop(syscall.SIGTERM, nsStopTimeout); !ok || time.Since(start) > nsStopTimeout {
			t.Errorf("SIGTERM did not stop sleep in %v", nsStopTimeout)
		}
		// A process that ignores SIGTERM is killed after the bound.
		p = l.Start(ns, "stubborn", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
		if !p.WaitOutput("ready", 5*time.Second) {
			t.Fatal("stubborn never started")
		}
		start = time.Now()
		if _, ok := p.Stop(syscall.SIGTERM, time.Second); ok {
			t.Error("a process ignoring SIGTERM stopped by itself")
		}
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("SIGKILL came after %v", el)
		}
		h := l.Start(ns, "hold", e2eNettoolPath, "hold-udp", "-listen", "127.0.0.1:4433")
		if !h.WaitOutput("ready", 5*time.Second) {
			t.Fatalf("hold-udp not ready:\n%s", h.Dump())
		}
		out, _ := l.Run(ns, "ss", "-Hlun")
		if !strings.Contains(out, "127.0.0.1:4433") {
			t.Errorf("hold-udp: 127.0.0.1:4433 not bound:\n%s", out)
		}
	})

	t.Run("two sites over vxlan", func(t *testing.T) {
		t.Parallel()
		l := nsNewLab(t, "hv")
		s := l.TwoSite()
		if err := nsWaitPing(s.HostA, "192.168.0.3", time.Second); err == nil {
			t.Fatal("hostA reaches hostB with nothing joining the sites")
		}
		// A VXLAN (50 bytes of overhead) over an underlay with room for it
		// stands in for the tunnel.
		for _, site := range []struct{ ns, local, remote string }{
			{s.SiteA, "10.0.0.1", "10.0.0.2"}, {s.SiteB, "10.0.0.2", "10.0.0.1"},
		} {
			l.Must(site.ns, "ip", "link", "set", "eth0", "mtu", "1600")
			l.Must(site.ns, "ip", "link", "add", "vx0", "type", "vxlan", "id", "42",
				"local", site.local, "remote", site.remote, "dstport", "4789", "dev", "eth0")
			l.Must(site.ns, "ip", "link", "set", "vx0", "mtu", "1500", "master", "br0", "up")
		}
		e2eCheckTwoSite(l, s)
	})
}
