package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: env("log-level"),
			Usage: "how much to log: debug, info, warn or error"},
		&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: env("log-format"),
			Usage: "log line format: text or json"},
		profileFlag(),
	}
}

// logLevel is the level of the process-wide logger. It is a variable, not
// a fixed option of the handler, so that a reload of the --config file can
// change it in every logger already handed out.
var logLevel slog.LevelVar

// setupLogging installs the process-wide slog logger from --log-level and
// --log-format. Logs go to stderr.
func setupLogging(c *cli.Context) error {
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return usageError{fmt.Errorf("--log-level %w", err)}
	}
	if err := checkLogFormat(c.String("log-format")); err != nil {
		return usageError{fmt.Errorf("--log-format %w", err)}
	}
	logLevel.Set(level)
	opts := &slog.HandlerOptions{Level: &logLevel}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.String("log-format") == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// parseLevel parses a --log-level value.
func parseLevel(s string) (slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("%q: want debug, info, warn or error", s)
	}
	return level, nil
}

// checkLogFormat checks a --log-format value.
func checkLogFormat(s string) error {
	if s != "text" && s != "json" {
		return fmt.Errorf("%q: want text or json", s)
	}
	return nil
}
