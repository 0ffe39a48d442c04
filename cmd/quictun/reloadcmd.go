package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/internal/control"
)

// errNoConfigFile is what reloading a process started without a
// configuration file returns: there is nothing to re-read.
var errNoConfigFile = errors.New("nothing to reload: this quictun was started without a configuration file; it keeps running as it is")

// noConfigFile is the reload function of a process started without a
// configuration file.
func noConfigFile() error { return errNoConfigFile }

// oneAtATime returns fn serialized: SIGHUP and the control socket's
// reload request may arrive together, and two reloads must not interleave.
func oneAtATime(fn func() error) func() error {
	var mu sync.Mutex
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		return fn()
	}
}

// logReload logs the result of a reload asked for via (SIGHUP, the
// control socket), in the same words whoever asked.
func logReload(log *slog.Logger, via string, err error) {
	if err != nil {
		log.Warn("reload failed", "via", via, "err", err)
		return
	}
	log.Info("reloaded", "via", via)
}

// reloadTimeout bounds `quictun reload`: the process re-reads its files.
const reloadTimeout = 30 * time.Second

func reloadCommand() *cli.Command {
	return &cli.Command{
		Name:      "reload",
		Usage:     "ask the running quictun to reload its configuration (the same as SIGHUP)",
		ArgsUsage: " ",
		Description: `Asks the running quictun (listen or connect) to re-read its configuration,
exactly as SIGHUP does, and waits for the result: it prints "reloaded", or
exits 1 with the reason (a process started without a configuration file has
nothing to reload and says so). The tunnel keeps running either way.

` + controlSocketHelp + `

Examples:
  quictun reload               # the only quictun in this network namespace
  quictun reload --dev qt0`,
		Flags:  []cli.Flag{controlDevFlag("the only quictun running in this network namespace")},
		Before: checkNoArgs,
		Action: runReload,
	}
}

func runReload(c *cli.Context) error {
	dev, err := controlTarget(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, reloadTimeout)
	defer cancel()
	if err := control.Reload(ctx, control.Addr(dev)); err != nil {
		var ce *control.Error
		if errors.As(err, &ce) && ce.Code == control.CodeFailed {
			return fmt.Errorf("reload failed: %w", err)
		}
		return controlError(dev, err)
	}
	fmt.Fprintln(c.App.Writer, "reloaded")
	return nil
}
