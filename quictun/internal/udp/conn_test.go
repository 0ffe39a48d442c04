package udp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestTransientSendErrors(t *testing.T) {
	wrap := func(errno syscall.Errno) error {
		return &net.OpError{Op: "write", Net: "udp", Err: os.NewSyscallError("sendmsg", errno)}
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{wrap(syscall.ENETUNREACH), true},
		{wrap(syscall.EHOSTUNREACH), true},
		{wrap(syscall.EADDRNOTAVAIL), true},
		{wrap(syscall.EPERM), true},
		{wrap(syscall.EMSGSIZE), false}, // quic-go handles it (path MTU)
		{wrap(syscall.EBADF), false},
		{errors.New("use of closed network connection"), false},
	} {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			if got := isTransientSendError(tt.err); got != tt.want {
				t.Errorf("isTransientSendError = %v, want %v", got, tt.want)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
