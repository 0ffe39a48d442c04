package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestE2ERules runs a TUN hub with access rules from its config file, as
// an administrator would write them, and three clients whose groups come
// from certificates issued with `cert issue --group`: alice (eng), bob
// (ops) and carol (no group). The rules let eng reach ops by ping and by
// TCP on port 5001 only, and client-to-client = "deny" stops everything
// else between clients. So:
//   - alice pings bob and a TCP transfer alice → bob:5001 arrives intact:
//     bob's replies (echo replies, SYN-ACK, ACKs, the receiver's report)
//     come back although no rule allows bob → alice;
//   - bob's ping to alice, carol's pings, a TCP connection bob → alice
//     and one alice → bob:5002 fail;
//   - every client still pings the server (client ↔ server traffic no
//     rule matches is allowed);
//   - the denied packets show in `quictun status` (text and JSON, on the
//     sender's session) and in the metrics under the reason "policy";
//   - after the file gains a rule and `quictun reload`, bob's ping to
//     alice passes at once, on the same sessions.
func TestE2ERules(t *testing.T) {
	t.Parallel()
	e2eRequireRoot(t)
	l := nsNewLab(t, "rul")
	star := l.Star(3)
	srvNS := star.Server
	aliceNS, bobNS, carolNS := star.Clients[0], star.Clients[1], star.Clients[2]
	const alice, bob, carol, server = "10.77.0.11", "10.77.0.12", "10.77.0.13", "10.77.0.1"

	l.Cert("ca", "--dir", "pki", "--name", "E2E rules CA")
	l.Cert("issue", "--dir", "pki", "--name", "server", "--server", "--host", "10.0.0.1")
	l.Cert("issue", "--dir", "pki", "--name", "alice", "--ip", alice+"/24", "--group", "eng")
	l.Cert("issue", "--dir", "pki", "--name", "bob", "--ip", bob+"/24", "--group", "ops", "--group", "db")
	l.Cert("issue", "--dir", "pki", "--name", "carol", "--ip", carol+"/24")
	if out := l.Cert("show", "pki/bob.crt"); !strings.Contains(out, "Groups:            ops, db") {
		t.Fatalf("cert show of bob lacks its groups:\n%s", out)
	}

	const metricsAddr = "127.0.0.1:9478"
	serverFile := l.Path("server.toml")
	write := func(rules ...string) {
		t.Helper()
		quoted := make([]string, len(rules))
		for i, r := range rules {
			quoted[i] = fmt.Sprintf("  %q,", r)
		}
		content := fmt.Sprintf(`listen = "10.0.0.1:4433"
cert = "pki/server.crt"
key = "pki/server.key"
ca = "pki/ca.crt"
dev = "qt0"
ip = ["10.77.0.1/24"]
metrics = %q
log-level = %q
client-to-client = "deny"
rule = [
%s
]
`, metricsAddr, e2eLogLevel(), strings.Join(quoted, "\n"))
		if err := os.WriteFile(serverFile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := []string{
		"allow from group:eng to group:ops proto icmp",
		"allow from group:eng to group:ops proto tcp port 5001",
	}
	write(rules...)
	srv := l.Start(srvNS, "server", l.Quictun(), "listen", "--config", serverFile)
	procs := []*nsProc{srv}
	for i, name := range []string{"alice", "bob", "carol"} {
		procs = append(procs, l.StartQuictun(star.Clients[i], name, e2eConnectArgs(name, "--dev", "qt0")...))
	}
	for _, ns := range star.Clients {
		l.WaitPing(ns, server, nsPingTimeout)
	}

	// denied pings from ns to addr: every one unanswered.
	denied := func(t *testing.T, what, ns, addr string) {
		t.Helper()
		out, err := nsPing(ns, "-c", "3", "-i", "0.2", "-W", "1", addr)
		if sent, received, ok := nsPingCounts(out); err == nil || !ok || sent != 3 || received != 0 {
			t.Errorf("%s: ping %s answered (%d of %d), want all 3 denied (err %v):\n%s", what, addr, received, sent, err, out)
		}
	}
	policyDrops := func(t *testing.T, name string) uint64 {
		t.Helper()
		return e2eMustSession(t, e2eStatus(l.With(t), srvNS), name).Drops["policy"]
	}

	t.Run("allowed one way", func(t *testing.T) {
		l := l.With(t)
		l.PingAll(aliceNS, bob, 3)
		l.MustTransfer(aliceNS, bobNS, bob+":5001", 4*e2eMB)
	})

	t.Run("denied", func(t *testing.T) {
		l := l.With(t)
		bob0, carol0 := policyDrops(t, "bob"), policyDrops(t, "carol")
		denied(t, "bob → alice (only eng → ops is allowed)", bobNS, alice)
		if got := policyDrops(t, "bob") - bob0; got != 3 {
			t.Errorf("bob's policy drops grew by %d for 3 denied pings, want 3", got)
		}
		denied(t, "carol → bob (carol is in no group)", carolNS, bob)
		denied(t, "carol → alice", carolNS, alice)
		if got := policyDrops(t, "carol") - carol0; got != 6 {
			t.Errorf("carol's policy drops grew by %d for 6 denied pings, want 6", got)
		}
		if err := l.transfer(bobNS, aliceNS, alice+":5001", e2eMB, e2eMB, 3*time.Second); err == nil {
			t.Error("a TCP connection bob → alice:5001 went through; no rule allows it")
		}
		if err := l.transfer(aliceNS, bobNS, bob+":5002", e2eMB, e2eMB, 3*time.Second); err == nil {
			t.Error("a TCP connection alice → bob:5002 went through; the rule allows port 5001 only")
		}
		for i, ns := range star.Clients {
			if _, err := nsPing(ns, "-c", "2", "-i", "0.2", "-W", "2", server); err != nil {
				t.Errorf("client %d cannot ping the server: client ↔ server traffic no rule matches must pass", i+1)
			}
		}
	})

	t.Run("status and metrics show policy", func(t *testing.T) {
		l := l.With(t)
		out, code := e2eCtl(l, srvNS, "status", "--dev", "qt0")
		t.Logf("quictun status on the server:\n%s", out)
		if code != 0 || !strings.Contains(out, "policy ") {
			t.Errorf("quictun status (exit %d) does not show the policy drops", code)
		}
		if st := e2eStatus(l, srvNS); e2eMustSession(t, st, "alice").Drops["policy"] == 0 {
			t.Errorf("alice's session shows no policy drops for the TCP connection to port 5002: %v", e2eMustSession(t, st, "alice").Drops)
		}
		m := e2eScrape(t, srvNS, metricsAddr)
		if v := m[`quictun_drops_total{reason="policy"}`]; v < 9 {
			t.Errorf(`quictun_drops_total{reason="policy"} = %v, want at least the 9 denied pings`, v)
		} else {
			t.Logf(`quictun_drops_total{reason="policy"} = %v`, v)
		}
	})

	t.Run("reload applies at once", func(t *testing.T) {
		l := l.With(t)
		denied(t, "bob → alice before the reload", bobNS, alice)
		write(append([]string{"allow from group:ops to name:alice proto icmp"}, rules...)...)
		if out, code := e2eCtl(l, srvNS, "reload", "--dev", "qt0"); code != 0 || !strings.Contains(out, "reloaded") {
			t.Fatalf("quictun reload: exit %d\n%s", code, out)
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "configuration reloaded", "rule=") {
			t.Fatalf("the server did not log the reload of rule:\n%s", srv.Dump())
		}
		if !roamWaitLines(srv, 1, 5*time.Second, "access rules changed", "rules=3", "client_to_client=deny") {
			t.Errorf("the server did not log the new rules:\n%s", srv.Dump())
		}
		// No retries: the first ping after the reload must pass.
		l.PingAll(bobNS, alice, 3)
		denied(t, "carol → alice after the reload", carolNS, alice)
		if n := roamCount(srv, "client connected"); n != 3 {
			t.Errorf("the server logged %d×\"client connected\", want 3: a reload must not drop sessions", n)
		}
	})
	roamAlive(t, procs...)
}
