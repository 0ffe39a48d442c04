package state

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
	"time"
)

// MemoryLeases keeps leases in memory: the default, for one server.
// Addresses derive from a hash of the identity, so an identity gets the
// same address after a server restart too, unless it collided with
// another one in the meantime. A held lease does not expire; a released
// one is kept for the identity until its TTL has passed (then the address
// may go to another identity).
type MemoryLeases struct {
	ttl      time.Duration
	now      func() time.Time
	mu       sync.Mutex
	byID     map[string]map[netip.Prefix]*memLease // guarded by mu
	byAddr   map[netip.Addr]string                 // guarded by mu
	reserved map[netip.Addr]bool                   // guarded by mu
}

// memLease is one address bound to an identity.
type memLease struct {
	addr    netip.Addr
	held    bool
	expires time.Time // when released: the end of its TTL
}

// DefaultReleasedTTL is how long MemoryLeases keeps a released lease.
const DefaultReleasedTTL = 24 * time.Hour

// NewMemoryLeases returns an empty MemoryLeases that keeps a released
// lease for ttl (0: DefaultReleasedTTL).
func NewMemoryLeases(ttl time.Duration) *MemoryLeases {
	if ttl <= 0 {
		ttl = DefaultReleasedTTL
	}
	return &MemoryLeases{
		ttl:      ttl,
		now:      time.Now,
		byID:     make(map[string]map[netip.Prefix]*memLease),
		byAddr:   make(map[netip.Addr]string),
		reserved: make(map[netip.Addr]bool),
	}
}

// Reserve implements Leases.
func (l *MemoryLeases) Reserve(a netip.Addr) {
	l.mu.Lock()
	l.reserved[a] = true
	l.mu.Unlock()
}

// Assign implements Leases.
func (l *MemoryLeases) Assign(identity string, pool netip.Prefix, taken func(netip.Addr) bool) (netip.Addr, error) {
	pool = pool.Masked()
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if ls, ok := l.byID[identity][pool]; ok && !l.reserved[ls.addr] {
		ls.held = true
		return ls.addr, nil
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
		if l.byAddr[a] != "" && !l.expireLocked(a, now) {
			continue
		}
		if l.reserved[a] || (taken != nil && taken(a)) {
			continue
		}
		if l.byID[identity] == nil {
			l.byID[identity] = make(map[netip.Prefix]*memLease)
		}
		l.byID[identity][pool] = &memLease{addr: a, held: true}
		l.byAddr[a] = identity
		return a, nil
	}
	return netip.Addr{}, fmt.Errorf("pool %s is exhausted", pool)
}

// expireLocked drops the lease on a if it was released and its TTL has
// passed, and reports whether it did. The lease is found by its address,
// not by the pool being probed: it may have been made from a pool the
// server no longer has, or from an overlapping one.
func (l *MemoryLeases) expireLocked(a netip.Addr, now time.Time) bool {
	identity := l.byAddr[a]
	for pool, ls := range l.byID[identity] {
		if ls.addr != a {
			continue
		}
		if ls.held || now.Before(ls.expires) {
			return false
		}
		delete(l.byID[identity], pool)
		if len(l.byID[identity]) == 0 {
			delete(l.byID, identity)
		}
		delete(l.byAddr, a)
		return true
	}
	return false
}

// Renew implements Leases: it marks identity's lease on a held again.
func (l *MemoryLeases) Renew(identity string, a netip.Addr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range l.byID[identity] {
		if ls.addr == a {
			ls.held = true
			return nil
		}
	}
	return fmt.Errorf("%s holds no lease on %s", identity, a)
}

// Release implements Leases: the lease stays the identity's for the TTL.
func (l *MemoryLeases) Release(identity string, a netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range l.byID[identity] {
		if ls.addr == a {
			ls.held = false
			ls.expires = l.now().Add(l.ttl)
		}
	}
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
