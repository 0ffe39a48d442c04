package quictun

import (
	"log/slog"
	"sync"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"

	"github.com/quictun/quictun/device"
)

// offloadBufs are the 64 KiB buffers an offloading TUN or TAP coalesces
// segments into on Write. They are shared by every inbound loop of the process and
// held only from add to flush, so a hub with many clients does not keep a
// batch of them per session.
var offloadBufs = sync.Pool{New: func() any {
	b := make([]byte, device.OffloadBufSize)
	return &b
}}

// devBatch collects packets bound for a device so that an inbound loop
// writes them with one Write call: on an offloading TUN (or TAP) the device
// then coalesces TCP/UDP (TAP: TCP) segments (GRO) into super-packets, one
// system call for many packets. Each packet is copied into a pooled buffer, at offset
// headroom, with spare capacity for the coalescing. A devBatch belongs to
// one goroutine.
type devBatch struct {
	dev   device.Device
	bufs  [][]byte   // the pending packets: bufs[i][headroom:]
	owned []*[]byte  // the buffers behind bufs, returned to pool by flush
	pool  *sync.Pool // offloadBufs, or a pool of this batch's own size
	size  int        // length of each pooled buffer
	log   *slog.Logger
	logRL *rateLimiter
}

// newDevBatch returns a batch of up to dev.BatchSize() packets of at most
// maxPacket bytes.
func newDevBatch(dev device.Device, maxPacket int, log *slog.Logger, logRL *rateLimiter) *devBatch {
	n := max(dev.BatchSize(), 1)
	b := &devBatch{dev: dev, bufs: make([][]byte, 0, n), owned: make([]*[]byte, 0, n),
		size: headroom + maxPacket, log: log, logRL: logRL}
	if n > 1 && b.size <= device.OffloadBufSize && device.Coalesces(dev) {
		b.pool, b.size = &offloadBufs, device.OffloadBufSize
	} else {
		size := b.size
		b.pool = &sync.Pool{New: func() any {
			buf := make([]byte, size)
			return &buf
		}}
	}
	return b
}

// full reports whether the batch must be flushed before add.
func (b *devBatch) full() bool { return len(b.bufs) == cap(b.bufs) }

// add copies pkt into the batch, flushing first when it is full. A packet
// larger than the buffers is dropped and counted.
func (b *devBatch) add(pkt []byte, c *Counters) {
	if headroom+len(pkt) > b.size {
		c.Drop(DropOversize)
		return
	}
	if b.full() {
		b.flush(c)
	}
	p := b.pool.Get().(*[]byte)
	b.owned = append(b.owned, p)
	buf := (*p)[:headroom+len(pkt)]
	copy(buf[headroom:], pkt)
	b.bufs = append(b.bufs, buf)
}

// flush writes the pending packets, counts what the device refused, and
// returns the buffers to the pool.
func (b *devBatch) flush(c *Counters) {
	if len(b.bufs) == 0 {
		return
	}
	// Write stops at a packet the kernel refuses (bufs[n]); the rest is
	// written with another call. An offloading TUN tries every packet and
	// then returns n == len(bufs) with the error.
	for pending := b.bufs; len(pending) > 0; {
		n, err := b.dev.Write(pending, headroom)
		if err == nil {
			break
		}
		c.Drop(DropDeviceError)
		if b.logRL.allow(time.Now()) {
			b.log.Warn("device write failed", "device", b.dev.Name(), "err", err)
		}
		if n >= len(pending) {
			break
		}
		pending = pending[n+1:]
	}
	clear(b.bufs) // the device may have swapped or grown the slices
	b.bufs = b.bufs[:0]
	for i, p := range b.owned {
		b.pool.Put(p)
		b.owned[i] = nil
	}
	b.owned = b.owned[:0]
}

// drainChunk is how many datagrams drain takes from its queue at a time.
const drainChunk = 64

// drain delivers datagrams from q, blocking for the first and then taking
// whatever else is queued; the batch is flushed when it is full (add does
// that) and whenever the queue has run empty. deliver decodes one datagram
// and adds what is for the device to b; it must not keep the datagram,
// which drain hands back to quic-go for reuse (quic.ReleaseDatagram,
// third_party/README.md). It returns when q is closed and empty.
func (b *devBatch) drain(q *queue[[]byte], deliver func([]byte), c *Counters) {
	chunk := make([][]byte, 0, drainChunk)
	for {
		var ok bool
		chunk, ok = q.take(chunk[:0], nil)
		if !ok {
			break
		}
		for i, dg := range chunk {
			deliver(dg)
			quic.ReleaseDatagram(dg)
			chunk[i] = nil
		}
		if len(chunk) < cap(chunk) { // took all there was
			b.flush(c)
		}
	}
	b.flush(c)
}
