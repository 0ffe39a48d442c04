package device

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/songgao/water"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// tunBatchSize caps how many packets one Read of a TunTap returns.
const tunBatchSize = 32

// TunTap is a Linux TUN or TAP device opened by Open.
//
// A TUN is opened with offloads (IFF_VNET_HDR, TSO/USO) through
// golang.zx2c4.com/wireguard/tun: Read returns the segments of a GSO
// super-packet, up to BatchSize of them, from one system call, and Write
// with offset ≥ 10 coalesces TCP/UDP segments (GRO) into super-packets,
// growing bufs[i] within its capacity and possibly swapping elements of
// bufs; give it buffers of OffloadBufSize capacity to let it coalesce.
//
// A TAP (via songgao/water) takes every packet the kernel has ready, up to the number of buffers
// given (at most BatchSize), with one system call per packet and no heap
// allocation. Write writes one packet per system call.
type TunTap struct {
	kind    Kind
	name    string
	created bool
	file    *os.File
	raw     syscall.RawConn

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	readMu  sync.Mutex         // serializes Reads; guards the fields below
	readFn  func(uintptr) bool // t.readReady, bound once so Read does not allocate
	rbufs   [][]byte
	rsizes  []int
	roff    int
	rlimit  int
	rn      int
	rerr    error
	pending error // returned by the next Read (an error met after some packets)

	// wg is the offloading TUN (nil for TAP); file and raw are unused then.
	wg       wgtun.Device
	wmu      sync.Mutex // guards wscratch and wone
	wscratch []byte     // Write with offset < 10: each packet is copied here
	wone     [][]byte
}

// Open opens the TUN or TAP device name, creating it if it does not exist.
// Packets carry no extra header (IFF_NO_PI).
//
// A device that Open created disappears when it is closed. A device that
// already existed (e.g. made persistent with `ip tuntap add`) is opened as
// persistent and left in place on Close; Created tells which. The name is
// checked (see CheckName) before anything on the system is touched, and an
// existing interface of another type is refused.
//
// Open must run in the network namespace the device belongs to; with several
// namespaces, lock the goroutine to its OS thread around Open.
func Open(kind Kind, name string) (Device, error) {
	t, err := open(kind, name)
	if err != nil {
		return nil, err
	}
	return t, nil
}

func open(kind Kind, name string) (*TunTap, error) {
	if kind != TUN && kind != TAP {
		return nil, fmt.Errorf("open device %q: unknown kind %v", name, kind)
	}
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("open %s: %w", kind, err)
	}
	exists, err := checkExisting(kind, name)
	if err != nil {
		return nil, err
	}
	if kind == TUN {
		return openOffloadTUN(name, exists)
	}

	cfg := water.Config{DeviceType: water.TUN}
	if kind == TAP {
		cfg.DeviceType = water.TAP
	}
	cfg.Name = name
	// water sets the persist flag to this value: keep a pre-existing device
	// persistent, and let one we create vanish with our file descriptor.
	cfg.Persist = exists
	ifce, err := water.New(cfg)
	if err != nil {
		return nil, openError(kind, name, err)
	}
	f, ok := ifce.ReadWriteCloser.(*os.File)
	if !ok {
		ifce.Close()
		return nil, fmt.Errorf("open %s %q: water returned %T, not *os.File", kind, name, ifce.ReadWriteCloser)
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open %s %q: %w", kind, name, err)
	}
	t := &TunTap{kind: kind, name: ifce.Name(), created: !exists, file: f, raw: raw}
	t.readFn = t.readReady
	return t, nil
}

// checkExisting reports whether an interface called name exists, and fails
// if it is not a TUN/TAP device of the wanted kind that water can open.
func checkExisting(kind Kind, name string) (bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return false, nil
		}
		return false, fmt.Errorf("open %s %q: look up existing interface: %w", kind, name, err)
	}
	tt, ok := link.(*netlink.Tuntap)
	if !ok {
		return true, fmt.Errorf("open %s %q: an interface of type %q with that name already exists; choose another name or delete it (ip link del %s)", kind, name, link.Type(), name)
	}
	var have Kind
	switch tt.Mode {
	case netlink.TUNTAP_MODE_TUN:
		have = TUN
	case netlink.TUNTAP_MODE_TAP:
		have = TAP
	}
	if have != 0 && have != kind {
		return true, fmt.Errorf("open %s %q: it already exists as a %s device; choose another name or delete it (ip link del %s)", kind, name, have, name)
	}
	if tt.Flags&netlink.TUNTAP_MULTI_QUEUE != 0 {
		return true, fmt.Errorf("open %s %q: it already exists as a multi-queue device, which quictun does not open; delete it (ip link del %s)", kind, name, name)
	}
	return true, nil
}

