package udp

import (
	"encoding/binary"
	"net"

	"golang.org/x/sys/unix"
)

// socketBuffers reads the socket's effective receive and send buffer sizes.
func socketBuffers(c *net.UDPConn) (rcv, snd int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		rcv, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if serr == nil {
			snd, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		}
	})
	if err == nil {
		err = serr
	}
	return rcv / 2, snd / 2, err
}

// forceSocketBuffers sets both buffers past net.core.[rw]mem_max, which
// needs CAP_NET_ADMIN (quictun usually has it: it creates devices).
func forceSocketBuffers(c *net.UDPConn, size int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size)
		}
	})
	if err == nil {
		err = serr
	}
	return err
}

// msgTrunc is the receive flag for a datagram cut to fit its buffer.
const msgTrunc = unix.MSG_TRUNC

// enableGRO turns on UDP generic receive offload for the socket (Linux
// 5.0+). It reports whether the kernel took it.
func enableGRO(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// groSegmentSize returns the segment size in a UDP_GRO control message
// among oob's, or 0 when there is none. It does not allocate.
func groSegmentSize(oob []byte) int {
	for len(oob) > 0 {
		hdr, body, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return 0
		}
		if hdr.Level == unix.IPPROTO_UDP && hdr.Type == unix.UDP_GRO && len(body) >= 4 {
			return int(binary.NativeEndian.Uint32(body)) // the kernel writes an int
		}
		oob = rest
	}
	return 0
}
