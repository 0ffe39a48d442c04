package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError marks an error in the command line or in the files it names:
// retrying cannot fix it. It exits with status 2.
type usageError struct{ error }

// Unwrap returns the underlying error.
func (e usageError) Unwrap() error { return e.error }

// exitCode maps an error returned by a command to the process exit status:
// 2 for bad input (flags, files), 1 for everything else.
func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// onUsageError makes urfave/cli's flag-parsing errors (an unknown flag, a
// value that does not parse, from the command line or the environment)
// usage errors.
func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{err}
}

// withUsageErrors sets onUsageError on cmds and all their subcommands.
func withUsageErrors(cmds []*cli.Command) []*cli.Command {
	for _, c := range cmds {
		if c.OnUsageError == nil {
			c.OnUsageError = onUsageError
		}
		withUsageErrors(c.Subcommands)
	}
	return cmds
}

// unknownCommand returns the Action of a command that only groups
// subcommands (the app itself, cert): without an argument it shows help,
// and any argument is an unknown command, a usage error.
func unknownCommand(help cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if !c.Args().Present() {
			return help(c)
		}
		var names []string
		for _, s := range c.Command.Subcommands {
			if !s.Hidden && s.Name != "help" {
				names = append(names, s.Name)
			}
		}
		return usageError{fmt.Errorf("unknown command %q: want one of %s (see --help)", c.Args().First(), strings.Join(names, ", "))}
	}
}

// checkUsage returns the Before of a tunnel command (listen, connect): it
// refuses arguments and fails unless each of the required flags is set, by
// flag or environment variable. urfave/cli's own Required check is not
// used because its error cannot be told apart from a runtime one, and a
// missing flag must exit with status 2 like every other usage error.
func checkUsage(required ...string) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError{fmt.Errorf("%s takes no arguments, got %q: every setting is a flag (see --help)", c.Command.Name, c.Args().Slice())}
		}
		var missing []string
		for _, name := range required {
			if c.String(name) == "" {
				missing = append(missing, fmt.Sprintf("--%s (or %s)", name, env(name)[0]))
			}
		}
		if len(missing) > 0 {
			return usageError{fmt.Errorf("%s needs %s, or these keys in its --config file", c.Command.Name, strings.Join(missing, ", "))}
		}
		return nil
	}
}
