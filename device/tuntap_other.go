//go:build !linux

package device

import (
	"errors"
	"fmt"
)

// TunTap is a TUN or TAP device opened by Open. Only Linux has them; on other
// systems Open always fails.
type TunTap struct {
	kind Kind
	name string
}

// Open opens a TUN or TAP device; on this system it returns an error
// wrapping errors.ErrUnsupported.
func Open(kind Kind, name string) (Device, error) {
	return nil, fmt.Errorf("open %s %q: %w on this system", kind, name, errors.ErrUnsupported)
}

// Created reports whether Open created the device.
func (t *TunTap) Created() bool { return false }

// Name implements Device.
func (t *TunTap) Name() string { return t.name }

// Kind implements Device.
func (t *TunTap) Kind() Kind { return t.kind }

// Dropped returns how many frames Read dropped; always 0 on this system.
func (t *TunTap) Dropped() uint64 { return 0 }

// BatchSize implements Device.
func (t *TunTap) BatchSize() int { return 1 }

// Read implements Device; it always fails.
func (t *TunTap) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	return 0, errors.ErrUnsupported
}

// Write implements Device; it always fails.
func (t *TunTap) Write(bufs [][]byte, offset int) (int, error) {
	return 0, errors.ErrUnsupported
}

// Close implements Device.
func (t *TunTap) Close() error { return nil }
