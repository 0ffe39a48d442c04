package packet

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// kernelTun is a TUN device and two connected UDP sockets (IPv4, IPv6, both
// with path-MTU discovery "do": DF set, no local fragmentation) inside a
// network namespace made for one test.
type kernelTun struct {
	tun, udp4, udp6 int
}

// runIP runs ip(8) with args and fails the test on error.
func runIP(tb testing.TB, args ...string) {
	tb.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		tb.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newKernelTun makes a namespace "qtpN" (N = this process's id) holding the
// TUN device "qtptun" with 10.200.0.1/24 and fd00:200::1/64, routes to
// 198.51.100.0/24 and 2001:db8::/64 through it, and UDP sockets connected to
// 198.51.100.7:9 and [2001:db8::7]:9. All of it is removed at cleanup.
func newKernelTun(t *testing.T) *kernelTun {
	ns := fmt.Sprintf("qtp%d", os.Getpid())
	runIP(t, "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })

	// Open the device and the sockets from a thread inside the namespace.
	type result struct {
		kt  kernelTun
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked if restoring fails: the thread then dies with the goroutine
		var r result
		r.err = func() error {
			orig, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open own netns: %w", err)
			}
			defer unix.Close(orig)
			target, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("open netns %s: %w", ns, err)
			}
			defer unix.Close(target)
			if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("enter netns: %w", err)
			}
			openErr := r.kt.open()
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("leave netns: %w", err)
			}
			runtime.UnlockOSThread()
			return openErr
		}()
		ch <- r
	}()
	r := <-ch
	kt := &r.kt
	t.Cleanup(func() {
		for _, fd := range []int{kt.tun, kt.udp4, kt.udp6} {
			if fd > 0 {
				unix.Close(fd)
			}
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}

	runIP(t, "-n", ns, "link", "set", "qtptun", "up")
	runIP(t, "-n", ns, "addr", "add", "10.200.0.1/24", "dev", "qtptun")
	runIP(t, "-n", ns, "-6", "addr", "add", "fd00:200::1/64", "dev", "qtptun", "nodad")
	runIP(t, "-n", ns, "route", "add", "198.51.100.0/24", "dev", "qtptun")
	runIP(t, "-n", ns, "-6", "route", "add", "2001:db8::/64", "dev", "qtptun")

	if err := unix.Connect(kt.udp4, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{198, 51, 100, 7}}); err != nil {
		t.Fatalf("connect udp4: %v", err)
	}
	if err := unix.Connect(kt.udp6, &unix.SockaddrInet6{Port: 9, Addr: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 7}}); err != nil {
		t.Fatalf("connect udp6: %v", err)
	}
	return kt
}

// open creates the TUN device and the sockets in the calling thread's netns.
func (kt *kernelTun) open() error {
	var err error
	if kt.tun, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return fmt.Errorf("open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq("qtptun")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(kt.tun, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("TUNSETIFF: %w", err)
	}
	if kt.udp4, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("udp4 socket: %w", err)
	}
	if err := unix.SetsockoptInt(kt.udp4, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
		return fmt.Errorf("IP_MTU_DISCOVER: %w", err)
	}
	if kt.udp6, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("udp6 socket: %w", err)
	}
	if err := unix.SetsockoptInt(kt.udp6, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_DO); err != nil {
		return fmt.Errorf("IPV6_MTU_DISCOVER: %w", err)
	}
	return nil
}

// readUDP reads packets from the TUN device (for at most 3 s) until a UDP
// packet of version v arrives, and returns it.
func (kt *kernelTun) readUDP(t *testing.T, v int) []byte {
	t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		fds := []unix.PollFd{{Fd: int32(kt.tun), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(time.Until(deadline).Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			break
		}
		n, err = unix.Read(kt.tun, buf)
		if err != nil {
			t.Fatalf("read tun: %v", err)
		}
		if info, ok := ParseIP(buf[:n]); ok && info.Version == v && info.Proto == protoUDP {
			return buf[:n]
		}
	}
	t.Fatalf("no IPv%d UDP packet from the TUN device within 3 s", v)
	return nil
}

// waitMTU polls the socket's path MTU (for at most 2 s) until it is want.
func waitMTU(t *testing.T, fd, level, opt, want int) {
	t.Helper()
	var got int
	var err error
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if got, err = unix.GetsockoptInt(fd, level, opt); err == nil && got == want {
			return
		}
	}
	t.Fatalf("path MTU %d (err %v), want %d: the kernel did not take the ICMP answer", got, err, want)
}

// TestBuildTooBigKernel writes BuildTooBig's answers into a real TUN device
// and checks that the Linux kernel accepts them: the sending socket's path
// MTU drops to the MTU in the answer, and a datagram over it fails with
// EMSGSIZE.
func TestBuildTooBigKernel(t *testing.T) {
	requireRootNetns(t)
	kt := newKernelTun(t)
	payload := make([]byte, 1400)
	out := make([]byte, 1500)

	tests := []struct {
		name      string
		fd        int
		version   int
		mtu       int
		level, op int
	}{
		{"IPv4 fragmentation needed", kt.udp4, 4, 1200, unix.IPPROTO_IP, unix.IP_MTU},
		{"IPv6 packet too big", kt.udp6, 6, 1280, unix.IPPROTO_IPV6, unix.IPV6_MTU},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := unix.Write(tt.fd, payload); err != nil {
				t.Fatalf("send 1400 bytes: %v", err)
			}
			pkt := kt.readUDP(t, tt.version)
			n, ok := BuildTooBig(out, pkt, tt.mtu)
			if !ok {
				t.Fatalf("BuildTooBig refused the kernel's packet % x", pkt[:40])
			}
			if _, err := unix.Write(kt.tun, out[:n]); err != nil {
				t.Fatalf("write answer to tun: %v", err)
			}
			waitMTU(t, tt.fd, tt.level, tt.op, tt.mtu)
			if _, err := unix.Write(tt.fd, payload); !errors.Is(err, unix.EMSGSIZE) {
				t.Errorf("send over the new path MTU: %v, want EMSGSIZE", err)
			}
		})
	}
}
