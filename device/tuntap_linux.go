package device

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// TunTap is a Linux TUN or TAP device opened by Open.
//
// A TUN is opened with offloads (IFF_VNET_HDR, TSO/USO) through
// golang.zx2c4.com/wireguard/tun: Read returns the segments of a GSO
// super-packet, up to BatchSize of them, from one system call, and Write
// with offset ≥ 10 coalesces TCP/UDP segments (GRO) into super-packets,
// growing bufs[i] within its capacity and possibly swapping elements of
// bufs; give it buffers of OffloadBufSize capacity to let it coalesce.
//
// A TAP is opened with offloads too (IFF_VNET_HDR, checksum and TCP
// segmentation offload), by this package: Read completes the checksums the
// kernel left partial and splits TCP super-frames of up to 64 KiB into
// segments, one per buffer, keeping those that do not fit for the next
// Read; it takes every frame the kernel has ready, up to the number of
// buffers given (at most BatchSize), with one system call per frame and no
// heap allocation. Write writes one frame per system call; with offset ≥ 10
// it puts the virtio-net header in the headroom instead of copying, and
// coalesces runs of TCP segments of one flow into super-frames (GRO, see
// tapgro_linux.go), growing bufs[i] within its capacity when that is at
// least offset+64 KiB (OffloadBufSize buffers) and copying into a buffer of
// its own otherwise.
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

	// TAP only (guarded by readMu): frame receives each read(2), its
	// virtio-net header first; split holds a super-frame being cut up.
	frame      []byte
	split      tcpSplit
	offloads   bool          // TUNSETOFFLOAD took (TAP)
	dropped    atomic.Uint64 // TAP frames dropped as malformed or unsupported
	gsoRead    atomic.Uint64 // TAP super-frames split (for tests)
	groWritten atomic.Uint64 // TAP super-frames coalesced by Write (for tests)

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
	return openTAP(name, exists)
}

// checkExisting reports whether an interface called name exists, and fails
// if it is not a single-queue TUN/TAP device of the wanted kind.
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

// openError turns an error from opening /dev/net/tun (a bare errno) or from
// the TUNSETIFF ioctl (an *os.SyscallError) into one a person can act on.
func openError(kind Kind, name string, err error) error {
	var sys *os.SyscallError
	inIoctl := errors.As(err, &sys) // open(2) errors come bare
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
	return tapBatchSize
}

// Coalesces implements Coalescer: Write of a TUN, and of a TAP with
// offloads, coalesces TCP segments when given OffloadBufSize buffers.
func (t *TunTap) Coalesces() bool { return t.wg != nil || t.offloads }

// Dropped returns how many frames a TAP has dropped on Read because their
// virtio-net header asked for an offload Read does not do (e.g. UDP
// segmentation) or did not match the frame. It is 0 for a TUN.
func (t *TunTap) Dropped() uint64 { return t.dropped.Load() }

// Read implements Device. It blocks until a packet is ready, then reads every
// ready packet up to min(len(bufs), BatchSize()); the segments of a TCP
// super-packet count one each, and on TAP those that do not fit in bufs
// are returned by the next Read. A packet (or segment) longer than the
// room in its buffer (len(bufs[i])-offset) is dropped (with the rest of its
// super-packet), and Read returns the packets before it while that Read,
// or the next one if some packets came before it, returns an error
// wrapping io.ErrShortBuffer. Give buffers room for the MTU (plus 14 bytes
// of Ethernet header and 4 per VLAN tag on TAP). Other errors met after
// some packets are likewise returned by the next Read. A TAP frame whose
// offload Read cannot handle is dropped and counted (see Dropped).
func (t *TunTap) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if t.wg != nil {
		if min(len(bufs), len(sizes)) == 0 {
			return 0, nil
		}
		t.readMu.Lock()
		defer t.readMu.Unlock()
		return t.wgRead(bufs, sizes, offset)
	}
	limit := min(len(bufs), len(sizes), tapBatchSize)
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

