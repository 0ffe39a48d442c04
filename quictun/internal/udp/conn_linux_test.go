package udp

import (
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// requireRoot skips a test that needs root (network namespaces), or fails
// it when QUICTUN_E2E=1 asks for the end-to-end tests.
func requireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("QUICTUN_E2E") == "1" {
		tb.Fatal("needs root for network namespaces (QUICTUN_E2E=1 makes this a failure)")
	}
	tb.Skip("needs root for network namespaces; run as root, or set QUICTUN_E2E=1 to make this a failure")
}

// TestUDPConnSwallowsNoRoute sends from a namespace with no route at all:
// the kernel answers "network is unreachable", and the wrapper reports
// success (the packet is lost, as on any lossy path) and counts it instead
// of handing quic-go an error that would close the connection.
func TestUDPConnSwallowsNoRoute(t *testing.T) {
	requireRoot(t)
	runtime.LockOSThread() // not unlocked if restoring fails: the thread then dies with the goroutine
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.New() // empty: loopback down, no routes
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer ns.Close()
	defer func() {
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	c, err := Listen("0.0.0.0:0", discardLogger(), new(Counters))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dst := &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 9}
	if _, _, rawErr := c.UDPConn.WriteMsgUDP([]byte("x"), nil, dst); !isTransientSendError(rawErr) {
		t.Fatalf("raw send in an empty namespace: %v, want network unreachable", rawErr)
	}
	n, _, err := c.WriteMsgUDP([]byte("x"), nil, dst)
	if err != nil || n != 1 || c.counters.TransientSend.Load() != 1 {
		t.Errorf("WriteMsgUDP = %d, %v (transient %d); want 1, nil, 1", n, err, c.counters.TransientSend.Load())
	}
	if _, err := c.WriteTo([]byte("y"), dst); err != nil || c.counters.TransientSend.Load() != 2 {
		t.Errorf("WriteTo = %v (transient %d); want nil, 2", err, c.counters.TransientSend.Load())
	}
}
