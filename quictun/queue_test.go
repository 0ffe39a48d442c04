package quictun

import (
	"sync"
	"testing"
	"time"
)

// pop removes the oldest item without waiting; the zero T when empty.
func (q *queue[T]) pop() T {
	var zero T
	got, ok := q.take(make([]T, 0, 1), closedChan)
	if !ok || len(got) == 0 {
		return zero
	}
	return got[0]
}

// closedChan is a closed channel: a take given it does not wait.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func TestQueueOrderGrowBound(t *testing.T) {
	q := newQueue[int](100) // rounded up to 128
	if len(q.ring) != queueStart || q.max != 128 {
		t.Fatalf("new queue: ring %d, max %d; want %d, 128", len(q.ring), q.max, queueStart)
	}
	// Wrap the ring before it grows, so growing must keep the order.
	for i := range 20 {
		q.push(i)
	}
	for i := range 20 {
		if got := q.pop(); got != i {
			t.Fatalf("pop %d = %d", i, got)
		}
	}
	n := 0
	for q.push(1000 + n) {
		n++
	}
	if n != 128 {
		t.Errorf("took %d items, want its bound 128", n)
	}
	if len(q.ring) != 128 {
		t.Errorf("ring grew to %d, want 128", len(q.ring))
	}
	got, ok := q.take(make([]int, 0, 200), nil)
	if !ok || len(got) != 128 {
		t.Fatalf("take = %d items, %v; want 128", len(got), ok)
	}
	for i, v := range got {
		if v != 1000+i {
			t.Fatalf("item %d = %d after growing, want %d", i, v, 1000+i)
		}
	}
}

func TestQueueShrinksAfterBurst(t *testing.T) {
	q := newQueue[int](1024)
	for i := range 500 {
		q.push(i)
	}
	q.take(make([]int, 0, 500), nil)
	q.pop() // empty, but the burst was just now: keeps its size
	if len(q.ring) != 512 {
		t.Fatalf("ring %d right after the burst, want 512", len(q.ring))
	}
	q.grownAt = time.Now().Add(-queueShrinkAfter - time.Second)
	q.pop()
	if len(q.ring) != queueStart {
		t.Errorf("ring %d after the burst, want %d", len(q.ring), queueStart)
	}
	q.push(7)
	if got := q.pop(); got != 7 {
		t.Errorf("after shrinking: pop = %d, want 7", got)
	}
}

func TestQueueCloseAndWake(t *testing.T) {
	q := newQueue[int](8)
	done := make(chan struct{})
	var got []int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]int, 0, 4)
		for {
			var ok bool
			buf, ok = q.take(buf[:0], done)
			if !ok {
				return
			}
			got = append(got, buf...)
		}
	}()
	for i := range 6 {
		for !q.push(i) { // full: the consumer catches up
			time.Sleep(time.Millisecond)
		}
	}
	q.close()
	wg.Wait()
	if len(got) != 6 {
		t.Fatalf("consumer got %v, want 0..5", got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("consumer got %v, want 0..5 in order", got)
		}
	}
	if q.push(9) {
		t.Error("push after close succeeded")
	}
	// done ends a take on an empty open queue.
	q2 := newQueue[int](8)
	close(done)
	if _, ok := q2.take(make([]int, 0, 1), done); ok {
		t.Error("take with done closed returned ok")
	}
}

// TestQueueNoAlloc: steady pushing and taking, within the ring's size,
// allocates nothing.
func TestQueueNoAlloc(t *testing.T) {
	q := newQueue[*packetBuf](1024)
	pb := &packetBuf{}
	buf := make([]*packetBuf, 0, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		for range 10 {
			q.push(pb)
		}
		buf, _ = q.take(buf[:0], nil)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per push-and-take round, want 0", allocs)
	}
}

// BenchmarkQueue and BenchmarkChan compare the queue with the channel it
// replaced, one producer and one consumer goroutine.
func BenchmarkQueue(b *testing.B) {
	q := newQueue[*packetBuf](1024)
	pb := &packetBuf{}
	done := make(chan struct{})
	go func() {
		buf := make([]*packetBuf, 0, 16)
		for {
			var ok bool
			if buf, ok = q.take(buf[:0], done); !ok {
				return
			}
		}
	}()
	for b.Loop() {
		for !q.push(pb) {
		}
	}
	close(done)
}

func BenchmarkChan(b *testing.B) {
	q := make(chan *packetBuf, 1024)
	pb := &packetBuf{}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-q:
			case <-done:
				return
			}
		}
	}()
	for b.Loop() {
		q <- pb
	}
	close(done)
}

// BenchmarkQueueRound and BenchmarkChanRound: the cost of the operations
// alone, without goroutine hand-offs: ten pushes, then taking them.
func BenchmarkQueueRound(b *testing.B) {
	q := newQueue[*packetBuf](1024)
	pb := &packetBuf{}
	buf := make([]*packetBuf, 0, 16)
	for b.Loop() {
		for range 10 {
			q.push(pb)
		}
		buf, _ = q.take(buf[:0], nil)
	}
}

func BenchmarkChanRound(b *testing.B) {
	q := make(chan *packetBuf, 1024)
	pb := &packetBuf{}
	for b.Loop() {
		for range 10 {
			select {
			case q <- pb:
			default:
			}
		}
	more:
		for {
			select {
			case <-q:
			default:
				break more
			}
		}
	}
}
