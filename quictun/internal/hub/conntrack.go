package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Conntrack timeouts: how long after its last packet a flow is forgotten.
const (
	// TCPEstablishedTimeout holds a TCP flow both ends have sent on (an
	// idle SSH session with keepalives off survives two hours).
	TCPEstablishedTimeout = 2 * time.Hour
	// TCPOpeningTimeout holds a TCP flow only its first side has sent on.
	TCPOpeningTimeout = time.Minute
	// UDPTimeout holds a UDP flow.
	UDPTimeout = time.Minute
	// ICMPTimeout holds an ICMP echo (ping) flow.
	ICMPTimeout = 30 * time.Second
)

// DefaultConntrackSize is the number of flows a Conntrack holds when
// NewConntrack is given 0: 65536 entries of 72 bytes, 4.5 MiB.
const DefaultConntrackSize = 65536

// Conntrack is the hub's bounded connection-tracking table: the flows an
// access policy allowed, so that the packets of their other direction (the
// replies) pass too, and so that the rules are scanned once per flow
// rather than per packet.
//
// It is a fixed array allocated once, set-associative: a flow hashes to
// one bucket of ctWays entries in one of ctShards shards, each under its
// own mutex (the inbound loops of all sessions and the device reader use
// it at once). Nothing is allocated per packet. A flow is forgotten when
// its timeout has passed since its last packet (TCPEstablishedTimeout,
// TCPOpeningTimeout, UDPTimeout, ICMPTimeout; others as UDP). TCP FIN and
// RST are not followed: a closed connection stays until it times out or
// is evicted. When a new flow finds its bucket full of live flows, the
// one seen least recently is evicted (and counted in Evicted): that
// flow's next packet in the direction the rules allow records it again,
// while a reply that only the table let through is dropped until then.
//
// Safe for concurrent use.
type Conntrack struct {
	shards  []ctShard
	buckets int // per shard
	epoch   time.Time
	evicted atomic.Uint64
}

// ctWays is the number of entries per bucket, ctShards the number of
// shards (a power of two).
const (
	ctWays   = 8
	ctShards = 64
)

type ctShard struct {
	mu      sync.Mutex
	buckets [][ctWays]ctEntry // guarded by mu
}

// ctKey is a flow with its two ends in a canonical order (the lower
// address and port first), so both directions find one entry.
type ctKey struct {
	aHi, aLo, bHi, bLo uint64
	aPort, bPort       uint16
	proto              uint8
	v6                 bool
}

// ctEntry is one tracked flow. last is 0 for a free entry.
type ctEntry struct {
	tag     uint64 // the key's hash, compared before the key
	key     ctKey
	last    int64  // last packet, ns since the table's epoch (≥ 1; Now)
	gen     uint32 // the policy generation that allowed it
	origA   bool   // the first packet came from the key's a side
	replied bool   // packets went both ways
}

// ctRef names an entry found by lookup, for revalidated.
type ctRef struct {
	shard, bucket, way int
}

// NewConntrack returns an empty table of about size flows (rounded up to
// whole buckets; 0 or less: DefaultConntrackSize).
func NewConntrack(size int) *Conntrack {
	if size <= 0 {
		size = DefaultConntrackSize
	}
	per := max(1, (size+ctShards*ctWays-1)/(ctShards*ctWays))
	ct := &Conntrack{shards: make([]ctShard, ctShards), buckets: per, epoch: time.Now()}
	for i := range ct.shards {
		ct.shards[i].buckets = make([][ctWays]ctEntry, per)
	}
	return ct
}

// Cap returns how many flows the table holds at most.
func (ct *Conntrack) Cap() int { return ctShards * ct.buckets * ctWays }

// Evicted returns how many live flows were evicted to make room.
func (ct *Conntrack) Evicted() uint64 { return ct.evicted.Load() }

// Now returns the time since the table was made, on the monotonic clock:
// the clock of Allow and Len. (One clock read, half the cost of
// time.Now, which reads the wall clock too.)
func (ct *Conntrack) Now() time.Duration { return time.Since(ct.epoch) }

// Len returns the number of flows live at now (as Now gives it).
func (ct *Conntrack) Len(now time.Duration) int {
	at := max(int64(now), 1)
	n := 0
	for i := range ct.shards {
		sh := &ct.shards[i]
		sh.mu.Lock()
		for b := range sh.buckets {
			for w := range sh.buckets[b] {
				if e := &sh.buckets[b][w]; e.last != 0 && !e.expired(at) {
					n++
				}
			}
		}
		sh.mu.Unlock()
	}
	return n
}

