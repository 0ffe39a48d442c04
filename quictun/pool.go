package quictun

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
)

// Leases hands out tunnel addresses to clients whose certificate carries
// none. It is the state a group of servers would share through a store
// (etcd) later, so it stays behind this small interface.
type Leases interface {
	// Assign returns the address of identity in pool, the same one each
	// time for the same identity while the leases last. taken reports
	// addresses that must not be handed out (in use by another client).
	Assign(identity string, pool netip.Prefix, taken func(netip.Addr) bool) (netip.Addr, error)
	// Reserve marks a certificate-bound address so the pool never hands it out.
	Reserve(a netip.Addr)
}

// memLeases keeps leases in memory. Addresses derive from a hash of the
// identity, so an identity gets the same address after a server restart
// too, unless it collided with another one in the meantime.
type memLeases struct {
	mu       sync.Mutex
	byID     map[string]map[netip.Prefix]netip.Addr // guarded by mu
	byAddr   map[netip.Addr]string                  // guarded by mu
	reserved map[netip.Addr]bool                    // guarded by mu
}

func newMemLeases() *memLeases {
	return &memLeases{
		byID:     make(map[string]map[netip.Prefix]netip.Addr),
		byAddr:   make(map[netip.Addr]string),
		reserved: make(map[netip.Addr]bool),
	}
}

// Reserve implements Leases.
func (l *memLeases) Reserve(a netip.Addr) {
	l.mu.Lock()
	l.reserved[a] = true
	l.mu.Unlock()
}

// Assign implements Leases.
func (l *memLeases) Assign(identity string, pool netip.Prefix, taken func(netip.Addr) bool) (netip.Addr, error) {
	pool = pool.Masked()
	l.mu.Lock()
	defer l.mu.Unlock()
	if a, ok := l.byID[identity][pool]; ok && !l.reserved[a] {
		return a, nil
	}
	size := poolSize(pool)
	if size < 1 {
		return netip.Addr{}, fmt.Errorf("pool %s has no usable addresses", pool)
	}
	h := sha256.Sum256([]byte(identity))
	start := binary.BigEndian.Uint64(h[:8]) % uint64(size)
	// Bounded probe: at most the pool size, and at most 1<<16 tries.
	tries := min(uint64(size), 1<<16)
	for i := uint64(0); i < tries; i++ {
		a := poolAddr(pool, (start+i)%uint64(size))
		if l.reserved[a] || l.byAddr[a] != "" || (taken != nil && taken(a)) {
			continue
		}
		if l.byID[identity] == nil {
			l.byID[identity] = make(map[netip.Prefix]netip.Addr)
		}
		l.byID[identity][pool] = a
		l.byAddr[a] = identity
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("pool %s is exhausted", pool)
}

// poolSize is the number of usable host addresses in p (IPv4 without the
// network and broadcast addresses; IPv6 without the subnet-router anycast),
// capped at 1<<62.
func poolSize(p netip.Prefix) int64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 62 {
		return 1 << 62
	}
	n := int64(1) << hostBits
	switch {
	case p.Addr().Is4() && hostBits >= 2:
		n -= 2
	case p.Addr().Is4():
		// /31 and /32: every address is usable.
	default:
		n-- // skip the subnet-router anycast address (host part zero)
	}
	return n
}

// poolAddr returns the i-th usable address of p.
func poolAddr(p netip.Prefix, i uint64) netip.Addr {
	hostBits := p.Addr().BitLen() - p.Bits()
	if !(p.Addr().Is4() && hostBits < 2) {
		i++ // skip the network / anycast address
	}
	b := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	b.Add(b, new(big.Int).SetUint64(i))
	buf := make([]byte, p.Addr().BitLen()/8)
	b.FillBytes(buf)
	a, _ := netip.AddrFromSlice(buf)
	return a
}
