package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/quictun"
)

// rulesRecord is what a recordingServer was given by SetRules.
type rulesRecord struct {
	sets   [][]quictun.Rule
	c2c    []quictun.RuleAction
	refuse bool
}

func (s *recordingServer) SetRules(r []quictun.Rule, c2c quictun.RuleAction) error {
	if s.rules.refuse {
		return errors.New("refused")
	}
	s.rules.sets = append(s.rules.sets, r)
	s.rules.c2c = append(s.rules.c2c, c2c)
	return nil
}

func (s *recordingServer) Rules() ([]quictun.Rule, quictun.RuleAction) {
	if n := len(s.rules.sets); n > 0 {
		return s.rules.sets[n-1], s.rules.c2c[n-1]
	}
	return nil, quictun.Allow
}

func TestJoinRules(t *testing.T) {
	// What urfave/cli's slice flag makes of two rules with port lists.
	got := joinRules([]string{"allow from any to any proto tcp port 22", "443", "8000-8999 proto tcp", "deny from any to any"})
	want := []string{"allow from any to any proto tcp port 22,443,8000-8999 proto tcp", "deny from any to any"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("joinRules = %q, want %q", got, want)
	}
}

// TestRuleFlags: --rule with commas in a port list and --client-to-client
// reach the server's config; bad values are usage errors naming the flag.
func TestRuleFlags(t *testing.T) {
	clearQuictunEnv(t)
	var rules []quictun.Rule
	var c2c quictun.RuleAction
	err := runWithAction(t, func(c *cli.Context) error {
		var err error
		rules, c2c, err = rulesFromFlags(c)
		return err
	}, "listen", "--cert", "/c", "--key", "/k", "--ca", "/ca",
		"--rule", "allow from group:eng to group:ops proto tcp port 22,443", "--rule", "deny from any to 192.168.10.0/24",
		"--client-to-client", "deny")
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 || rules[0].String() != "allow from group:eng to group:ops proto tcp port 22,443" || c2c != quictun.Deny {
		t.Errorf("rules %v, client-to-client %v", rules, c2c)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--rule", "allow from anyone to any"}, `--rule: rule "allow from anyone to any": source:`},
		{[]string{"--client-to-client", "maybe"}, `--client-to-client "maybe": want allow or deny`},
	} {
		err := runWithAction(t, func(c *cli.Context) error {
			_, _, err := rulesFromFlags(c)
			return err
		}, append([]string{"listen", "--cert", "/c", "--key", "/k", "--ca", "/ca"}, tt.args...)...)
		var u usageError
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.As(err, &u) {
			t.Errorf("%v: error %v, want a usage error containing %q", tt.args, err, tt.want)
		}
	}
}

// TestReloadRules: rule and client-to-client are live keys; a bad rule
// in the file names the file, line and key and changes nothing.
func TestReloadRules(t *testing.T) {
	clearQuictunEnv(t)
	keepLogging(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "server.toml", reloadPKI+"rule = [\"deny from any to any\"]\n")
	srv := &recordingServer{}
	reload, logs := startReloader(t, nil, path, srv)

	writeFile(t, dir, "server.toml", reloadPKI+"rule = [\"allow from name:a to any proto udp port 53,5353\", \"deny from any to any\"]\nclient-to-client = \"deny\"\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.rules.sets); n != 1 || len(srv.rules.sets[0]) != 2 || srv.rules.c2c[0] != quictun.Deny ||
		srv.rules.sets[0][0].String() != "allow from name:a to any proto udp port 53,5353" {
		t.Fatalf("SetRules calls %v %v, want one with the two rules and deny", srv.rules.sets, srv.rules.c2c)
	}
	wantLine(t, logs, `msg="configuration reloaded" file=`+path+` client-to-client=deny rule=`)

	writeFile(t, dir, "server.toml", reloadPKI+"\n")
	if err := reload(); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.rules.sets); n != 2 || len(srv.rules.sets[1]) != 0 || srv.rules.c2c[1] != quictun.Allow {
		t.Errorf("after removing the keys: SetRules calls %v %v, want the defaults (no rules, allow)", srv.rules.sets, srv.rules.c2c)
	}

	writeFile(t, dir, "server.toml", reloadPKI+"rule = [\n  \"allow from any to any\",\n  \"allow frm any to any\",\n]\n")
	err := reload()
	if err == nil || !strings.Contains(err.Error(), path+":5: rule:") || !strings.Contains(err.Error(), `"frm" where "from" was expected`) {
		t.Errorf("reload of a bad rule: %v, want the file, line 5, key rule and the word", err)
	}
	if len(srv.rules.sets) != 2 {
		t.Errorf("a bad rule was applied")
	}
}
