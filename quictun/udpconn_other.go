//go:build !linux

package quictun

import (
	"errors"
	"net"
)

// socketBuffers is only implemented on Linux.
func socketBuffers(c *net.UDPConn) (rcv, snd int, err error) {
	return 0, 0, errors.ErrUnsupported
}

// forceSocketBuffers is only implemented on Linux.
func forceSocketBuffers(c *net.UDPConn, size int) error { return errors.ErrUnsupported }
