package main

import (
	"errors"
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/config"
	"github.com/quictun/quictun/device"
)

// The --config file of listen and connect sets their flags and the global
// ones: its keys are the flag names, its values what the flags take. The
// package config reads and checks the file against a schema made here from
// the flag definitions themselves, so that every flag (and every flag
// added later) is a key with the flag's type, and no list of names is kept
// twice. Applying the values stays here, where urfave/cli knows which flags
// the command line or a QUICTUN_* variable set: those win over the file.

// configFlag is --config of listen and connect.
func configFlag() cli.Flag {
	return &cli.StringFlag{Name: "config", EnvVars: env("config"), TakesFile: true,
		Usage: "read settings from this TOML (or .yaml/.yml) `FILE`: its keys are the flag names of this command and the global flags, " +
			`e.g. packet-size = 1452, ip = ["10.77.0.1/24"], keepalive = "10s"; relative paths in it are relative to its directory. ` +
			"Flags and QUICTUN_* variables override it. SIGHUP re-reads it and applies what can change live (log level, metrics; on a server pushed routes, pools, access rules, the CRL, isolate-clients and pin-macs); " +
			"examples in the source's examples/"}
}

// notConfigKeys are flags that a configuration file cannot set.
var notConfigKeys = map[string]bool{
	"config":  true, // one file, not a chain of them
	"help":    true,
	"version": true,
}

// configChecks validate the values of a configuration file that the flags
// check only later, so that a bad one is reported with its file and line.
// An empty string is left to the flag's own handling where it means "the
// default".
var configChecks = map[string]func(string) error{
	"ip":               func(s string) error { _, err := parsePrefix(s, false); return err },
	"pool":             func(s string) error { _, err := parsePrefix(s, true); return err },
	"route":            func(s string) error { _, err := parsePrefix(s, true); return err },
	"log-level":        func(s string) error { _, err := parseLevel(s); return err },
	"rule":             checkRuleValue,
	"client-to-client": checkClientToClient,
	"log-format":       checkLogFormat,
	"mode": func(s string) error {
		if s == "" {
			return nil
		}
		_, err := device.ParseKind(s)
		return err
	},
	"dev": func(s string) error {
		if s == "" {
			return nil
		}
		return device.CheckName(s)
	},
}

// loadedConfig is the --config file a tunnel command started with, kept
// for reloads.
type loadedConfig struct {
	file   *config.File  // as read at start
	schema config.Schema // the keys of command
	// fixed holds the keys that a flag or QUICTUN_* variable set at start:
	// they win over the file, now and at every reload.
	fixed map[string]bool
	// defaults holds the flags' default values (as text, as config.Value
	// holds them): a key removed from the file goes back to its default.
	defaults map[string][]string
}

// configMetadata is the key of the loadedConfig in the app's Metadata.
const configMetadata = "quictun.config"

// loadedConfigOf returns the --config file the command in c started with,
// or nil.
func loadedConfigOf(c *cli.Context) *loadedConfig {
	lc, _ := c.App.Metadata[configMetadata].(*loadedConfig)
	return lc
}

// withConfig returns the Before of a tunnel command: it applies --config,
// then runs next (which checks that the required flags are set, by now
// from any source).
func withConfig(next cli.BeforeFunc) cli.BeforeFunc {
	return func(c *cli.Context) error {
		if err := applyConfig(c); err != nil {
			return err
		}
		return next(c)
	}
}

// applyConfig reads --config, if given, and sets every flag it names that
// neither the command line nor a QUICTUN_* variable set. A file that cannot
// be read, does not parse or sets anything wrong is a usage error naming
// the file, line and key, found before anything on the system is touched.
func applyConfig(c *cli.Context) error {
	path := c.String("config")
	if path == "" {
		return nil
	}
	schema, defaults := configSchema(c.App.Flags, c.Command.Flags)
	f, err := config.Load(path, schema)
	if err != nil {
		return usageError{configAdvice(c, err)}
	}
	lc := &loadedConfig{file: f, schema: schema, fixed: map[string]bool{}, defaults: defaults}
	for key := range schema {
		// IsSet covers the command line and the flag's QUICTUN_* variable.
		if c.IsSet(key) {
			lc.fixed[key] = true
		}
	}
	global := false
	for _, v := range f.Values {
		if lc.fixed[v.Key] {
			continue
		}
		for _, s := range v.Text {
			if err := c.Set(v.Key, s); err != nil {
				return usageError{&config.Error{File: f.Path, Line: v.Line, Key: v.Key, Err: err}}
			}
		}
		global = global || isGlobalFlag(c, v.Key)
	}
	if global {
		// The global flags took effect before the command's own flags
		// (and so --config) were parsed.
		if err := setupLogging(c); err != nil {
			return err
		}
		if cpuProfile == nil {
			if err := startProfile(c); err != nil {
				return err
			}
		}
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[configMetadata] = lc
	return nil
}

// configAdvice adds to an unknown key where the keys come from.
func configAdvice(c *cli.Context, err error) error {
	if errors.Is(err, config.ErrUnknownKey) {
		return fmt.Errorf("%w\n(the keys are the flag names of `quictun %s --help` and of the global flags in `quictun --help`, without the dashes)",
			err, c.Command.Name)
	}
	return err
}

// isGlobalFlag reports whether name is a flag of the app rather than of
// the command.
func isGlobalFlag(c *cli.Context, name string) bool {
	for _, f := range c.App.Flags {
		if f.Names()[0] == name {
			return true
		}
	}
	return false
}

// configSchema returns the keys a configuration file may set, one for each
// of the flags (of the app, then of the command), by the flags' types, and
// the flags' defaults as text, for a reload to go back to when a key is
// removed from the file.
func configSchema(flags ...[]cli.Flag) (config.Schema, map[string][]string) {
	schema := config.Schema{}
	defaults := map[string][]string{}
	for _, f := range slices.Concat(flags...) {
		name := f.Names()[0]
		if notConfigKeys[name] {
			continue
		}
		var k config.Key
		switch f := f.(type) {
		case *cli.StringFlag:
			k = config.Key{Kind: config.String, Path: f.TakesFile}
			defaults[name] = []string{f.Value}
		case *cli.StringSliceFlag:
			k = config.Key{Kind: config.Strings, Path: f.TakesFile}
			if f.Value != nil {
				defaults[name] = f.Value.Value()
			}
		case *cli.IntFlag:
			k = config.Key{Kind: config.Int}
		case *cli.BoolFlag:
			k = config.Key{Kind: config.Bool}
		case *cli.DurationFlag:
			k = config.Key{Kind: config.Duration}
		default:
			// A flag of another type has no key until it is added here;
			// TestConfigEveryFlag fails for it.
			continue
		}
		k.Check = configChecks[name]
		schema[name] = k
	}
	return schema, defaults
}
