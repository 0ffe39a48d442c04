package quictun

import (
	"os"
	"testing"
)

// requireRootNetns skips a test that needs root (network namespaces, TUN
// devices), or fails it when QUICTUN_E2E=1 asks for the end-to-end tests.
func requireRootNetns(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("QUICTUN_E2E") == "1" {
		tb.Fatal("needs root for network namespaces and TUN devices (QUICTUN_E2E=1 makes this a failure)")
	}
	tb.Skip("needs root for network namespaces and TUN devices; run as root, or set QUICTUN_E2E=1 to make this a failure")
}
