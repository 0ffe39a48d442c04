//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
)

// reexec replaces the process with a new run of the same executable and
// arguments, with name=value in its environment.
func reexec(name, value string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the executable: %w", err)
	}
	if err := syscall.Exec(exe, os.Args, withEnv(os.Environ(), name, value)); err != nil {
		return fmt.Errorf("exec %s: %w", exe, err)
	}
	return nil // not reached
}
