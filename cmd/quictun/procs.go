package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"
)

// Defaults of --procs. A client carries one QUIC connection, whose event
// loop does most of the tunnel's work one packet after another; with more
// Go processors than that, every hand-off between its goroutines (device
// reader → connection loop → socket writer, and back) wakes a thread on
// another CPU, which costs more than it gains wherever the CPUs are
// shared with the traffic's own programs. Measured with make bench on the
// 2-core VM (docs/PERFORMANCE.md): a client at 1 instead of 2 moved
// single-stream TCP 1.16–1.38 → 1.43–1.54 Gbit/s, CPU per GB 9.6–12.3 →
// 8.2–8.7 s and ping RTT 0.76–0.83 → 0.63–0.69 ms, with futex calls down
// from ~13 700 to ~4 800 per 5 s. A server serves many connections at
// once, so it keeps one processor per CPU.
const (
	connectProcs = 1
	listenProcs  = 0
)

// procsFlag is --procs with the command's default.
func procsFlag(def int) cli.Flag {
	why := "1, the default, spends the least CPU per byte and adds the least latency: a client has one connection"
	if def == 0 {
		why = "0, the default, suits a hub with many busy clients; 1 spends less CPU per byte when one or two clients share a small machine"
	}
	return &cli.IntFlag{Name: "procs", Value: def, EnvVars: env("procs"),
		Usage: "how many CPUs may run the tunnel's Go code at once (GOMAXPROCS; 0: one per CPU). " + why +
			". Without --procs, a GOMAXPROCS environment variable applies"}
}

// setProcs applies --procs and logs the result. An explicit --procs (flag
// or QUICTUN_PROCS) wins; otherwise GOMAXPROCS from the environment, which
// the Go runtime has already applied, is left alone.
func setProcs(c *cli.Context, log *slog.Logger) error {
	n := c.Int("procs")
	if n < 0 {
		return usageError{fmt.Errorf("--procs %d: want 0 (one per CPU) or more", n)}
	}
	if _, env := os.LookupEnv("GOMAXPROCS"); c.IsSet("procs") || !env {
		applyProcs(n)
	}
	log.Debug("Go processors", "procs", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU())
	return nil
}

// applyProcs sets GOMAXPROCS to n, or back to the runtime's default (the
// CPUs the process may use, cgroup limits included) for 0.
func applyProcs(n int) {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}
