//go:build !linux

package udp

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

// msgTrunc is the receive flag for a datagram cut to fit its buffer.
const msgTrunc = 0x20

// enableGRO is only implemented on Linux.
func enableGRO(c *net.UDPConn) bool { return false }

// groSegmentSize is only implemented on Linux.
func groSegmentSize(oob []byte) int { return 0 }
