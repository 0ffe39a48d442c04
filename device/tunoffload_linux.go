package device

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// offloadHeadroom is the least offset Write of an offloading TUN takes
// without copying: wireguard's tun writes a 10-byte virtio-net header in
// front of each packet.
const offloadHeadroom = 10

// openOffloadTUN opens the TUN device name with IFF_VNET_HDR and hands it to
// golang.zx2c4.com/wireguard/tun, which turns on TSO/USO (TUNSETOFFLOAD),
// splits the kernel's GSO super-packets on Read and coalesces segments
// (GRO) on Write. A device that existed keeps its persist flag; one
// created here is not persistent and vanishes with the descriptor.
func openOffloadTUN(name string, exists bool) (*TunTap, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(TUN, name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %s %q: %w", TUN, name, err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, openError(TUN, name, os.NewSyscallError("ioctl", err))
	}
	// From here wireguard's tun owns fd (it wraps it in an *os.File). On
	// error the file is unreachable and its finalizer closes it.
	dev, got, err := wgtun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		return nil, fmt.Errorf("open %s %q: enable offloads: %w", TUN, name, err)
	}
	t := &TunTap{kind: TUN, name: got, created: !exists, wg: dev}
	t.wscratch = make([]byte, offloadHeadroom+65535)
	t.wone = make([][]byte, 1)
	return t, nil
}

// wgRead is Read for an offloading TUN. One read(2) returns one packet, or
// a GSO super-packet split into up to len(bufs) packets.
func (t *TunTap) wgRead(bufs [][]byte, sizes []int, offset int) (int, error) {
	if t.closed.Load() {
		return 0, t.closedErr("read")
	}
	// A packet the library cannot parse (bad virtio header, more segments
	// than buffers) is dropped; read the next one, a bounded number of times.
	for range 64 {
		n, err := t.wg.Read(bufs, sizes, offset)
		if err == nil || errors.Is(err, wgtun.ErrTooManySegments) && n > 0 {
			// The library copies a GSO segment larger than its buffer
			// truncated but reports its full size.
			for i := range n {
				if sizes[i] > len(bufs[i])-offset {
					return 0, fmt.Errorf("read %s: segment of %d bytes does not fit in %d bytes: %w", t.name, sizes[i], len(bufs[i])-offset, io.ErrShortBuffer)
				}
			}
			return n, nil // with too many segments, the rest is lost
		}
		if t.closed.Load() {
			return 0, t.closedErr("read")
		}
		var pe *os.PathError
		switch {
		case errors.As(err, &pe) || errors.Is(err, os.ErrClosed):
			return 0, fmt.Errorf("read %s: %w", t.name, err)
		case strings.Contains(err.Error(), "overflows"):
			return 0, fmt.Errorf("read %s: %v: %w", t.name, err, io.ErrShortBuffer)
		}
	}
	return 0, fmt.Errorf("read %s: too many malformed packets in a row", t.name)
}

// wgWrite is Write for an offloading TUN. With offset ≥ 10 the whole batch
// goes to the library at once (GRO: it may append to and swap the slices
// in bufs), which tries every packet, so an error comes with n ==
// len(bufs); with less headroom each packet is copied into a scratch buffer
// and written on its own, stopping at the first failure.
func (t *TunTap) wgWrite(bufs [][]byte, offset int) (int, error) {
	if t.closed.Load() {
		return 0, t.closedErr("write")
	}
	if offset >= offloadHeadroom {
		// The library tries every packet and joins the errors: n is then
		// len(bufs) with the error (see Device.Write).
		if _, err := t.wg.Write(bufs, offset); err != nil {
			return len(bufs), t.writeErr(err)
		}
		return len(bufs), nil
	}
	t.wmu.Lock()
	defer t.wmu.Unlock()
	for i, b := range bufs {
		p := b[offset:]
		if len(p) > len(t.wscratch)-offloadHeadroom {
			return i, fmt.Errorf("write %s: packet of %d bytes: %w", t.name, len(p), unix.EMSGSIZE)
		}
		t.wone[0] = t.wscratch[:offloadHeadroom+copy(t.wscratch[offloadHeadroom:], p)]
		_, err := t.wg.Write(t.wone, offloadHeadroom)
		t.wone[0] = nil
		if err != nil {
			return i, t.writeErr(err)
		}
	}
	return len(bufs), nil
}

// wgClose closes an offloading TUN. A device that existed before Open gets
// its offloads turned off again, so that a later user without
// IFF_VNET_HDR is not handed GSO super-packets.
func (t *TunTap) wgClose() error {
	if !t.created {
		if sc, err := t.wg.File().SyscallConn(); err == nil {
			_ = sc.Control(func(fd uintptr) { _ = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, 0) })
		}
	}
	return t.wg.Close()
}
