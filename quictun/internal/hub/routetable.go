package hub

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
)

// Routes maps prefixes to values of T (the hub maps tunnel addresses and
// client routes to sessions) and answers longest-prefix-match lookups.
//
// Safe for concurrent use: lookups from many goroutines on the hot path take
// a read lock and do not allocate; inserts and removes are rare and take the
// write lock. Per address family it keeps one map from masked prefix to
// value and the list of prefix lengths present, longest first, so a lookup
// costs one map probe per distinct prefix length in the table (a handful in
// practice: /32 and /128 for tunnel addresses, a few for routes). The map is
// keyed by the address as two integers plus the length, which hashes and
// masks much faster than a netip.Prefix.
//
// The zero value is an empty table ready to use.
type Routes[T comparable] struct {
	mu sync.RWMutex
	v4 routeFamily[T] // guarded by mu
	v6 routeFamily[T] // guarded by mu
}

// routeFamily is one address family of a Routes.
type routeFamily[T comparable] struct {
	m      map[routeKey]routeEntry[T]
	counts [129]int // number of prefixes in m per prefix length
	lens   []int    // prefix lengths with counts > 0, descending
}

// routeKey is a masked prefix as integers: an IPv6 address in hi:lo, an
// IPv4 address in the low 32 bits of lo.
type routeKey struct {
	hi, lo uint64
	bits   int
}

// routeEntry is a prefix and its value.
type routeEntry[T comparable] struct {
	p netip.Prefix
	v T
}

// addrBits returns a valid address as integers, the layout of routeKey.
func addrBits(a netip.Addr) (hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

// maskedKey returns the key of the prefix of length bits containing the
// address hi:lo, of an address family of width bits (32 or 128).
func maskedKey(hi, lo uint64, bits, width int) routeKey {
	if width == 32 {
		return routeKey{lo: lo & (0xffffffff << (32 - bits)) & 0xffffffff, bits: bits}
	}
	if bits <= 64 {
		return routeKey{hi: hi & (^uint64(0) << (64 - bits)), bits: bits}
	}
	return routeKey{hi: hi, lo: lo & (^uint64(0) << (128 - bits)), bits: bits}
}

// prefixKey returns the key of a masked, valid prefix.
func prefixKey(p netip.Prefix) routeKey {
	hi, lo := addrBits(p.Addr())
	return maskedKey(hi, lo, p.Bits(), p.Addr().BitLen())
}

// family returns the family table for an address, or nil for an invalid one.
func (t *Routes[T]) family(a netip.Addr) *routeFamily[T] {
	switch {
	case a.Is4():
		return &t.v4
	case a.Is6():
		return &t.v6
	}
	return nil
}

// Insert maps the prefix p (masked first, zone dropped) to v and returns the
// value it replaced, if any. An invalid prefix is ignored (replaced false).
func (t *Routes[T]) Insert(p netip.Prefix, v T) (prev T, replaced bool) {
	if !p.IsValid() {
		return prev, false
	}
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.family(p.Addr())
	if f.m == nil {
		f.m = make(map[routeKey]routeEntry[T])
	}
	k := prefixKey(p)
	old, replaced := f.m[k]
	prev = old.v
	f.m[k] = routeEntry[T]{p: p, v: v}
	if !replaced {
		f.addLen(p.Bits())
	}
	return prev, replaced
}

// remove deletes the prefix p (masked first) only if it maps to v, so that a
// replaced session cannot remove its successor's entry. It reports whether
// it deleted anything.
func (t *Routes[T]) remove(p netip.Prefix, v T) bool {
	if !p.IsValid() {
		return false
	}
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.family(p.Addr())
	k := prefixKey(p)
	if cur, ok := f.m[k]; !ok || cur.v != v {
		return false
	}
	delete(f.m, k)
	f.dropLen(p.Bits())
	return true
}

// RemoveValue deletes every prefix mapped to v and returns how many.
func (t *Routes[T]) RemoveValue(v T) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, f := range []*routeFamily[T]{&t.v4, &t.v6} {
		for k, cur := range f.m {
			if cur.v == v {
				delete(f.m, k)
				f.dropLen(k.bits)
				n++
			}
		}
	}
	return n
}

// Lookup returns the value of the longest prefix containing a. An
// IPv4-mapped IPv6 address is an IPv6 address here (it matches IPv6
// prefixes only); a zone is ignored. It does not allocate.
func (t *Routes[T]) Lookup(a netip.Addr) (T, bool) {
	var zero T
	t.mu.RLock()
	defer t.mu.RUnlock()
	f := t.family(a)
	if f == nil {
		return zero, false
	}
	hi, lo := addrBits(a)
	width := a.BitLen()
	for _, l := range f.lens {
		if e, ok := f.m[maskedKey(hi, lo, l, width)]; ok {
			return e.v, true
		}
	}
	return zero, false
}

// LookupExact returns the value of exactly the prefix p (masked first).
func (t *Routes[T]) LookupExact(p netip.Prefix) (T, bool) {
	var zero T
	if !p.IsValid() {
		return zero, false
	}
	p = p.Masked()
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.family(p.Addr()).m[prefixKey(p)]
	return e.v, ok
}

// len returns the number of prefixes in the table.
func (t *Routes[T]) len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.v4.m) + len(t.v6.m)
}

// addLen records one more prefix of length bits.
func (f *routeFamily[T]) addLen(bits int) {
	f.counts[bits]++
	if f.counts[bits] == 1 {
		f.rebuildLens()
	}
}

// dropLen records one prefix of length bits fewer.
func (f *routeFamily[T]) dropLen(bits int) {
	f.counts[bits]--
	if f.counts[bits] == 0 {
		f.rebuildLens()
	}
}

// rebuildLens recomputes lens from counts. It makes a new slice rather than
// reusing the old one's array (lookups only read lens under the read lock,
// so either would do; a fresh slice keeps that reasoning local).
func (f *routeFamily[T]) rebuildLens() {
	lens := make([]int, 0, len(f.lens)+1)
	for bits := len(f.counts) - 1; bits >= 0; bits-- {
		if f.counts[bits] > 0 {
			lens = append(lens, bits)
		}
	}
	f.lens = slices.Clip(lens)
}
