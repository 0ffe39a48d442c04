package quictun

import (
	"sync"
	"time"
)

// A session's queues (datagrams received, waiting for delivery; packets
// waiting to be sent) must absorb a burst of thousands, yet most sessions
// never hold more than a few: a channel of the burst's length costs its
// whole buffer for every session from the start (4096 datagrams inbound:
// 96 KiB of slice headers before any traffic; a server of 10,000 clients
// would hold a gigabyte of empty slots). So a queue is a ring that starts
// small, doubles up to its bound when a burst needs it, and goes back to
// its start size once it has been empty for a while after the burst. The
// bound counts items, and every item is a buffer of one fixed size (a
// pooled packet or datagram buffer), so it bounds the bytes a client can
// pin as well.

// Queue sizes.
const (
	// queueStart is a queue's length until a burst needs more.
	queueStart = 32
	// queueShrinkAfter is how long a grown queue must stay empty before it
	// goes back to queueStart: bursts come in trains, and a queue that
	// shrank at every gap would allocate again at every burst.
	queueShrinkAfter = 2 * time.Second
)

// queue is a bounded FIFO of T for one consumer and any number of
// producers. The zero value is not usable; use newQueue.
type queue[T any] struct {
	mu       sync.Mutex
	ring     []T // len is a power of two; guarded by mu
	head, n  int // guarded by mu
	start    int // the ring's length until a burst, and after it
	max      int
	closed   bool      // guarded by mu
	grownAt  time.Time // when the ring last grew; guarded by mu
	notEmpty chan struct{}
}

// newQueue returns an empty queue that holds at most max items (rounded up
// to a power of two).
func newQueue[T any](max int) *queue[T] {
	size := 1
	for size < max {
		size *= 2
	}
	start := min(queueStart, size)
	return &queue[T]{ring: make([]T, start), start: start, max: size, notEmpty: make(chan struct{}, 1)}
}

// push appends v; it returns false, keeping nothing, when the queue is
// full or closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.closed || q.n == q.max {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)&(len(q.ring)-1)] = v
	q.n++
	wake := q.n == 1
	q.mu.Unlock()
	if wake {
		// Only the push into an empty queue wakes the consumer: it waits
		// only after finding the queue empty, and takes everything there
		// is when it wakes.
		select {
		case q.notEmpty <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	return true
}

// grow doubles the ring, keeping the items in order. Called with mu held.
func (q *queue[T]) grow() {
	ring := make([]T, 2*len(q.ring))
	k := copy(ring, q.ring[q.head:])
	copy(ring[k:], q.ring[:q.head])
	q.ring, q.head = ring, 0
	q.grownAt = time.Now()
}

// take moves up to cap(dst)-len(dst) items into dst and returns it. It
// waits until there is at least one item, or done is closed, or the queue
// is closed and empty; then it returns dst unchanged and false. done may
// be nil.
func (q *queue[T]) take(dst []T, done <-chan struct{}) ([]T, bool) {
	for {
		q.mu.Lock()
		if q.n > 0 {
			var zero T
			for q.n > 0 && len(dst) < cap(dst) {
				dst = append(dst, q.ring[q.head])
				q.ring[q.head] = zero // the buffer belongs to the consumer now
				q.head = (q.head + 1) & (len(q.ring) - 1)
				q.n--
			}
			q.mu.Unlock()
			return dst, true
		}
		if q.closed {
			q.mu.Unlock()
			return dst, false
		}
		if len(q.ring) > q.start && time.Since(q.grownAt) > queueShrinkAfter {
			q.ring, q.head = make([]T, q.start), 0
		}
		q.mu.Unlock()
		select {
		case <-q.notEmpty:
		case <-done:
			return dst, false
		}
	}
}

// close makes further pushes fail; take returns what is queued, then
// false.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.notEmpty <- struct{}{}:
	default:
	}
}

// drainAll removes every item (after the consumer stopped) and passes each
// to f.
func (q *queue[T]) drainAll(f func(T)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	for ; q.n > 0; q.n-- {
		f(q.ring[q.head])
		q.ring[q.head] = zero
		q.head = (q.head + 1) & (len(q.ring) - 1)
	}
}

// len returns how many items are queued.
func (q *queue[T]) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}
