//go:build !linux

package privdrop

import (
	"errors"
	"fmt"
)

// Supported reports whether Drop works on this system.
const Supported = false

// Drop returns errors.ErrUnsupported: changing user while keeping
// capabilities is Linux-only here.
func Drop(Target) error {
	return fmt.Errorf("drop privileges: %w", errors.ErrUnsupported)
}
