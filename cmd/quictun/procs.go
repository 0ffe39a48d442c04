package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"

	"github.com/urfave/cli/v2"
)

// --procs 0 (the default) gives the tunnel one Go processor per QUIC
// connection, up to the CPUs the process may use: 1 for a client, and for
// a server one per connected client. Most of a connection's work runs in
// its event loop, one packet after another; with more processors than
// busy connections, every hand-off between the goroutines of a connection
// (device reader → connection loop → socket writer, and back) wakes a
// thread on another CPU, which costs more than the overlap gains wherever
// the CPUs are shared with the traffic's own programs. Measured with make
// bench on the 2-core VM (docs/PERFORMANCE.md): one end or both at 1
// instead of both at 2 gave single-stream TCP 1.43–1.54 instead of
// 1.16–1.38 Gbit/s, CPU per GB 8.2–8.7 instead of 9.6–12.3 s and ping RTT
// 0.63–0.69 instead of 0.76–0.83 ms; the client's futex calls fell from
// ~13 700 to ~4 800 per 5 s. A server with one client at
// 1 instead of 2 (three alternating pairs) 1170 → 1314 Mbit/s and 10.9 →
// 9.3 CPU-s per GB, medians.

// procsFlag is --procs.
func procsFlag() cli.Flag {
	return &cli.IntFlag{Name: "procs", EnvVars: env("procs"),
		Usage: "how many CPUs may run the tunnel's Go code at once (GOMAXPROCS). " +
			"0: one per QUIC connection, up to the CPUs — 1 for a client, one per connected client for a server; " +
			"fewer processors mean fewer thread wake-ups, less CPU per byte and less latency. " +
			"Without --procs, a GOMAXPROCS environment variable applies"}
}

// procs keeps GOMAXPROCS at one per connection, up to max.
type procs struct {
	mu  sync.Mutex
	max int
	cur int
	log *slog.Logger
}

// tuneRuntime readies the Go runtime for a tunnel, first thing in listen
// and connect: --low-latency (which may re-execute the process), the GC
// target and the memory trimmer, then --procs; it returns what setProcs
// returns.
func tuneRuntime(c *cli.Context, log *slog.Logger) (*procs, error) {
	lowLatency(c, log)
	tuneGC()
	startMemoryTrim(log)
	return setProcs(c, log)
}

// setProcs applies --procs and logs the result. An explicit --procs (flag
// or QUICTUN_PROCS) wins; otherwise GOMAXPROCS from the environment, which
// the Go runtime has already applied, is left alone and nil is returned.
// With --procs 0 it starts at one processor and returns the procs whose
// connections method keeps the count at one per connection; with a fixed
// count it returns nil.
func setProcs(c *cli.Context, log *slog.Logger) (*procs, error) {
	n := c.Int("procs")
	if n < 0 {
		return nil, usageError{fmt.Errorf("--procs %d: want 0 (one per connection, up to the CPUs) or more", n)}
	}
	if _, env := os.LookupEnv("GOMAXPROCS"); env && !c.IsSet("procs") {
		log.Debug("Go processors from GOMAXPROCS", "procs", runtime.GOMAXPROCS(0))
		return nil, nil
	}
	if n > 0 {
		runtime.GOMAXPROCS(n)
		log.Debug("Go processors", "procs", n)
		return nil, nil
	}
	// The runtime's default: the CPUs the process may use, cgroup limits
	// included.
	runtime.SetDefaultGOMAXPROCS()
	p := &procs{max: runtime.GOMAXPROCS(0), cur: -1, log: log}
	p.connections(1)
	return p, nil
}

// connections sets GOMAXPROCS for n connections (at least 1, at most
// p.max). It is safe for concurrent use.
func (p *procs) connections(n int) {
	n = min(max(n, 1), p.max)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == p.cur {
		return
	}
	p.cur = n
	runtime.GOMAXPROCS(n)
	p.log.Debug("Go processors", "procs", n, "cpus", p.max)
}
