package main

import (
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/urfave/cli/v2"
)

// runProcs runs a command with --procs (default def) and setProcs, and
// returns GOMAXPROCS afterwards.
func runProcs(t *testing.T, def int, args ...string) (int, error) {
	t.Helper()
	app := &cli.App{Name: "t", Commands: []*cli.Command{{
		Name: "run", Flags: []cli.Flag{procsFlag(def)},
		Action: func(c *cli.Context) error {
			return setProcs(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
		},
	}}}
	err := app.Run(append([]string{"t", "run"}, args...))
	return runtime.GOMAXPROCS(0), err
}

// TestSetProcs: --procs sets GOMAXPROCS, the command's default applies
// unless GOMAXPROCS is in the environment, and 0 means the runtime's own
// default.
func TestSetProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	runtime.SetDefaultGOMAXPROCS()
	all := runtime.GOMAXPROCS(0)

	t.Setenv("GOMAXPROCS", "x")
	unsetenv(t, "GOMAXPROCS")
	unsetenv(t, "QUICTUN_PROCS")
	if got, err := runProcs(t, connectProcs); err != nil || got != 1 {
		t.Errorf("connect's default: GOMAXPROCS %d (err %v), want 1", got, err)
	}
	if got, err := runProcs(t, listenProcs); err != nil || got != all {
		t.Errorf("listen's default: GOMAXPROCS %d (err %v), want the runtime default %d", got, err, all)
	}
	if got, err := runProcs(t, connectProcs, "--procs", "3"); err != nil || got != 3 {
		t.Errorf("--procs 3: GOMAXPROCS %d (err %v)", got, err)
	}

	// GOMAXPROCS in the environment (applied by the runtime at start; here
	// by hand) outlives the default, not an explicit --procs.
	t.Setenv("GOMAXPROCS", "5")
	runtime.GOMAXPROCS(5)
	if got, err := runProcs(t, connectProcs); err != nil || got != 5 {
		t.Errorf("with GOMAXPROCS=5 and no --procs: GOMAXPROCS %d (err %v), want 5", got, err)
	}
	if got, err := runProcs(t, connectProcs, "--procs", "2"); err != nil || got != 2 {
		t.Errorf("with GOMAXPROCS=5 and --procs 2: GOMAXPROCS %d (err %v), want 2", got, err)
	}
	t.Setenv("QUICTUN_PROCS", "4")
	if got, err := runProcs(t, connectProcs); err != nil || got != 4 {
		t.Errorf("with QUICTUN_PROCS=4: GOMAXPROCS %d (err %v), want 4", got, err)
	}

	var ue usageError
	if _, err := runProcs(t, connectProcs, "--procs", "-1"); !errors.As(err, &ue) {
		t.Errorf("--procs -1: err %v, want a usage error", err)
	}
}
