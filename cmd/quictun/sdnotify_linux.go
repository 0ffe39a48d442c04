package main

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// sdNotify sends state, newline-separated VAR=value assignments as in
// sd_notify(3) (READY=1, STATUS=…), to the service manager's socket named
// by $NOTIFY_SOCKET: a path, or an abstract socket written "@name". It
// reports whether it sent anything: without NOTIFY_SOCKET (not a
// Type=notify systemd service) it does nothing.
//
// The protocol is one datagram per message on a Unix datagram socket; a
// few lines here instead of a dependency on go-systemd.
func sdNotify(state string) (sent bool, err error) {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return false, nil
	}
	if addr[0] != '/' && addr[0] != '@' {
		// systemd also speaks vsock (vsock:CID:PORT) to a VM's
		// manager; quictun does not.
		return false, fmt.Errorf("NOTIFY_SOCKET=%q: want a socket path or @abstract name", addr)
	}
	// The net package turns a leading "@" into the abstract namespace's
	// NUL byte.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notify the service manager at NOTIFY_SOCKET=%s: %w", addr, err)
	}
	defer conn.Close()
	// systemd reads at once; a full queue must not hang the tunnel.
	if err := conn.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return false, err
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notify the service manager at NOTIFY_SOCKET=%s: %w", addr, err)
	}
	return true, nil
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd wants
// with RELOADING=1 (MONOTONIC_USEC=) to tell one reload from the next.
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "0"
	}
	return strconv.FormatInt(ts.Nano()/1000, 10)
}
