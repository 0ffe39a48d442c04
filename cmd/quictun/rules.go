package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/quictun"
)

// rulesFlags are the access-rule flags of listen: --rule (the config key
// rule = ["...", "..."]) and --client-to-client.
func rulesFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "rule", EnvVars: env("rule"),
			Usage: "tun mode: an access `RULE` of the hub, checked in order, the first match decides (repeatable; in a config file rule = [\"...\", \"...\"]): " +
				"'allow|deny from SRC to DST [proto tcp|udp|icmp|any] [port 22,443,8000-8999]', SRC and DST any, server, name:IDENTITY, group:GROUP " +
				"(from cert issue --group) or a network like 192.168.10.0/24; ports are destination ports. Replies of an allowed connection pass back. " +
				"Traffic between a client and this server's side that no rule matches is allowed; between clients see --client-to-client. " +
				"Denied packets count as drop reason policy; a reload applies new rules at once. " +
				"E.g. --rule 'allow from group:eng to group:ops proto tcp port 22' --rule 'deny from name:laptop2 to 192.168.10.0/24'"},
		&cli.StringFlag{Name: "client-to-client", Value: "allow", EnvVars: env("client-to-client"),
			Usage: "tun mode: allow or deny client-to-client traffic that no --rule matches (deny: clients reach only this server's side, as OpenVPN without client-to-client)"},
	}
}

// rulesFromFlags reads --rule and --client-to-client.
func rulesFromFlags(c *cli.Context) ([]quictun.Rule, quictun.RuleAction, error) {
	rules, err := parseRules(c.StringSlice("rule"))
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("--rule: %w", err)}
	}
	c2c, err := quictun.ParseRuleAction(c.String("client-to-client"))
	if err != nil {
		return nil, 0, usageError{fmt.Errorf("--client-to-client %w", err)}
	}
	return rules, c2c, nil
}

// parseRules parses the values of --rule (or the config key rule).
func parseRules(ss []string) ([]quictun.Rule, error) {
	var out []quictun.Rule
	for _, s := range joinRules(ss) {
		r, err := quictun.ParseRule(s)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// joinRules undoes the comma splitting of urfave/cli's slice flags, which
// cut "… port 22,443" into "… port 22" and "443" (on the command line, in
// QUICTUN_RULE and for each value of the config file): every rule starts
// with allow or deny, so a piece that does not continues the one before.
func joinRules(ss []string) []string {
	var out []string
	for _, s := range ss {
		first, _, _ := strings.Cut(strings.TrimSpace(s), " ")
		if len(out) > 0 && first != "allow" && first != "deny" {
			out[len(out)-1] += "," + strings.TrimSpace(s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// checkRuleValue is the config file's check of one value of rule.
func checkRuleValue(s string) error {
	_, err := parseRules([]string{s})
	return err
}

// checkClientToClient is the config file's check of client-to-client.
func checkClientToClient(s string) error {
	_, err := quictun.ParseRuleAction(s)
	return err
}

// setRules applies the rule and client-to-client keys of f (a reload).
func (r *configReloader) setRules(text func(key string) []string) (undo func() error, err error) {
	now, c2c, err := rulesOf(text)
	if err != nil {
		return nil, err
	}
	beforeRules, beforeC2C := r.server.Rules()
	if err := r.server.SetRules(now, c2c); err != nil {
		return nil, err
	}
	return func() error { return r.server.SetRules(beforeRules, beforeC2C) }, nil
}

// rulesOf reads the rule and client-to-client keys through text.
func rulesOf(text func(key string) []string) ([]quictun.Rule, quictun.RuleAction, error) {
	rules, err := parseRules(text("rule"))
	if err != nil {
		return nil, 0, err
	}
	c2c, err := quictun.ParseRuleAction(firstOf(text("client-to-client")))
	if err != nil {
		return nil, 0, err
	}
	return rules, c2c, nil
}
