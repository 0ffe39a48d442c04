//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// hookProcessGroup puts a hook in a process group of its own, so that at
// its timeout the shell and everything it started are killed together.
func hookProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
