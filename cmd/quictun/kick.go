package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/internal/control"
)

// kickTimeout bounds `quictun kick`.
const kickTimeout = 5 * time.Second

func kickCommand() *cli.Command {
	return &cli.Command{
		Name:      "kick",
		Usage:     "close one client's session on the running server now",
		ArgsUsage: "NAME",
		Description: `Closes the session of the client with identity NAME (its certificate's
name, as quictun status lists it) on the running server, with the close code
"kicked" (docs/PROTOCOL.md); the server logs it. The client is not kept out:
a quictun client redials as after a server restart and gets a new session.
To keep a client out, revoke its certificate.

` + controlSocketHelp + `

Examples:
  quictun kick laptop1
  quictun kick --dev qtap0 site-b      # flags go before NAME`,
		Flags:  []cli.Flag{controlDevFlag("the only quictun running in this network namespace")},
		Action: runKick,
	}
}

func runKick(c *cli.Context) error {
	switch c.Args().Len() {
	case 0:
		return usageError{fmt.Errorf("kick needs the NAME of the client whose session to close (quictun status lists them)")}
	case 1:
	default:
		rest := c.Args().Slice()[1:]
		if strings.HasPrefix(rest[0], "-") {
			return usageError{fmt.Errorf("flags go before NAME: quictun kick %s %s", strings.Join(rest, " "), c.Args().First())}
		}
		return usageError{fmt.Errorf("kick takes one NAME, got %q", c.Args().Slice())}
	}
	name := c.Args().First()
	dev, err := controlTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, kickTimeout)
	defer cancel()
	if err := control.Kick(ctx, control.Addr(dev), name); err != nil {
		return controlError(dev, err)
	}
	fmt.Fprintf(c.App.Writer, "kicked %s: its session on %s is closed (a quictun client reconnects)\n", name, dev)
	return nil
}
