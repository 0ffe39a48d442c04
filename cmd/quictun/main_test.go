package main

import (
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

// e2eGoBuild builds the package in dir pkg (relative to this package's
// directory) into out/name.
func e2eGoBuild(out, name, pkg string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	path := filepath.Join(out, name)
	cmd := exec.Command(goBin, "build", "-o", path, pkg)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	return path, nil
}
