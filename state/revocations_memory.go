package state

import (
	"math/big"
	"sync"
)

// MemoryRevocations is a Revocations kept in memory; the zero value is
// not usable, use NewMemoryRevocations.
type MemoryRevocations struct {
	mu      sync.RWMutex
	serials map[string]bool // by serial.Text(16); guarded by mu
	changed chan struct{}
}

// NewMemoryRevocations returns an empty set.
func NewMemoryRevocations() *MemoryRevocations {
	return &MemoryRevocations{serials: make(map[string]bool), changed: make(chan struct{}, 1)}
}

// IsRevoked implements Revocations.
func (r *MemoryRevocations) IsRevoked(serial *big.Int) bool {
	if serial == nil {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.serials[serial.Text(16)]
}

// Changed implements Revocations.
func (r *MemoryRevocations) Changed() <-chan struct{} { return r.changed }

// Set replaces the whole set (a CRL read anew) and signals a change.
func (r *MemoryRevocations) Set(serials []*big.Int) {
	m := make(map[string]bool, len(serials))
	for _, s := range serials {
		m[s.Text(16)] = true
	}
	r.mu.Lock()
	r.serials = m
	r.mu.Unlock()
	r.signal()
}

// Revoke adds one serial and signals a change.
func (r *MemoryRevocations) Revoke(serial *big.Int) {
	r.mu.Lock()
	r.serials[serial.Text(16)] = true
	r.mu.Unlock()
	r.signal()
}

func (r *MemoryRevocations) signal() {
	select {
	case r.changed <- struct{}{}:
	default: // a change is already pending
	}
}
