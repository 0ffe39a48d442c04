//go:build !linux

package device

import (
	"errors"
	"fmt"
	"net/netip"
)

// Configure applies cfg to the link named name; on this system it returns
// an error wrapping errors.ErrUnsupported.
func Configure(name string, cfg LinkConfig) (undo func() error, err error) {
	return nil, fmt.Errorf("configure %s: %w on this system", name, errors.ErrUnsupported)
}

// AddRoutes adds routes through the link named name; on this system it
// returns an error wrapping errors.ErrUnsupported.
func AddRoutes(name string, routes []netip.Prefix) (undo func() error, err error) {
	return nil, fmt.Errorf("add routes via %s: %w on this system", name, errors.ErrUnsupported)
}

// RemoveRoutes removes routes through the link named name; on this system
// it returns an error wrapping errors.ErrUnsupported.
func RemoveRoutes(name string, routes []netip.Prefix) error {
	return fmt.Errorf("remove routes via %s: %w on this system", name, errors.ErrUnsupported)
}
