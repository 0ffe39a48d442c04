package quictun

import (
	"bytes"
	"fmt"
	"log/slog"
	"testing"

	"github.com/quictun/quictun/device"
)

// recordDevice records what is written to it; it refuses packets that
// start with "bad".
type recordDevice struct {
	discardDevice
	batch   int
	discard bool // count only, record nothing (for the allocation test)
	writes  [][][]byte
	packets int
}

func (d *recordDevice) BatchSize() int { return d.batch }
func (d *recordDevice) Write(bufs [][]byte, offset int) (int, error) {
	if d.discard {
		d.packets += len(bufs)
		return len(bufs), nil
	}
	var got [][]byte
	for i, b := range bufs {
		if bytes.HasPrefix(b[offset:], []byte("bad")) {
			d.writes = append(d.writes, got)
			return i, fmt.Errorf("refused")
		}
		got = append(got, bytes.Clone(b[offset:]))
	}
	d.writes = append(d.writes, got)
	return len(bufs), nil
}

func TestDevBatch(t *testing.T) {
	dev := &recordDevice{discardDevice: *newDiscard(device.TUN), batch: 4}
	var c Counters
	b := newDevBatch(dev, 1500, slog.New(slog.DiscardHandler), newRateLimiter(1, 1))
	if b.size != device.OffloadBufSize {
		t.Errorf("TUN batch buffers: %d bytes, want the offload size %d", b.size, device.OffloadBufSize)
	}
	q := newQueue[[]byte](16)
	for i := 0; i < 6; i++ {
		q.push([]byte(fmt.Sprintf("pkt%d", i)))
	}
	q.push([]byte("bad!"))
	q.push([]byte("after"))
	q.close()
	b.drain(q, func(dg []byte) { b.add(dg, &c) }, &c)
	// The flush after a full batch happens before the next add; the bad
	// packet ends the second write, and the packet after it is written by
	// the next call.
	want := [][]string{{"pkt0", "pkt1", "pkt2", "pkt3"}, {"pkt4", "pkt5"}, {"after"}}
	var got [][]string
	for _, w := range dev.writes {
		var s []string
		for _, p := range w {
			s = append(s, string(p))
		}
		got = append(got, s)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("writes = %v, want %v", got, want)
	}
	if c.Dropped(DropDeviceError) != 1 {
		t.Errorf("DropDeviceError = %d, want 1 (the refused packet)", c.Dropped(DropDeviceError))
	}
	if len(b.owned) != 0 || len(b.bufs) != 0 {
		t.Errorf("buffers still held after drain: %d owned, %d pending", len(b.owned), len(b.bufs))
	}
	b.add(make([]byte, device.OffloadBufSize), &c)
	if c.Dropped(DropOversize) != 1 || c.Dropped(DropDeviceError) != 1 {
		t.Errorf("an oversized packet: oversize %d, device_error %d; want 1, 1", c.Dropped(DropOversize), c.Dropped(DropDeviceError))
	}
}

func TestDevBatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items on purpose)")
	}
	for _, kind := range []device.Kind{device.TUN, device.TAP} {
		dev := &recordDevice{discardDevice: *newDiscard(kind), batch: 8, discard: true}
		var c Counters
		b := newDevBatch(dev, maxFrameLen, slog.New(slog.DiscardHandler), newRateLimiter(1, 1))
		pkt := make([]byte, 1400)
		for i := 0; i < 8; i++ { // warm the pool
			b.add(pkt, &c)
		}
		b.flush(&c)
		if n := testing.AllocsPerRun(100, func() {
			for i := 0; i < 8; i++ {
				b.add(pkt, &c)
			}
			b.flush(&c)
		}); n != 0 {
			t.Errorf("%v: %v allocations per batch of 8, want 0", kind, n)
		}
		if dev.packets != 8+8*101 {
			t.Errorf("%v: device got %d packets, want %d", kind, dev.packets, 8+8*101)
		}
	}
}

// coalescingTAP is a TAP that says its Write coalesces (device.Coalescer).
type coalescingTAP struct {
	recordDevice
	coalesces bool
}

func (d *coalescingTAP) Coalesces() bool { return d.coalesces }

func TestDevBatchTAPOffloadBufs(t *testing.T) {
	for _, co := range []bool{false, true} {
		dev := &coalescingTAP{recordDevice: recordDevice{discardDevice: *newDiscard(device.TAP), batch: 4}, coalesces: co}
		b := newDevBatch(dev, maxFrameLen, slog.New(slog.DiscardHandler), newRateLimiter(1, 1))
		if got := b.size == device.OffloadBufSize; got != co {
			t.Errorf("TAP that coalesces=%v: batch buffers of %d bytes", co, b.size)
		}
	}
	plain := &recordDevice{discardDevice: *newDiscard(device.TAP), batch: 4}
	if b := newDevBatch(plain, maxFrameLen, slog.New(slog.DiscardHandler), newRateLimiter(1, 1)); b.size == device.OffloadBufSize {
		t.Errorf("a TAP that is no Coalescer got offload buffers")
	}
}
