package main

import (
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of program, which Debian's package pkg
// provides. Without it the test is skipped, or fails under QUICTUN_E2E=1
// (as CI runs the tests, and .ci/run installs pkg), so that a check CI
// promises never passes by not running.
func needTool(t *testing.T, program, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv("QUICTUN_E2E") == "1" {
		t.Fatalf("%s not found: apt-get install -y %s (QUICTUN_E2E=1 makes this a failure)", program, pkg)
	}
	t.Skipf("no %s (Debian package %s)", program, pkg)
	return ""
}
