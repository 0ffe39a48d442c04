package main

import (
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/config"
)

// tapPolicyFlags are listen's --isolate-clients and --pin-macs: the TAP
// switch's policy (quictun.ServerConfig's IsolateClients and PinMACs).
func tapPolicyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "isolate-clients", EnvVars: env("isolate-clients"),
			Usage: "tap mode: keep clients apart, as OpenVPN without client-to-client: a client's frames reach this server's device (its bridge, its LAN) only, " +
				"broadcasts included, and frames to another client's MAC are dropped and counted as policy; the device's frames still reach every client. Live on reload"},
		&cli.BoolFlag{Name: "pin-macs", EnvVars: env("pin-macs"), DefaultText: "on with --isolate-clients, else off",
			Usage: "tap mode: a client may not send with a source MAC the switch learned on another port (another client, or a host on the device's side) " +
				"until that entry ages out (5 minutes unseen) or its client leaves; such frames are dropped and counted as spoofed. " +
				"The device's side is trusted and always moves a MAC back. Off, a MAC moves to wherever it was seen last (a host moving between sites). Live on reload"},
	}
}

// tapPolicy returns the TAP switch's policy the flags of c ask for.
// --pin-macs left unset follows --isolate-clients: isolated clients that
// could still take each other's MACs would have the device's frames for
// another client sent to them.
func tapPolicy(c *cli.Context) (isolateClients, pinMACs bool) {
	isolateClients = c.Bool("isolate-clients")
	if c.IsSet("pin-macs") {
		return isolateClients, c.Bool("pin-macs")
	}
	return isolateClients, isolateClients
}

// liveTAPPolicy is tapPolicy at a reload: the keys of f where the command
// line or a QUICTUN_* variable did not set them (fixed: their value, in
// c, wins), and for a key f leaves out its default.
func liveTAPPolicy(c *cli.Context, fixed map[string]bool, f *config.File) (isolateClients, pinMACs bool) {
	value := func(key string) (v, set bool) {
		if fixed[key] {
			return c.Bool(key), true
		}
		if fv, ok := f.Lookup(key); ok && len(fv.Text) == 1 {
			b, _ := strconv.ParseBool(fv.Text[0]) // checked when the file was loaded
			return b, true
		}
		return false, false
	}
	isolateClients, _ = value("isolate-clients")
	pinMACs, set := value("pin-macs")
	if !set {
		pinMACs = isolateClients
	}
	return isolateClients, pinMACs
}