// readReady is the RawConn.Read callback of a TAP: it hands out pending
// segments and reads frames until the kernel has none ready or the buffers
// are used up. Returning false makes the runtime poller wait until the
// descriptor is readable and call it again.
func (t *TunTap) readReady(fd uintptr) bool {
	for t.rn < t.rlimit {
		out := t.rbufs[t.rn][t.roff:]
		if t.split.pending() {
			if n := t.split.nextLen(); n > len(out) {
				t.split.drop()
				t.rerr = fmt.Errorf("read %s: segment of %d bytes does not fit in %d bytes: %w", t.name, n, len(out), io.ErrShortBuffer)
				return true
			}
			t.rsizes[t.rn] = t.split.segment(out)
			t.rn++
			continue
		}
		m, err := unix.Read(int(fd), t.frame)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return t.rn > 0
		case err != nil:
			t.rerr = fmt.Errorf("read %s: %w", t.name, err)
			return true
		case m < vnetHdrLen:
			t.dropped.Add(1)
			continue
		}
		hdr := decodeVnetHdr(t.frame)
		frame := t.frame[vnetHdrLen:m]
		if m == len(t.frame) {
			// The kernel silently truncates a frame to the buffer; a full
			// buffer may hold a cut frame. Its IP header tells.
			if want := ipLength(TAP, frame); want > len(frame) {
				t.rerr = fmt.Errorf("read %s: frame of %d bytes does not fit in %d bytes: %w", t.name, want, len(frame), io.ErrShortBuffer)
				return true
			}
		}
		switch hdr.gsoType &^ vnetGSOECN {
		case vnetGSONone:
			if hdr.flags&vnetFlagNeedsCsum != 0 {
				if completeChecksum(frame, int(hdr.csumStart), int(hdr.csumOffset)) != nil {
					t.dropped.Add(1)
					continue
				}
			}
			if len(frame) > len(out) {
				t.rerr = fmt.Errorf("read %s: frame of %d bytes does not fit in %d bytes: %w", t.name, len(frame), len(out), io.ErrShortBuffer)
				return true
			}
			t.rsizes[t.rn] = copy(out, frame)
			t.rn++
		case vnetGSOTCPv4, vnetGSOTCPv6:
			if t.split.start(frame, hdr) != nil {
				t.dropped.Add(1)
			} else {
				t.gsoRead.Add(1)
			}
			// The loop hands out the segments.
		default:
			t.dropped.Add(1)
		}
	}
	return true
}

// Write implements Device. It stops at the first packet the kernel refuses
// and returns how many it wrote before it. On a TAP, when the kernel refuses
// a super-frame coalesced from bufs[i:j], Write returns i: the segments
// after bufs[i] were not written and can be written again.
func (t *TunTap) Write(bufs [][]byte, offset int) (int, error) {
	if t.wg != nil {
		return t.wgWrite(bufs, offset)
	}
	if t.closed.Load() {
		return 0, t.closedErr("write")
	}
	if offset < vnetHdrLen {
		return t.tapWriteCopy(bufs, offset)
	}
	if t.offloads && len(bufs) > 1 {
		return t.tapWriteGRO(bufs, offset)
	}
	for i, b := range bufs {
		if err := t.writePlain(b, offset); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

// tapWriteCopy is Write with too little headroom for the virtio-net header:
// each frame is copied after one into a scratch buffer.
func (t *TunTap) tapWriteCopy(bufs [][]byte, offset int) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	clear(t.wscratch[:vnetHdrLen])
	for i, b := range bufs {
		p := b[offset:]
		if len(p) > len(t.wscratch)-vnetHdrLen {
			return i, fmt.Errorf("write %s: frame of %d bytes: %w", t.name, len(p), unix.EMSGSIZE)
		}
		if err := t.writeFrame(t.wscratch[:vnetHdrLen+copy(t.wscratch[vnetHdrLen:], p)]); err != nil {
			return i, err
		}
	}
	return len(bufs), nil
}

// writePlain writes the frame b[offset:] as it is, behind an all-zero
// virtio-net header (a whole frame, checksums done) put in its headroom
// (offset ≥ vnetHdrLen).
func (t *TunTap) writePlain(b []byte, offset int) error {
	p := b[offset-vnetHdrLen:]
	clear(p[:vnetHdrLen])
	return t.writeFrame(p)
}

// writeFrame writes p, a virtio-net header and a frame, with one write(2).
func (t *TunTap) writeFrame(p []byte) error {
	if _, err := t.file.Write(p); err != nil {
		return t.writeErr(err)
	}
	return nil
}

// writeErr turns an error from writing the device into ErrClosed once it
// is closed, or into "write NAME: errno" otherwise.
func (t *TunTap) writeErr(err error) error {
	if t.closed.Load() || errors.Is(err, os.ErrClosed) {
		return t.closedErr("write")
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("write %s: %w", t.name, err)
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
		if err := t.tapClose(); err != nil {
			t.closeErr = fmt.Errorf("close %s: %w", t.name, err)
		}
	})
	return t.closeErr
}

func (t *TunTap) closedErr(op string) error {
	return fmt.Errorf("%s %s: %w", op, t.name, ErrClosed)
}
