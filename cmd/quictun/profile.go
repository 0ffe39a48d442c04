package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// profileFlag is the global --cpu-profile flag.
func profileFlag() cli.Flag {
	return &cli.StringFlag{Name: "cpu-profile", EnvVars: env("cpu-profile"), TakesFile: true,
		Usage: "write a Go CPU profile to `FILE` until quictun exits (read it with `go tool pprof`); for performance work"}
}

// cpuProfile is the file being written by --cpu-profile, if any.
var cpuProfile *os.File

// startProfile starts the CPU profile --cpu-profile asks for.
func startProfile(c *cli.Context) error {
	path := c.String("cpu-profile")
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return usageError{fmt.Errorf("--cpu-profile: %w", err)}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--cpu-profile %s: %w", path, err)
	}
	cpuProfile = f
	return nil
}

// stopProfile finishes the CPU profile, if one is being written.
func stopProfile(*cli.Context) error {
	if cpuProfile == nil {
		return nil
	}
	pprof.StopCPUProfile()
	if err := cpuProfile.Close(); err != nil {
		return fmt.Errorf("--cpu-profile: %w", err)
	}
	slog.Info("CPU profile written", "file", cpuProfile.Name())
	cpuProfile = nil
	return nil
}
