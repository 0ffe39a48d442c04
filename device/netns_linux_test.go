package device

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireRoot skips tb unless it runs as root with /dev/net/tun, and fails
// it instead when QUICTUN_E2E=1 asks for the end-to-end tests to run.
func requireRoot(tb testing.TB) {
	tb.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "needs root (CAP_NET_ADMIN) to create network namespaces and TUN/TAP devices"
	} else if _, err := os.Stat("/dev/net/tun"); err != nil {
		why = fmt.Sprintf("needs /dev/net/tun: %v", err)
	}
	if why == "" {
		return
	}
	if os.Getenv("QUICTUN_E2E") == "1" {
		tb.Fatalf("QUICTUN_E2E=1 but the test %s", why)
	}
	tb.Skip(why)
}

// inNetns locks the calling goroutine to its OS thread and moves that thread
// into a new network namespace with loopback up, for the rest of tb. Only
// this goroutine is in it: open devices, configure links and make sockets
// here (the file descriptors may be used from any goroutine afterwards), or
// in subtests that call joinNetns with the returned handle. Cleanup returns
// the thread to the original namespace; everything made in the new one
// disappears with it.
func inNetns(tb testing.TB) netns.NsHandle {
	tb.Helper()
	requireRoot(tb)
	ns := enterNetns(tb, func() (netns.NsHandle, error) { return netns.New() })
	tb.Cleanup(func() { ns.Close() })
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		tb.Fatalf("find lo: %v", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		tb.Fatalf("set lo up: %v", err)
	}
	return ns
}

// joinNetns moves the calling goroutine's locked OS thread into ns, made by
// inNetns in a parent test, for the rest of tb.
func joinNetns(tb testing.TB, ns netns.NsHandle) {
	tb.Helper()
	enterNetns(tb, func() (netns.NsHandle, error) { return ns, netns.Set(ns) })
}

// enterNetns locks the OS thread, runs enter and arranges for cleanup to
// return the thread to its original namespace and unlock it.
func enterNetns(tb testing.TB, enter func() (netns.NsHandle, error)) netns.NsHandle {
	tb.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("get current netns: %v", err)
	}
	ns, err := enter()
	if err != nil {
		orig.Close()
		runtime.UnlockOSThread()
		tb.Fatalf("enter netns: %v", err)
	}
	tb.Cleanup(func() {
		defer orig.Close()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: it ends with the goroutine.
			tb.Errorf("return to the original netns: %v", err)
			return
		}
		runtime.UnlockOSThread()
	})
	return ns
}

var nameSeq atomic.Int32

// testName returns an interface name unique to this run: prefix, the
// process ID and a counter, at most MaxNameLen bytes.
func testName(tb testing.TB, prefix string) string {
	tb.Helper()
	name := fmt.Sprintf("%s%d%c", prefix, os.Getpid()%100000, 'a'+nameSeq.Add(1)%26)
	if len(name) > MaxNameLen {
		tb.Fatalf("test name %q too long", name)
	}
	return name
}

// mustOpen opens a device and closes it at cleanup.
func mustOpen(tb testing.TB, kind Kind, name string) *TunTap {
	tb.Helper()
	d, err := Open(kind, name)
	if err != nil {
		tb.Fatalf("Open(%v, %q): %v", kind, name, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d.(*TunTap)
}

// pump reads packets from d in its own goroutine and sends copies on the
// returned channel, until d is closed.
func pump(d Device) <-chan []byte {
	ch := make(chan []byte, 256)
	go func() {
		defer close(ch)
		bufs, sizes := newBufs(d.BatchSize(), 65536)
		for {
			n, err := d.Read(bufs, sizes, 0)
			if err != nil {
				return
			}
			for i := range n {
				select {
				case ch <- append([]byte(nil), bufs[i][:sizes[i]]...):
				default: // drop: the test is not looking
				}
			}
		}
	}()
	return ch
}

// waitPacket returns the first packet from ch that match accepts, failing
// tb if none comes within d or after 1000 packets.
func waitPacket(tb testing.TB, ch <-chan []byte, d time.Duration, what string, match func([]byte) bool) []byte {
	tb.Helper()
	timeout := time.After(d)
	for range 1000 {
		select {
		case p, ok := <-ch:
			if !ok {
				tb.Fatalf("device closed while waiting for %s", what)
			}
			if match(p) {
				return p
			}
		case <-timeout:
			tb.Fatalf("no %s within %v", what, d)
		}
	}
	tb.Fatalf("no %s among 1000 packets", what)
	return nil
}

// waitGone waits up to 2 s for the link name to disappear.
func waitGone(tb testing.TB, name string) {
	tb.Helper()
	for range 200 {
		if _, err := netlink.LinkByName(name); isLinkNotFound(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("link %s still exists", name)
}