// openError turns an error from water.New into one a person can act on.
func openError(kind Kind, name string, err error) error {
	var sys *os.SyscallError
	inIoctl := errors.As(err, &sys) // water returns open(2) errors bare
	switch {
	case !inIoctl && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENXIO)):
		return fmt.Errorf("open %s %q: open /dev/net/tun: %w: load the tun module (modprobe tun)", kind, name, err)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("open %s %q: %w: needs root or CAP_NET_ADMIN", kind, name, err)
	case errors.Is(err, unix.EBUSY):
		return fmt.Errorf("open %s %q: %w: another process holds the device open", kind, name, err)
	case !inIoctl:
		return fmt.Errorf("open %s %q: open /dev/net/tun: %w", kind, name, err)
	}
	return fmt.Errorf("open %s %q: %w", kind, name, err)
}

// Created reports whether Open created the device, in which case Close
// removes it. It is false for a device that existed before.
func (t *TunTap) Created() bool { return t.created }

// Name implements Device.
func (t *TunTap) Name() string { return t.name }

// Kind implements Device.
func (t *TunTap) Kind() Kind { return t.kind }

// BatchSize implements Device.
func (t *TunTap) BatchSize() int {
	if t.wg != nil {
		return t.wg.BatchSize()
	}
	return tunBatchSize
}

// Read implements Device. It blocks until a packet is ready, then reads every
// ready packet up to min(len(bufs), BatchSize()). A packet longer than the
// room in its buffer (len(bufs[i])-offset) is cut short by the kernel; when
// its IP header shows that (always on TUN; on TAP for IPv4 and IPv6 frames)
// it is dropped, and Read returns the packets before it while that Read, or
// the next one if some packets came before it, returns an error wrapping
// io.ErrShortBuffer. Give buffers room for the MTU (plus 14 bytes of
// Ethernet header and 4 per VLAN tag on TAP). Other errors met after some
// packets are likewise returned by the next Read.
func (t *TunTap) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if t.wg != nil {
		if min(len(bufs), len(sizes)) == 0 {
			return 0, nil
		}
		t.readMu.Lock()
		defer t.readMu.Unlock()
		return t.wgRead(bufs, sizes, offset)
	}
	limit := min(len(bufs), len(sizes), tunBatchSize)
	if limit == 0 {
		return 0, nil
	}
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if t.closed.Load() {
		return 0, t.closedErr("read")
	}
	if err := t.pending; err != nil {
		t.pending = nil
		return 0, err
	}
	t.rbufs, t.rsizes, t.roff, t.rlimit, t.rn, t.rerr = bufs, sizes, offset, limit, 0, nil
	err := t.raw.Read(t.readFn)
	n, rerr := t.rn, t.rerr
	t.rbufs, t.rsizes, t.rerr = nil, nil, nil
	if err != nil {
		if t.closed.Load() {
			return n, t.closedErr("read")
		}
		return n, fmt.Errorf("read %s: %w", t.name, err)
	}
	if rerr != nil && n > 0 {
		t.pending = rerr
		return n, nil
	}
	return n, rerr
}

// readReady is the RawConn.Read callback: it reads packets until the kernel
// has none ready or the buffers are used up. Returning false makes the
// runtime poller wait until the descriptor is readable and call it again.
func (t *TunTap) readReady(fd uintptr) bool {
	for t.rn < t.rlimit {
		b := t.rbufs[t.rn][t.roff:]
		m, err := unix.Read(int(fd), b)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return t.rn > 0
		case err != nil:
			t.rerr = fmt.Errorf("read %s: %w", t.name, err)
			return true
		case m == len(b):
			// The kernel silently truncates a packet to the buffer; a full
			// buffer may hold a cut packet. Its IP header tells.
			if want := ipLength(t.kind, b); want > m {
				t.rerr = fmt.Errorf("read %s: packet of %d bytes does not fit in %d bytes: %w", t.name, want, len(b), io.ErrShortBuffer)
				return true
			}
		}
		t.rsizes[t.rn] = m
		t.rn++
	}
	return true
}

// Write implements Device. It stops at the first packet the kernel refuses
// and returns how many it wrote before it.
func (t *TunTap) Write(bufs [][]byte, offset int) (int, error) {
	if t.wg != nil {
		return t.wgWrite(bufs, offset)
	}
	for i, b := range bufs {
		if _, err := t.file.Write(b[offset:]); err != nil {
			if t.closed.Load() || errors.Is(err, os.ErrClosed) {
				return i, t.closedErr("write")
			}
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return i, fmt.Errorf("write %s: %w", t.name, err)
		}
	}
	return len(bufs), nil
}

// Close implements Device. It unblocks a pending Read. A device that Open
// created is removed by the kernel as its descriptor closes; one that
// existed before stays. Closing again returns what the first Close did.
func (t *TunTap) Close() error {
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		if t.wg != nil {
			if err := t.wgClose(); err != nil {
				t.closeErr = fmt.Errorf("close %s: %w", t.name, err)
			}
			return
		}
		if err := t.file.Close(); err != nil {
			t.closeErr = fmt.Errorf("close %s: %w", t.name, err)
		}
	})
	return t.closeErr
}

func (t *TunTap) closedErr(op string) error {
	return fmt.Errorf("%s %s: %w", op, t.name, ErrClosed)
}
