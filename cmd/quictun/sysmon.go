package main

import (
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Go's runtime monitor thread, sysmon, sleeps deeply whenever every Go
// processor is idle. The next system call then wakes it, and it polls every
// 20 µs again for about a millisecond. A tunnel goes idle many times per
// packet while it waits for the kernel, so on a quiet link every packet
// wakes sysmon several times. Counted over 100 pings through a TUN tunnel:
// 20–23 context switches per echo in each process, more than half in
// sysmon. With GODEBUG=schedtrace set, sysmon never sleeps deeply: it backs
// off to one wake-up every 10 ms and stays there. In three alternating
// rounds on the bench's namespaces that gave 10–12 switches per echo (about
// wireguard-go's 8–11) and an average RTT of 0.63–0.68 instead of
// 0.92–0.95 ms (docs/PERFORMANCE.md). The cost is those 100 wake-ups per
// second on an idle tunnel, which --low-latency=false avoids (laptops on
// battery).

// sysmonGODEBUG keeps sysmon out of its deep sleep. The interval is the
// largest schedtrace takes, in ms (24.8 days): the runtime prints one
// "SCHED" line to standard error only when the machine's monotonic clock
// passes a multiple of it.
const sysmonGODEBUG = "schedtrace=2147483647"

// lowLatencyFlag is --low-latency.
func lowLatencyFlag() cli.Flag {
	return &cli.BoolFlag{Name: "low-latency", Value: true, EnvVars: env("low-latency"),
		Usage: "keep Go's runtime monitor awake (GODEBUG=" + sysmonGODEBUG + ", set by re-executing quictun, same PID): " +
			"about half the thread wake-ups per packet and a third less round-trip time on a quiet link, " +
			"for about 100 wake-ups per second when idle. --low-latency=false saves those (laptops on battery)"}
}

// fromMain is set by main, so that only the quictun process itself is ever
// re-executed, never a test that runs a command in-process.
var fromMain bool

// lowLatency applies --low-latency. When the runtime monitor may still
// sleep deeply, it re-executes the process with sysmonGODEBUG added to
// GODEBUG (syscall.Exec: same PID, same arguments); it returns only if
// nothing was to be done or the re-execution failed, which costs latency,
// not the tunnel, and is logged.
func lowLatency(c *cli.Context, log *slog.Logger) {
	if !fromMain || !c.Bool("low-latency") {
		return
	}
	godebug := os.Getenv("GODEBUG")
	if strings.Contains(godebug, "schedtrace=") {
		return // done, or chosen by the user
	}
	if godebug != "" {
		godebug += ","
	}
	godebug += sysmonGODEBUG
	if err := reexec("GODEBUG", godebug); err != nil {
		log.Warn("--low-latency: could not restart with GODEBUG="+godebug+"; running without it (higher round-trip time)", "err", err)
	}
}

// withEnv returns environ with name set to value.
func withEnv(environ []string, name, value string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}
