//go:build !linux

package control

import (
	"errors"
	"net"
)

// ucred is who is at the other end of a connection.
type ucred struct {
	uid uint32
	pid int32
}

// listenUnix needs abstract sockets, which only Linux has.
func listenUnix(string) (*net.UnixListener, error) { return nil, errors.ErrUnsupported }

// peerCred needs SO_PEERCRED, which only Linux has.
func peerCred(*net.UnixConn) (ucred, error) { return ucred{}, errors.ErrUnsupported }

// Running needs /proc/net/unix, which only Linux has.
func Running() ([]string, error) { return nil, errors.ErrUnsupported }
