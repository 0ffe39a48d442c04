package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The end-to-end tests run the real binary. TestMain builds it (and the
// traffic helper from testdata/netns/nettool) once per test run into a
// temporary directory, but only when the end-to-end tests can run at all
// (root, or QUICTUN_E2E=1); a build failure fails those tests, not the
// package's unit tests.
var (
	e2eBinDir      string // temporary directory holding the built programs
	e2eQuictunPath string // path of the built quictun binary; "" if not built
	e2eNettoolPath string // path of the built nettool helper; "" if not built
	e2eQuictunErr  error  // why quictun was not built
	e2eNettoolErr  error  // why nettool was not built
)

func TestMain(m *testing.M) {
	os.Exit(e2eMain(m))
}

func e2eMain(m *testing.M) int {
	if os.Geteuid() == 0 || os.Getenv("QUICTUN_E2E") == "1" {
		dir, err := os.MkdirTemp("", "quictun-e2e-bin-")
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		defer os.RemoveAll(dir)
		e2eBinDir = dir
		e2eQuictunPath, e2eQuictunErr = e2eGoBuild(dir, "quictun", ".")
		e2eNettoolPath, e2eNettoolErr = e2eGoBuild(dir, "nettool", "../../testdata/netns/nettool")
	}
	return m.Run()
}

// e2eGoCommand returns the go command the tests build with: $GO when set
// (the Makefile sets it to the go it found), else go on PATH (go test puts
// its own GOROOT/bin there), else the go of the toolchain that built this
// test binary, else /usr/local/go/bin/go. Under sudo, whose secure_path
// drops /usr/local/go/bin, one of the later ones finds it.
func e2eGoCommand() (string, error) {
	if g := os.Getenv("GO"); g != "" {
		return exec.LookPath(g)
	}
	if g, err := exec.LookPath("go"); err == nil {
		return g, nil
	}
	for _, g := range []string{filepath.Join(runtime.GOROOT(), "bin", "go"), "/usr/local/go/bin/go"} {
		if fi, err := os.Stat(g); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return g, nil
		}
	}
	return "", errors.New("no go command: not on PATH, GO unset, none in GOROOT/bin or /usr/local/go/bin; set GO=/path/to/go")
}

// e2eGoBuild builds the package in dir pkg (relative to this package's
// directory) into out/name.
func e2eGoBuild(out, name, pkg string) (string, error) {
	goBin, err := e2eGoCommand()
	if err != nil {
		return "", err
	}
	path := filepath.Join(out, name)
	cmd := exec.Command(goBin, "build", "-o", path, pkg)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return path, nil
}
