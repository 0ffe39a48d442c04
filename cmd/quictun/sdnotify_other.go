//go:build !linux

package main

import (
	"errors"
	"os"
)

// sdNotify is for systemd, which only Linux has: it does nothing without
// NOTIFY_SOCKET and returns errors.ErrUnsupported with it.
func sdNotify(string) (sent bool, err error) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return false, nil
	}
	return false, errors.ErrUnsupported
}

// monotonicUsec is not needed without systemd.
func monotonicUsec() string { return "0" }
