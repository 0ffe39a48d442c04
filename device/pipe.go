package device

import (
	"fmt"
	"io"
	"sync"
)

// pipeMaxBatch caps how many packets one Read of a pipe end returns.
const pipeMaxBatch = 32

// NewPipe returns two connected in-memory devices: what is written to peer is
// read from dev, and what is written to dev is read from peer. Both report
// kind and name. Each direction holds at most queue packets (queue < 1 counts
// as 1); Write blocks while the queue is full. Packets are copied in and out,
// so callers may reuse their buffers at once. Closing either end closes
// both: pending and later Reads and Writes on either end return an error
// wrapping ErrClosed, and queued packets are discarded.
//
// Steady-state Reads and Writes do not allocate: each direction keeps queue
// buffers that grow to the largest packet seen.
func NewPipe(kind Kind, name string, queue int) (dev, peer Device) {
	queue = max(queue, 1)
	sh := &pipeShared{done: make(chan struct{})}
	ab, ba := newPipeQueue(queue), newPipeQueue(queue)
	batch := min(queue, pipeMaxBatch)
	dev = &pipeEnd{kind: kind, name: name, batch: batch, in: ba, out: ab, sh: sh}
	peer = &pipeEnd{kind: kind, name: name, batch: batch, in: ab, out: ba, sh: sh}
	return dev, peer
}

// pipeShared is the state both ends of a pipe share.
type pipeShared struct {
	once sync.Once
	done chan struct{} // closed by Close of either end
}

// pipeQueue carries packets in one direction. It owns exactly cap(free)
// buffers, each either in free, in full or held by one Read or Write call,
// so a send on full or free never blocks.
type pipeQueue struct {
	full chan []byte // packets written, in order
	free chan []byte // empty buffers for the writer
}

func newPipeQueue(n int) *pipeQueue {
	q := &pipeQueue{full: make(chan []byte, n), free: make(chan []byte, n)}
	for range n {
		q.free <- nil
	}
	return q
}

// pipeEnd is one end of a pipe made by NewPipe.
type pipeEnd struct {
	kind  Kind
	name  string
	batch int
	in    *pipeQueue // packets this end reads
	out   *pipeQueue // packets this end writes
	sh    *pipeShared

	readMu  sync.Mutex // serializes Reads; guards pending
	pending error      // returned by the next Read (a dropped packet)
}

func (p *pipeEnd) closedErr(op string) error {
	return fmt.Errorf("%s %s: %w", op, p.name, ErrClosed)
}

func (p *pipeEnd) isClosed() bool {
	select {
	case <-p.sh.done:
		return true
	default:
		return false
	}
}

// Read implements Device. A packet longer than the room in its buffer
// (len(bufs[i])-offset) is dropped; Read returns the packets before it, and
// that Read, or the next one if some packets came before it, returns an error
// wrapping io.ErrShortBuffer.
func (p *pipeEnd) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	limit := min(len(bufs), len(sizes), p.batch)
	if limit == 0 {
		return 0, nil
	}
	p.readMu.Lock()
	defer p.readMu.Unlock()
	if p.isClosed() {
		return 0, p.closedErr("read")
	}
	if err := p.pending; err != nil {
		p.pending = nil
		return 0, err
	}
	var pkt []byte
	select {
	case pkt = <-p.in.full:
	case <-p.sh.done:
		return 0, p.closedErr("read")
	}
	n := 0
	for {
		dst := bufs[n][offset:]
		if len(pkt) > len(dst) {
			err := fmt.Errorf("read %s: packet of %d bytes does not fit in %d bytes: %w", p.name, len(pkt), len(dst), io.ErrShortBuffer)
			p.in.free <- pkt
			if n == 0 {
				return 0, err
			}
			p.pending = err
			return n, nil
		}
		sizes[n] = copy(dst, pkt)
		p.in.free <- pkt
		n++
		if n == limit {
			return n, nil
		}
		select {
		case pkt = <-p.in.full:
		default:
			return n, nil
		}
	}
}

// Write implements Device. It blocks while the queue toward the other end
// is full, until there is room or the pipe is closed.
func (p *pipeEnd) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		if p.isClosed() {
			return i, p.closedErr("write")
		}
		var buf []byte
		select {
		case buf = <-p.out.free:
		case <-p.sh.done:
			return i, p.closedErr("write")
		}
		p.out.full <- append(buf[:0], b[offset:]...)
	}
	return len(bufs), nil
}

// Name implements Device.
func (p *pipeEnd) Name() string { return p.name }

// Kind implements Device.
func (p *pipeEnd) Kind() Kind { return p.kind }

// BatchSize implements Device: the smaller of the queue length and 32.
func (p *pipeEnd) BatchSize() int { return p.batch }

// Close implements Device: it closes both ends. Closing again is a no-op.
func (p *pipeEnd) Close() error {
	p.sh.once.Do(func() { close(p.sh.done) })
	return nil
}
