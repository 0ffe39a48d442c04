package main

// End-to-end tests of roaming (issue 3): the tunnel must come back by
// itself, with the same device and addresses, when the server restarts,
// when the client's underlay address changes or vanishes for a while, when
// the path is blocked for longer than the idle timeout, when a NAT rebinds
// the client to a new port, and the server must survive clients that vanish
// without a close.
//
// Every name this file defines starts with roam. testdata/netns/recovery.sh
// measures the same recovery times again, several runs each.

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// roamRestartBound is the bound: a server killed and started
	// again carries the client's traffic within 3 s of its start.
	roamRestartBound = 3 * time.Second
	// roamRecoverBound bounds recovery after the path came back (address
	// changed, NAT rebound, block lifted): a redial finds the server
	// within about a second, plus slack for a loaded test machine.
	roamRecoverBound = 5 * time.Second
	// roamXferSize and roamXferRate make a transfer last about 6 s, so that
	// the event happens while it runs.
	roamXferSize = 24 * e2eMB
	roamXferRate = "32mbit"
	// roamShortIdle and roamShortKeepalive are the flags of the tests that
	// must outlast the idle timeout.
	roamShortIdle      = 5 * time.Second
	roamShortKeepalive = time.Second
)

// roamTable is the name of the nftables tables this run makes, in the
// namespaces it made.
var roamTable = fmt.Sprintf("qtroam%d", os.Getpid())

// roamLab is a star underlay with a TUN server (10.77.0.1/24) and clients
// c1… (10.77.0.11…/24 from their certificates) connected to it.
type roamLab struct {
	*nsLab
	star    *nsStar
	srv     *nsProc
	clients []*nsProc
	flags   []string // tunnel flags given to every quictun
}

// roamStart builds the star with n clients, the PKI, and runs the server and
// the clients with the tunnel flags given; it waits until every client
// reaches the server through the tunnel.
func roamStart(t *testing.T, id string, n int, flags ...string) *roamLab {
	t.Helper()
	l := &roamLab{nsLab: nsNewLab(t, id), flags: flags}
	l.star = l.Star(n)
	roamPKI(l.nsLab, n)
	l.srv = l.startServer("server")
	for i := range n {
		l.clients = append(l.clients, l.startClient(i, fmt.Sprintf("client%d", i+1)))
	}
	for _, c := range l.star.Clients {
		l.WaitPing(c, "10.77.0.1", nsPingTimeout)
	}
	return l
}

// roamPKI makes a CA, the server's certificate for 10.0.0.1 and n client
// certificates c1… with tunnel addresses 10.77.0.11….
func roamPKI(l *nsLab, n int) {
	l.t.Helper()
	l.Cert("ca", "--dir", "pki", "--name", "E2E Roam CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	for i := range n {
		l.Cert("issue", "--dir", "pki", "--name", fmt.Sprintf("c%d", i+1), "--ip", fmt.Sprintf("10.77.0.%d/24", 11+i))
	}
}

func (l *roamLab) startServer(name string) *nsProc {
	l.t.Helper()
	return l.StartQuictun(l.star.Server, name, e2eListenArgs(append([]string{
		"--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24"}, l.flags...)...)...)
}

func (l *roamLab) startClient(i int, name string) *nsProc {
	l.t.Helper()
	return l.StartQuictun(l.star.Clients[i], name,
		e2eConnectArgs(fmt.Sprintf("c%d", i+1), append([]string{"--dev", "qt0"}, l.flags...)...)...)
}

// roamShortFlags are the tunnel flags of the tests that outlast the idle
// timeout.
func roamShortFlags() []string {
	return []string{"--keepalive", roamShortKeepalive.String(), "--idle-timeout", roamShortIdle.String()}
}

// roamFirstReply pings addr from ns every 50 ms until the first reply and
// returns how long after since it came. It fails after bound.
func roamFirstReply(ns, addr string, since time.Time, bound time.Duration) (time.Duration, error) {
	secs := int((bound + time.Second - 1) / time.Second)
	out, err := nsRun(ns, bound+5*time.Second,
		"ping", "-n", "-c", "1", "-w", strconv.Itoa(secs), "-i", "0.05", addr)
	el := time.Since(since)
	if _, got, ok := nsPingCounts(out); err != nil || !ok || got < 1 {
		return el, fmt.Errorf("no reply from %s in %v: %v\n%s", addr, bound, err, out)
	}
	return el, nil
}

