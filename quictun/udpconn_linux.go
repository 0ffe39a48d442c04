package quictun

import (
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
