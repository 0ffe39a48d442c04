package main

import (
	"errors"
	"io"
	"log/slog"
	"runtime"
	"testing"

	"github.com/urfave/cli/v2"
)

// runProcs runs a command with --procs and setProcs, and returns what
// setProcs returned and GOMAXPROCS afterwards.
func runProcs(t *testing.T, args ...string) (*procs, int, error) {
	t.Helper()
	var p *procs
	app := &cli.App{Name: "t", Commands: []*cli.Command{{
		Name: "run", Flags: []cli.Flag{procsFlag()},
		Action: func(c *cli.Context) error {
			var err error
			p, err = setProcs(c, slog.New(slog.NewTextHandler(io.Discard, nil)))
			return err
		},
	}}}
	err := app.Run(append([]string{"t", "run"}, args...))
	return p, runtime.GOMAXPROCS(0), err
}

// TestSetProcs: --procs 0 (the default) starts at one processor and keeps
// one per connection up to the CPUs; a number fixes it; GOMAXPROCS in the
// environment applies unless --procs is given.
func TestSetProcs(t *testing.T) {
	orig := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(orig)
	runtime.SetDefaultGOMAXPROCS()
	all := runtime.GOMAXPROCS(0)

	t.Setenv("GOMAXPROCS", "x")
	unsetenv(t, "GOMAXPROCS")
	unsetenv(t, "QUICTUN_PROCS")
	p, got, err := runProcs(t)
	if err != nil || got != 1 || p == nil {
		t.Fatalf("default: GOMAXPROCS %d, procs %v (err %v); want 1 and a procs to follow the connections", got, p, err)
	}
	for _, c := range []struct{ conns, want int }{{2, min(2, all)}, {all + 5, all}, {0, 1}, {1, 1}} {
		p.connections(c.conns)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("%d connections: GOMAXPROCS %d, want %d", c.conns, got, c.want)
		}
	}
	if p, got, err := runProcs(t, "--procs", "3"); err != nil || got != 3 || p != nil {
		t.Errorf("--procs 3: GOMAXPROCS %d, procs %v (err %v)", got, p, err)
	}

	// GOMAXPROCS in the environment (applied by the runtime at start; here
	// by hand) outlives the default, not an explicit --procs.
	t.Setenv("GOMAXPROCS", "5")
	runtime.GOMAXPROCS(5)
	if p, got, err := runProcs(t); err != nil || got != 5 || p != nil {
		t.Errorf("with GOMAXPROCS=5 and no --procs: GOMAXPROCS %d, procs %v (err %v), want 5", got, p, err)
	}
	if _, got, err := runProcs(t, "--procs", "2"); err != nil || got != 2 {
		t.Errorf("with GOMAXPROCS=5 and --procs 2: GOMAXPROCS %d (err %v), want 2", got, err)
	}
	if p, got, err := runProcs(t, "--procs", "0"); err != nil || got != 1 || p == nil {
		t.Errorf("with GOMAXPROCS=5 and --procs 0: GOMAXPROCS %d (err %v), want 1", got, err)
	}
	t.Setenv("QUICTUN_PROCS", "4")
	if _, got, err := runProcs(t); err != nil || got != 4 {
		t.Errorf("with QUICTUN_PROCS=4: GOMAXPROCS %d (err %v), want 4", got, err)
	}

	var ue usageError
	if _, _, err := runProcs(t, "--procs", "-1"); !errors.As(err, &ue) {
		t.Errorf("--procs -1: err %v, want a usage error", err)
	}
}
