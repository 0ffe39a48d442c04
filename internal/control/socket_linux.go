package control

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// ucred is who is at the other end of a connection.
type ucred struct {
	uid uint32 // effective uid when it connected
	pid int32
}

// listenUnix listens on a Unix stream socket; an address starting with
// "@" is abstract (the net package turns it into a leading NUL byte).
func listenUnix(addr string) (*net.UnixListener, error) {
	return net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
}

// peerCred returns the credentials the kernel recorded for the peer when
// it connected (SO_PEERCRED): they cannot be forged by what the peer
// sends.
func peerCred(c *net.UnixConn) (ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return ucred{}, err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return ucred{}, err
	}
	if cerr != nil {
		return ucred{}, fmt.Errorf("SO_PEERCRED: %w", os.NewSyscallError("getsockopt", cerr))
	}
	return ucred{uid: cred.Uid, pid: cred.Pid}, nil
}

// procNetUnix lists the Unix sockets of this process's network namespace.
const procNetUnix = "/proc/net/unix"

// Running returns the devices whose control socket is listening in this
// network namespace: every quictun process here that can be asked, by
// its device name, sorted.
func Running() ([]string, error) {
	b, err := os.ReadFile(procNetUnix)
	if err != nil {
		return nil, fmt.Errorf("list the control sockets: %w", err)
	}
	return parseProcNetUnix(b), nil
}
