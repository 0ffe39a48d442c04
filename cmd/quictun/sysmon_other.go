//go:build !unix

package main

import "errors"

// reexec is not available here.
func reexec(name, value string) error {
	return errors.New("re-executing is not supported on this system")
}