// keyOf returns the canonical key of f and whether f's source is the
// key's a side.
func keyOf(f *Flow) (k ctKey, srcIsA bool) {
	sh, sl := addrBits(f.Src)
	dh, dl := addrBits(f.Dst)
	k.proto, k.v6 = f.Proto, f.Src.Is6()
	srcIsA = sh < dh || sh == dh && (sl < dl || sl == dl && f.SPort <= f.DPort)
	if srcIsA {
		k.aHi, k.aLo, k.aPort, k.bHi, k.bLo, k.bPort = sh, sl, f.SPort, dh, dl, f.DPort
	} else {
		k.aHi, k.aLo, k.aPort, k.bHi, k.bLo, k.bPort = dh, dl, f.DPort, sh, sl, f.SPort
	}
	return k, srcIsA
}

// hash mixes a key into 64 bits (a few multiply-xorshift rounds: the
// table is not keyed, so a client could aim flows at one bucket; that
// costs it only evictions among its own bucket's flows).
func (k *ctKey) hash() uint64 {
	h := k.aHi ^ k.bHi*0x9e3779b97f4a7c15
	h = (h ^ k.aLo) * 0xbf58476d1ce4e5b9
	h = (h ^ k.bLo) * 0x94d049bb133111eb
	h ^= uint64(k.aPort)<<32 | uint64(k.bPort)<<16 | uint64(k.proto)
	h = (h ^ h>>31) * 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// bucketOf returns the shard and bucket of a key hashed to h.
func (ct *Conntrack) bucketOf(h uint64) (int, int) {
	return int(h & (ctShards - 1)), int((h >> 6) % uint64(ct.buckets))
}

// timeout returns how long e lives after its last packet.
func (e *ctEntry) timeout() time.Duration {
	switch e.key.proto {
	case 6:
		if e.replied {
			return TCPEstablishedTimeout
		}
		return TCPOpeningTimeout
	case 1, 58:
		return ICMPTimeout
	}
	return UDPTimeout
}

// expired reports whether e has timed out at at.
func (e *ctEntry) expired(at int64) bool { return at-e.last > int64(e.timeout()) }

// lookup finds f's flow, live at at. On a hit it refreshes the flow and
// reports whether f goes the way of the flow's first packet (forward) and
// whether gen is not the generation that allowed it (stale).
func (ct *Conntrack) lookup(f *Flow, at int64, gen uint32) (ref ctRef, hit, forward, stale bool) {
	k, srcIsA := keyOf(f)
	h := k.hash()
	s, b := ct.bucketOf(h)
	sh := &ct.shards[s]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	bucket := &sh.buckets[b]
	for w := range bucket {
		e := &bucket[w]
		if e.tag != h || e.last == 0 || e.key != k {
			continue
		}
		if e.expired(at) {
			e.last = 0
			return ctRef{}, false, false, false
		}
		e.last = at
		forward = e.origA == srcIsA
		if !forward {
			e.replied = true
		}
		return ctRef{s, b, w}, true, forward, e.gen != gen
	}
	return ctRef{}, false, false, false
}

// revalidated records the verdict of a newer policy on a stale flow: kept
// under gen, or forgotten.
func (ct *Conntrack) revalidated(ref ctRef, f *Flow, gen uint32, keep bool) {
	k, _ := keyOf(f)
	sh := &ct.shards[ref.shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := &sh.buckets[ref.bucket][ref.way]
	if e.last == 0 || e.key != k {
		return // replaced meanwhile
	}
	if keep {
		e.gen = gen
	} else {
		e.last = 0
	}
}

// add records f as a new flow allowed under gen, evicting the flow of its
// bucket seen least recently when all are live.
func (ct *Conntrack) add(f *Flow, at int64, gen uint32) {
	k, srcIsA := keyOf(f)
	h := k.hash()
	s, b := ct.bucketOf(h)
	sh := &ct.shards[s]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	bucket := &sh.buckets[b]
	victim := -1
	for w := range bucket {
		e := &bucket[w]
		if e.last == 0 || e.expired(at) || e.key == k {
			victim = w
			break
		}
		if victim < 0 || e.last < bucket[victim].last {
			victim = w
		}
	}
	if e := &bucket[victim]; e.last != 0 && !e.expired(at) && e.key != k {
		ct.evicted.Add(1)
	}
	bucket[victim] = ctEntry{tag: h, key: k, last: at, gen: gen, origA: srcIsA}
}
