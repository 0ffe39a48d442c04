package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// examples are the "Examples:" sections that withExamples appends to the
// --help (and man page) text of the commands, by command path. They sit
// here, in one table, rather than in each command's Description so that
// TestHelpExamples can check every one of them against the flags the
// command really has: an example that names a renamed or removed flag
// fails the test. A command may also carry examples in its own
// Description (cert issue does); the test checks those too.
var examples = map[string]string{
	"listen": `  # a TUN hub: clients get the addresses in their certificates (or from
  # --pool) in 10.77.0.0/24 and 192.168.10.0/24 is routed to them via the tunnel
  quictun listen --cert pki/server.crt --key pki/server.key --ca pki/ca.crt \
      --ip 10.77.0.1/24 --ip fd77::1/64 --route 192.168.10.0/24

  # addresses for clients whose certificate has none, stable per identity
  quictun listen --cert pki/server.crt --key pki/server.key --ca pki/ca.crt \
      --ip 10.77.0.1/24 --pool 10.77.0.128/25

  # a TAP hub: a learning switch between the LAN on bridge br0 and the clients
  quictun listen --mode tap --bridge br0 --listen 0.0.0.0:443 \
      --cert pki/server.crt --key pki/server.key --ca pki/ca.crt

  # the same settings from the environment (systemd: Environment=, EnvironmentFile=)
  QUICTUN_CERT=pki/server.crt QUICTUN_KEY=pki/server.key QUICTUN_CA=pki/ca.crt \
      QUICTUN_IP=10.77.0.1/24 quictun listen`,

	"connect": `  # a laptop: dial the server, take the address and routes it assigns
  quictun connect --server vpn.example.com:4433 \
      --cert pki/laptop1.crt --key pki/laptop1.key --ca pki/ca.crt

  # a TAP site: join the server's LAN with this site's bridge br0
  quictun connect --server vpn.example.com:4433 --mode tap --bridge br0 \
      --cert pki/office.crt --key pki/office.key --ca pki/ca.crt

  # dial an address, check the name in the server's certificate, and use
  # smaller QUIC packets on a path that drops large UDP datagrams
  quictun connect --server 203.0.113.7:4433 --server-name vpn.example.com --packet-size 1280 \
      --cert pki/laptop1.crt --key pki/laptop1.key --ca pki/ca.crt

  # from a script: give up (exit 1) after 5 failed attempts in a row
  quictun connect --server vpn.example.com:4433 --max-retries 5 \
      --cert pki/laptop1.crt --key pki/laptop1.key --ca pki/ca.crt`,

	"cert ca": `  quictun cert ca --dir pki                   # pki/ca.crt and pki/ca.key
  quictun cert ca --dir /root/vpn-ca --name "Example Corp VPN CA" --days 3650
  quictun cert ca --dir pki --force           # replace an existing CA (every certificate must be issued again)`,

	"cert show": `  quictun cert show pki/laptop1.crt
  quictun cert show pki/ca.crt pki/server.crt pki/laptop1.crt
  quictun cert show /etc/ssl/vpn/fullchain.pem      # a chain: every certificate, leaf first`,

	"version": `  quictun version
  quictun --version`,

	"completion": `  source <(quictun completion bash)                  # bash, this shell only
  quictun completion bash > /etc/bash_completion.d/quictun
  quictun completion zsh > "${fpath[1]}/_quictun"     # zsh, then restart it`,

	"man": `  quictun man > quictun.8 && man -l quictun.8`,
}

// withExamples appends to each command in cmds (and their subcommands) the
// examples listed for its path, under "Examples:".
func withExamples(cmds []*cli.Command) []*cli.Command {
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			path := strings.TrimSpace(prefix + " " + c.Name)
			if ex, ok := examples[path]; ok {
				c.Description = strings.TrimRight(c.Description, "\n") + "\n\nExamples:\n" + ex
			}
			walk(path, c.Subcommands)
		}
	}
	walk("", cmds)
	return cmds
}