// roamIfindex returns the interface index of dev in ns.
func roamIfindex(l *nsLab, ns, dev string) int {
	l.t.Helper()
	out := l.Must(ns, "cat", "/sys/class/net/"+dev+"/ifindex")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		l.t.Fatalf("ifindex of %s in %s: %q: %v", dev, ns, out, err)
	}
	return n
}

// roamCount counts the log lines of p whose message is msg.
func roamCount(p *nsProc, msg string) int {
	return len(roamLines(p, msg))
}

// roamLines returns the log lines of p (stderr, slog text) whose message is
// msg and that contain every one of attrs.
func roamLines(p *nsProc, msg string, attrs ...string) []string {
	var lines []string
	quoted := "msg=" + strconv.Quote(msg)
	for _, line := range strings.Split(p.Stderr(), "\n") {
		if !strings.Contains(line, quoted) && !strings.Contains(line, "msg="+msg+" ") {
			continue
		}
		ok := true
		for _, a := range attrs {
			ok = ok && strings.Contains(line, a)
		}
		if ok {
			lines = append(lines, line)
		}
	}
	return lines
}

// roamWaitLines waits up to timeout until p has logged at least n lines
// roamLines would return.
func roamWaitLines(p *nsProc, n int, timeout time.Duration, msg string, attrs ...string) bool {
	deadline := time.Now().Add(timeout)
	for len(roamLines(p, msg, attrs...)) < n {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// roamAlive fails the test if one of the processes has exited.
func roamAlive(t *testing.T, ps ...*nsProc) {
	t.Helper()
	for _, p := range ps {
		if p.Exited() {
			t.Errorf("%s exited: %s", p.name, p.state)
		}
	}
}

// roamShape limits what dev in ns sends to roamXferRate, so that a
// transfer lasts long enough for an event to happen during it.
func roamShape(l *nsLab, ns, dev string) {
	l.t.Helper()
	l.Must(ns, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
		"rate", roamXferRate, "burst", "64kb", "latency", "400ms")
}

// roamTransfer is a TCP transfer running in the background.
type roamTransfer struct {
	done  chan error
	port  string
	start time.Time
}

// roamStartTransfer starts a transfer of roamXferSize bytes from ns from to
// addr:port in ns to, and waits until its TCP connection is established.
func roamStartTransfer(l *nsLab, from, to, addr, port string) *roamTransfer {
	l.t.Helper()
	x := &roamTransfer{done: make(chan error, 1), port: port, start: time.Now()}
	go func() { x.done <- l.Transfer(from, to, addr+":"+port, roamXferSize) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := l.Run(from, "ss", "-Htn", "state", "established", "dport", "=", ":"+port)
		if strings.TrimSpace(out) != "" {
			return x
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("transfer to %s:%s: no established connection in 10 s", addr, port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running fails the test if the transfer has already ended: an event after
// its end would prove nothing.
func (x *roamTransfer) Running(t *testing.T, event string) {
	t.Helper()
	select {
	case err := <-x.done:
		x.done <- err
		t.Fatalf("the transfer ended %v after its start, before %s: the test proves nothing (raise roamXferSize)",
			time.Since(x.start).Round(time.Millisecond), event)
	default:
	}
}

// Wait waits for the transfer's result (bounded).
func (x *roamTransfer) Wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-x.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(nsTransferTimeout + 30*time.Second):
		t.Fatal("transfer did not finish in its bound")
	}
}

// roamWatchSources installs in ns an nftables set that records the source
// address and port of every UDP packet to port 4433 (what the server sees
// of its clients).
func roamWatchSources(l *nsLab, ns string) {
	l.t.Helper()
	rules := fmt.Sprintf(`table inet %[1]s {
	set seen {
		type ipv4_addr . inet_service
		flags dynamic
		size 1024
	}
	chain in {
		type filter hook input priority 0; policy accept;
		udp dport 4433 add @seen { ip saddr . udp sport }
	}
}
`, roamTable)
	if out, err := nsRunInput(ns, rules, "nft", "-f", "-"); err != nil {
		l.t.Fatalf("nft in %s: %v\n%s", ns, err, out)
	}
}

var roamSourceRE = regexp.MustCompile(`(\d+\.\d+\.\d+\.\d+) \. (\d+)`)

// roamSources returns the sources roamWatchSources recorded, "addr:port".
func roamSources(l *nsLab, ns string) []string {
	l.t.Helper()
	out := l.Must(ns, "nft", "list", "set", "inet", roamTable, "seen")
	var srcs []string
	for _, m := range roamSourceRE.FindAllStringSubmatch(out, -1) {
		srcs = append(srcs, m[1]+":"+m[2])
	}
	slices.Sort(srcs)
	return srcs
}

// TestE2ERoamServerRestart kills the server with SIGKILL and starts it
// again: the client keeps running with the same device, and ping through
// the tunnel works again within 3 s of the new server's start.
func TestE2ERoamServerRestart(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	// The default keepalive and idle timeout: the client must not wait for
	// either to notice the restart.
	l := roamStart(t, "rsrv", 1)
	c1NS := l.star.Clients[0]
	client := l.clients[0]
	ifindex := roamIfindex(l.nsLab, c1NS, "qt0")

	if code, _ := l.srv.Stop(syscall.SIGKILL, nsStopTimeout); code != -1 {
		t.Fatalf("server after SIGKILL: exit code %d, want death by signal", code)
	}
	// A while with no server: the client keeps its device and sends into
	// the void.
	out, _ := nsPing(c1NS, "-n", "-c", "3", "-i", "0.3", "-W", "1", "10.77.0.1")
	if _, got, ok := nsPingCounts(out); !ok || got != 0 {
		t.Fatalf("ping with the server killed: want 0 replies:\n%s", out)
	}
	start := time.Now()
	srv2 := l.startServer("server2")
	el, err := roamFirstReply(c1NS, "10.77.0.1", start, 10*time.Second)
	if err != nil {
		t.Fatalf("after the server restart: %v", err)
	}
	t.Logf("server restart: first reply through the tunnel %v after the new server's start", el.Round(time.Millisecond))
	if el > roamRestartBound {
		t.Errorf("first reply %v after the server's start, want within %v", el.Round(time.Millisecond), roamRestartBound)
	}

	roamAlive(t, client, srv2)
	if got := roamIfindex(l.nsLab, c1NS, "qt0"); got != ifindex {
		t.Errorf("client qt0 ifindex %d after the restart, was %d: the device was recreated", got, ifindex)
	}
	if addrs := l.Must(c1NS, "ip", "-br", "addr", "show", "dev", "qt0"); !e2eHasField(addrs, "10.77.0.11/24") {
		t.Errorf("client qt0 lost its address:\n%s", addrs)
	}
	if n := roamCount(client, "tunnel up"); n != 2 {
		t.Errorf("client logged %d×\"tunnel up\", want 2 (first connect, after the restart)", n)
	}
	if n := roamCount(srv2, "client connected"); n != 1 {
		t.Errorf("the new server logged %d×\"client connected\", want 1", n)
	}
	// The new handshake resumed the TLS session: the ticket key is derived
	// from the server's key, so it outlives the process.
	if n := len(roamLines(srv2, "client connected", "resumed=true")); n != 1 {
		t.Errorf("the new server's handshake was not a TLS resumption (want resumed=true):\n%s", srv2.Stderr())
	}
	l.PingAll(c1NS, "10.77.0.1", 5)
	l.PingAll(l.star.Server, "10.77.0.11", 3)
}

// roamAddrCase is a change of the client's underlay address during a TCP
// transfer through the tunnel.
func roamAddrCase(t *testing.T, id string, change func(l *nsLab, ns string) time.Time) *roamLab {
	e2eRequireRoot(t, "nft", "tc", "ss")
	l := roamStart(t, id, 1)
	srvNS, c1NS := l.star.Server, l.star.Clients[0]
	// Deleting the primary address must not delete the new secondary.
	l.Must(c1NS, "sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1")
	roamWatchSources(l.nsLab, srvNS)
	roamShape(l.nsLab, c1NS, "qt0")
	ifindex := roamIfindex(l.nsLab, c1NS, "qt0")

	x := roamStartTransfer(l.nsLab, c1NS, srvNS, "10.77.0.1", "5001")
	time.Sleep(time.Second)
	x.Running(t, "the address change")
	back := change(l.nsLab, c1NS)
	el, err := roamFirstReply(c1NS, "10.77.0.1", back, 10*time.Second)
	if err != nil {
		t.Errorf("after the address change: %v", err)
	} else {
		t.Logf("%s: first reply through the tunnel %v after the new address", id, el.Round(time.Millisecond))
		if el > roamRecoverBound {
			t.Errorf("first reply %v after the new address, want within %v", el.Round(time.Millisecond), roamRecoverBound)
		}
	}
	x.Running(t, "the first reply after the address change")
	x.Wait(t)

	roamAlive(t, l.srv, l.clients[0])
	if got := roamIfindex(l.nsLab, c1NS, "qt0"); got != ifindex {
		t.Errorf("client qt0 ifindex %d, was %d: the device was recreated", got, ifindex)
	}
	srcs := roamSources(l.nsLab, srvNS)
	t.Logf("the server saw the client from %v", srcs)
	if !slices.ContainsFunc(srcs, func(s string) bool { return strings.HasPrefix(s, "10.0.0.21:") }) {
		t.Errorf("the server never saw a packet from the new address 10.0.0.21: %v", srcs)
	}
	return l
}

// TestE2ERoamAddressChange replaces the client's underlay address (add
// 10.0.0.21, delete 10.0.0.11) during a TCP transfer through the tunnel: the
// transfer arrives intact and the server follows the client by connection
// migration, without a new handshake.
func TestE2ERoamAddressChange(t *testing.T) {
	t.Parallel()
	l := roamAddrCase(t, "raddr", func(l *nsLab, ns string) time.Time {
		l.Must(ns, "ip", "addr", "add", "10.0.0.21/24", "dev", "eth0")
		l.Must(ns, "ip", "addr", "del", "10.0.0.11/24", "dev", "eth0")
		return time.Now()
	})
	if n := roamCount(l.srv, "client connected"); n != 1 {
		t.Errorf("server logged %d×\"client connected\", want 1: the address change caused a new handshake", n)
	}
	if n := roamCount(l.clients[0], "tunnel up"); n != 1 {
		t.Errorf("client logged %d×\"tunnel up\", want 1", n)
	}
	// The server says it followed the client (it checks every 2 s).
	if !roamWaitLines(l.srv, 1, 5*time.Second, "client address changed (connection migrated)", "to=10.0.0.21:") {
		t.Errorf("server did not log the migration to 10.0.0.21:\n%s", l.srv.Stderr())
	}
}

// TestE2ERoamNoAddress leaves the client without any underlay address (and
// so without a route) for 3 s during a TCP transfer, then gives it a new
// one: the client keeps running, counts the send errors as loss, and the
// transfer arrives intact.
func TestE2ERoamNoAddress(t *testing.T) {
	t.Parallel()
	l := roamAddrCase(t, "rnoad", func(l *nsLab, ns string) time.Time {
		l.Must(ns, "ip", "addr", "del", "10.0.0.11/24", "dev", "eth0")
		out, _ := nsPing(ns, "-n", "-c", "1", "-W", "1", "10.0.0.1")
		if !strings.Contains(strings.ToLower(out), "unreachable") {
			l.t.Errorf("with no address the underlay should be unreachable:\n%s", out)
		}
		time.Sleep(3 * time.Second)
		l.Must(ns, "ip", "addr", "add", "10.0.0.21/24", "dev", "eth0")
		return time.Now()
	})
	// The tunnel may survive (migration) or redial; either way the device
	// stayed and the transfer survived. Say which it was.
	t.Logf("server logged %d×\"client connected\", client %d×\"tunnel up\" (1 each = survived by migration)",
		roamCount(l.srv, "client connected"), roamCount(l.clients[0], "tunnel up"))
}

// TestE2ERoamBlocked drops the tunnel's UDP both ways (nftables, in the
// client's namespace) for longer than the idle timeout, then lifts the
// block: both ends time the connection out, the client keeps its device
// and redials, logging one line per state change, and ping through the
// tunnel recovers.
func TestE2ERoamBlocked(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "nft")
	l := roamStart(t, "rblk", 1, roamShortFlags()...)
	c1NS := l.star.Clients[0]
	client := l.clients[0]
	ifindex := roamIfindex(l.nsLab, c1NS, "qt0")

	block := fmt.Sprintf(`table inet %[1]s {
	chain out {
		type filter hook output priority 0; policy accept;
		udp dport 4433 drop
	}
	chain in {
		type filter hook input priority 0; policy accept;
		udp sport 4433 drop
	}
}
`, roamTable)
	if out, err := nsRunInput(c1NS, block, "nft", "-f", "-"); err != nil {
		t.Fatalf("block: %v\n%s", err, out)
	}
	blocked := time.Now()
	if !roamWaitLines(client, 1, roamShortIdle+3*time.Second, "tunnel down") {
		t.Fatalf("client did not notice the dead path within the idle timeout %v + 3 s", roamShortIdle)
	}
	t.Logf("client: tunnel down %v after the block", time.Since(blocked).Round(time.Millisecond))
	if !roamWaitLines(l.srv, 1, roamShortIdle+3*time.Second, "client disconnected", "peer=c1", "idle timeout") {
		t.Fatalf("server did not time the session out within %v + 3 s", roamShortIdle)
	}
	// Several redial attempts fail while the block lasts.
	time.Sleep(roamShortIdle)
	roamAlive(t, client)
	if out, err := l.Run(c1NS, "nft", "delete", "table", "inet", roamTable); err != nil {
		t.Fatalf("unblock: %v\n%s", err, out)
	}
	unblocked := time.Now()
	t.Logf("blocked for %v", unblocked.Sub(blocked).Round(time.Millisecond))
	l.recovered(t, "the block was lifted", unblocked, ifindex)
	if n := roamCount(client, "tunnel up"); n != 2 {
		t.Errorf("client logged %d×\"tunnel up\", want 2", n)
	}
	// One line per state change (lost, unreachable), not one per attempt.
	if n := roamCount(client, "connection lost; redialling") + roamCount(client, "server unreachable; redialling"); n < 1 || n > 2 {
		t.Errorf("client logged %d redialling lines during the block, want 1 or 2 (one per state change):\n%s", n, client.Stderr())
	}
	l.PingAll(c1NS, "10.77.0.1", 5)
}

// TestE2ERoamNATRebind puts the client behind a router that masquerades its
// UDP to a random port in 40000-40999, and makes the router forget its
// mappings (its outside address deleted and added again) during a TCP
// transfer: the next packet leaves from a new port, the server follows by
// connection migration without a new handshake, and the transfer arrives
// intact.
//
//	c1 eth0 192.168.1.2 ── in0 192.168.1.1 [nat] out0 10.0.0.254 ── eth0 10.0.0.1 server
func TestE2ERoamNATRebind(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t, "nft", "tc", "ss")
	l := nsNewLab(t, "rnat")
	c1NS, natNS, srvNS := l.AddNS("c1"), l.AddNS("nat"), l.AddNS("server")
	l.Veth(c1NS, "eth0", natNS, "in0")
	l.Veth(natNS, "out0", srvNS, "eth0")
	l.Must(c1NS, "ip", "addr", "add", "192.168.1.2/24", "dev", "eth0")
	l.Must(c1NS, "ip", "route", "add", "default", "via", "192.168.1.1")
	l.Must(natNS, "ip", "addr", "add", "192.168.1.1/24", "dev", "in0")
	l.Must(natNS, "ip", "addr", "add", "10.0.0.254/24", "dev", "out0")
	l.Must(natNS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.Must(srvNS, "ip", "addr", "add", "10.0.0.1/24", "dev", "eth0")
	nat := fmt.Sprintf(`table ip %[1]s {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "out0" meta l4proto udp masquerade to :40000-40999 random
		oifname "out0" masquerade
	}
}
`, roamTable)
	if out, err := nsRunInput(natNS, nat, "nft", "-f", "-"); err != nil {
		t.Fatalf("nat: %v\n%s", err, out)
	}
	l.WaitPing(c1NS, "10.0.0.1", nsPingTimeout)
	roamWatchSources(l, srvNS)

	roamPKI(l, 1)
	srv := l.StartQuictun(srvNS, "server", e2eListenArgs("--mode", "tun", "--dev", "qt0", "--ip", "10.77.0.1/24")...)
	client := l.StartQuictun(c1NS, "client1", e2eConnectArgs("c1", "--dev", "qt0")...)
	l.WaitPing(c1NS, "10.77.0.1", nsPingTimeout)
	roamShape(l, c1NS, "qt0")
	before := roamSources(l, srvNS)
	if len(before) != 1 {
		t.Fatalf("before the rebind the server saw the client from %v, want one source", before)
	}

	x := roamStartTransfer(l, c1NS, srvNS, "10.77.0.1", "5001")
	time.Sleep(time.Second)
	x.Running(t, "the NAT rebind")
	// Removing the NAT's outside address makes the kernel forget the
	// masqueraded flows (in a work item, so give it a moment); the next
	// packet gets a new random port. A new port can still repeat the old
	// one by chance (1 in 1000) or the flush can come late: then rebind
	// again, a bounded number of times.
	for attempt := 1; attempt <= 3; attempt++ {
		l.Must(natNS, "ip", "addr", "del", "10.0.0.254/24", "dev", "out0")
		time.Sleep(200 * time.Millisecond)
		l.Must(natNS, "ip", "addr", "add", "10.0.0.254/24", "dev", "out0")
		rebound := time.Now()
		el, err := roamFirstReply(c1NS, "10.77.0.1", rebound, 10*time.Second)
		if err != nil {
			t.Errorf("after the NAT rebind: %v", err)
			break
		}
		t.Logf("NAT rebind: first reply through the tunnel %v after the rebind", el.Round(time.Millisecond))
		if el > roamRecoverBound {
			t.Errorf("first reply %v after the rebind, want within %v", el.Round(time.Millisecond), roamRecoverBound)
		}
		if len(roamSources(l, srvNS)) >= 2 {
			break
		}
		t.Logf("rebind attempt %d: the NAT kept the client's port; again", attempt)
	}
	x.Running(t, "the first reply after the rebind")
	x.Wait(t)

	after := roamSources(l, srvNS)
	t.Logf("the server saw the client from %v before the rebind, %v in all", before, after)
	if len(after) < 2 {
		t.Fatalf("the NAT did not rebind (the server saw only %v): the test proves nothing", after)
	}
	for _, s := range after {
		port, _ := strconv.Atoi(s[strings.LastIndexByte(s, ':')+1:])
		if !strings.HasPrefix(s, "10.0.0.254:") || port < 40000 || port > 40999 {
			t.Errorf("source %s is not the NAT's 10.0.0.254:40000-40999", s)
		}
	}
	roamAlive(t, srv, client)
	if n := roamCount(srv, "client connected"); n != 1 {
		t.Errorf("server logged %d×\"client connected\", want 1: the rebind caused a new handshake", n)
	}
	if n := roamCount(client, "tunnel up"); n != 1 {
		t.Errorf("client logged %d×\"tunnel up\", want 1", n)
	}
}

// TestE2ERoamVanishingClients kills clients with SIGKILL (no close): the
// server keeps serving a good client, times the vanished sessions out
// (short idle timeout) and says so in its log; a killed client started
// again at once replaces its stale session.
func TestE2ERoamVanishingClients(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := roamStart(t, "rvan", 3, roamShortFlags()...)
	c1NS, c2NS := l.star.Clients[0], l.star.Clients[1]
	c1, c2, c3 := l.clients[0], l.clients[1], l.clients[2]
	// c1 pings the server all along.
	watch := l.Start(c1NS, "client1-ping", "ping", "-n", "-i", "0.2", "-c", "60", "-w", "30", "10.77.0.1")

	killed := time.Now()
	for _, p := range []*nsProc{c2, c3} {
		if code, _ := p.Stop(syscall.SIGKILL, nsStopTimeout); code != -1 {
			t.Fatalf("%s after SIGKILL: exit code %d, want death by signal", p.name, code)
		}
	}
	// c2 comes back at once with the same identity, before the server timed
	// its old session out.
	c2b := l.startClient(1, "client2-again")
	if !roamWaitLines(c2b, 1, 10*time.Second, "tunnel up") {
		t.Fatal("client2 started again: no tunnel in 10 s")
	}
	el, err := roamFirstReply(c2NS, "10.77.0.1", killed, 10*time.Second)
	if err != nil {
		t.Fatalf("client2 started again: %v", err)
	}
	t.Logf("client2 started again: first reply %v after the kill", el.Round(time.Millisecond))
	if !roamWaitLines(l.srv, 1, 5*time.Second, "client replaced by a new connection of the same identity", "peer=c2") {
		t.Errorf("server did not log that client2's new connection replaced the stale one")
	}
	// c3 stays away: the server times it out.
	bound := roamShortIdle + 5*time.Second
	if !roamWaitLines(l.srv, 1, bound, "client disconnected", "peer=c3", "idle timeout") {
		t.Fatalf("server did not report client3's session ended by idle timeout within %v of the kill", bound)
	}
	t.Logf("server timed client3 out %v after the kill", time.Since(killed).Round(time.Millisecond))

	roamAlive(t, l.srv, c1, c2b)
	if lines := roamLines(l.srv, "client disconnected", "peer=c1"); len(lines) != 0 {
		t.Errorf("server ended the good client's session: %v", lines)
	}
	if n := roamCount(c1, "tunnel up"); n != 1 {
		t.Errorf("client1 logged %d×\"tunnel up\", want 1", n)
	}
	l.PingAll(l.star.Server, "10.77.0.11", 3)
	l.PingAll(l.star.Server, "10.77.0.12", 3)
	l.PingAll(c1NS, "10.77.0.12", 3)
	// Every echo of the watcher so far was answered: the good client never
	// noticed.
	code, _ := watch.Stop(syscall.SIGINT, nsStopTimeout)
	sent, got, ok := nsPingCounts(watch.Stdout())
	if !ok || sent < 10 || sent-got > 1 {
		t.Errorf("client1's ping while the others vanished: %d sent, %d answered (exit %d), want all but the last:\n%s",
			sent, got, code, watch.Stdout())
	}
}

// TestE2ERoamFrozen stands in for a laptop's sleep: the client process is
// stopped (SIGSTOP) for longer than the idle timeout, so the server times
// its session out, then continued. The client must notice at once, redial
// with the same device and address, and carry traffic again. (A real
// suspend also stops the monotonic clock; the client's wall-clock jump
// detector covers that case and cannot be provoked here without changing
// the machine's clock.)
func TestE2ERoamFrozen(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := roamStart(t, "rfrz", 1, roamShortFlags()...)
	c1NS := l.star.Clients[0]
	client := l.clients[0]
	ifindex := roamIfindex(l.nsLab, c1NS, "qt0")

	if err := syscall.Kill(client.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP client: %v", err)
	}
	frozen := time.Now()
	if !roamWaitLines(l.srv, 1, roamShortIdle+3*time.Second, "client disconnected", "peer=c1", "idle timeout") {
		syscall.Kill(client.Pid(), syscall.SIGCONT)
		t.Fatalf("server did not time the frozen client out within %v + 3 s:\n%s", roamShortIdle, l.srv.Stderr())
	}
	time.Sleep(time.Second)
	if err := syscall.Kill(client.Pid(), syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT client: %v", err)
	}
	woke := time.Now()
	t.Logf("client frozen for %v", woke.Sub(frozen).Round(time.Millisecond))
	l.recovered(t, "the client woke", woke, ifindex)
	if n := roamCount(l.srv, "client connected"); n != 2 {
		t.Errorf("server logged %d×\"client connected\", want 2 (before and after the freeze):\n%s", n, l.srv.Stderr())
	}
	l.PingAll(l.star.Server, "10.77.0.11", 3)
}

// recovered checks that after event (at since) client 1's tunnel answers
// within roamRecoverBound, both processes still run, and the client's qt0
// is the same device (ifindex) as before.
func (l *roamLab) recovered(t *testing.T, event string, since time.Time, ifindex int) {
	t.Helper()
	ns := l.star.Clients[0]
	el, err := roamFirstReply(ns, "10.77.0.1", since, 10*time.Second)
	if err != nil {
		t.Fatalf("after %s: %v", event, err)
	}
	t.Logf("first reply through the tunnel %v after %s", el.Round(time.Millisecond), event)
	if el > roamRecoverBound {
		t.Errorf("first reply %v after %s, want within %v", el.Round(time.Millisecond), event, roamRecoverBound)
	}
	roamAlive(t, l.clients[0], l.srv)
	if got := roamIfindex(l.nsLab, ns, "qt0"); got != ifindex {
		t.Errorf("client qt0 ifindex %d, was %d: the device was recreated", got, ifindex)
	}
}
