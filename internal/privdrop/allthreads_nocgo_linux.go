//go:build !cgo

package privdrop

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Without cgo the Go runtime knows every thread, and AllThreadsSyscall
// makes the call on each of them (stopping the world meanwhile).

// allThreadsPrctl runs prctl(option, arg2, arg3, 0, 0) on every thread.
func allThreadsPrctl(option, arg2, arg3 uintptr) error {
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, option, arg2, arg3); e != 0 {
		return e
	}
	return nil
}

// allThreadsCapset sets the effective, permitted and inheritable sets of
// every thread.
func allThreadsCapset(effective, permitted, inheritable uint64) error {
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{
		{Effective: uint32(effective), Permitted: uint32(permitted), Inheritable: uint32(inheritable)},
		{Effective: uint32(effective >> 32), Permitted: uint32(permitted >> 32), Inheritable: uint32(inheritable >> 32)},
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(data)), 0); e != 0 {
		return e
	}
	return nil
}
