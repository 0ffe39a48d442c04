package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
)

// hookTimeout bounds one run of --up or --down; then the hook's process
// group (the shell and whatever it started) is killed with SIGKILL. Long
// enough for a script that sets DNS or firewall rules, short enough that
// a hung --down delays a stop by 10 s at most (docs/OPERATIONS.md: give
// systemd's TimeoutStopSec room for it).
const hookTimeout = 10 * time.Second

// hookOutputMax is how much of a hook's output (stdout and stderr
// together) is kept for the log.
const hookOutputMax = 2048

// hookFlags are --up and --down of listen and connect.
func hookFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "up", EnvVars: env("up"),
			Usage: "shell command (/bin/sh -c) to run once the tunnel is up — a server once it listens with its device configured, a client " +
				"the first time it connects (not again on reconnects: the device keeps its addresses and routes). Its environment has " +
				"QUICTUN_HOOK=up, QUICTUN_DEV, QUICTUN_MODE, QUICTUN_ADDRESSES, QUICTUN_ROUTES, QUICTUN_GATEWAY, QUICTUN_IDENTITY, " +
				"QUICTUN_SERVER, QUICTUN_MTU. Killed after 10 s; a failure is logged with its output and the tunnel stays up. " +
				`Example: --up 'resolvectl dns "$QUICTUN_DEV" 10.77.0.1'`},
		&cli.StringFlag{Name: "down", EnvVars: env("down"),
			Usage: "shell command to run when the tunnel goes down for good (on exit, before the device is removed), if it came up; " +
				"the same environment with QUICTUN_HOOK=down. Killed after 10 s"},
	}
}

// hookEnv is what a hook is told, as QUICTUN_* variables.
type hookEnv struct {
	dev, mode         string
	addresses, routes []netip.Prefix
	gateways          []netip.Addr
	identity, server  string
	mtu               int
}

// environ returns the parent's environment with the hook's variables
// set (every one, empty when unknown, so that a QUICTUN_* variable meant
// for quictun's own flags is not mistaken for the tunnel's).
func (e hookEnv) environ(hook string) []string {
	return append(os.Environ(),
		"QUICTUN_HOOK="+hook,
		"QUICTUN_DEV="+e.dev,
		"QUICTUN_MODE="+e.mode,
		"QUICTUN_ADDRESSES="+joinStrings(e.addresses),
		"QUICTUN_ROUTES="+joinStrings(e.routes),
		"QUICTUN_GATEWAY="+joinStrings(e.gateways),
		"QUICTUN_IDENTITY="+e.identity,
		"QUICTUN_SERVER="+e.server,
		"QUICTUN_MTU="+strconv.Itoa(e.mtu),
	) // exec.Cmd uses the last value of a name that appears twice
}

// joinStrings is xs comma-separated, as the hooks' variables list them.
func joinStrings[T fmt.Stringer](xs []T) string { return strings.Join(stringsOf(xs), ",") }

// hooks runs --up once the tunnel is first up and --down when it goes down
// for good: each at most once per process, and never both at once (Down
// waits for a running --up). A client that reconnects a thousand times
// runs them once each.
type hooks struct {
	up, down string
	timeout  time.Duration
	log      *slog.Logger

	mu     sync.Mutex
	env    hookEnv       // guarded by mu; set by Up
	upDone chan struct{} // guarded by mu; nil until Up, closed when --up has finished
	downed bool          // guarded by mu; Down has run
}

// newHooks returns the hooks of --up and --down.
func newHooks(c *cli.Context, log *slog.Logger) *hooks {
	return &hooks{up: c.String("up"), down: c.String("down"), timeout: hookTimeout, log: log}
}

// Up starts --up in the background with e, the first time it is called;
// later calls do nothing.
func (h *hooks) Up(e hookEnv) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.upDone != nil {
		return
	}
	h.env = e
	done := make(chan struct{})
	h.upDone = done
	go func() {
		defer close(done)
		if h.up != "" {
			h.run("up", h.up, e.environ("up"))
		}
	}()
}

// Down runs --down, with the environment --up had, once --up has
// finished; it does nothing if Up was never called or Down already ran.
func (h *hooks) Down() {
	h.mu.Lock()
	done, e, downed := h.upDone, h.env, h.downed
	h.downed = done != nil
	h.mu.Unlock()
	if done == nil || downed {
		return
	}
	<-done // bounded by --up's timeout
	if h.down != "" {
		h.run("down", h.down, e.environ("down"))
	}
}

// run runs command with /bin/sh -c, bounded by h.timeout, and logs how it
// went.
func (h *hooks) run(which, command string, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Env = env
	out := &limitedBuffer{max: hookOutputMax}
	cmd.Stdout, cmd.Stderr = out, out
	hookProcessGroup(cmd)
	// A program the hook leaves running in the background may hold the
	// output pipe; stop waiting for it after a second.
	cmd.WaitDelay = time.Second
	start := time.Now()
	h.log.Debug("running hook", "hook", which, "cmd", command)
	err := cmd.Run()
	took := time.Since(start).Round(time.Millisecond)
	switch {
	case ctx.Err() != nil:
		h.log.Warn("hook killed: it ran longer than its timeout", "hook", which, "cmd", command,
			"timeout", h.timeout, "output", out.String())
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		h.log.Warn("hook failed", "hook", which, "cmd", command, "status", err.Error(),
			"took", took, "output", out.String())
	default:
		h.log.Info("hook ran", "hook", which, "took", took)
		if s := out.String(); s != "" {
			h.log.Debug("hook output", "hook", which, "output", s)
		}
	}
}

// limitedBuffer keeps the first max bytes written to it and counts the rest.
type limitedBuffer struct {
	mu      sync.Mutex
	max     int
	b       []byte
	dropped int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := min(len(p), l.max-len(l.b))
	l.b = append(l.b, p[:n]...)
	l.dropped += len(p) - n
	return len(p), nil
}

// String returns what was kept, without a trailing newline, and says how
// much more there was.
func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := strings.TrimRight(string(l.b), "\n")
	if l.dropped > 0 {
		s += fmt.Sprintf("… (%d more bytes)", l.dropped)
	}
	return s
}
