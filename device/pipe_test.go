package device

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// newBufs returns n buffers of size bytes each and a sizes slice.
func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// seqPacket returns a packet of length n whose first 4 bytes hold seq and
// whose rest is filled with the low byte of seq.
func seqPacket(seq uint32, n int) []byte {
	p := bytes.Repeat([]byte{byte(seq)}, max(n, 4))
	binary.BigEndian.PutUint32(p, seq)
	return p
}

// within runs f and fails the test if it does not return within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func TestPipeIdentity(t *testing.T) {
	dev, peer := NewPipe(TAP, "qtp0", 4)
	defer dev.Close()
	for _, d := range []Device{dev, peer} {
		if d.Name() != "qtp0" || d.Kind() != TAP || d.BatchSize() != 4 {
			t.Errorf("got name %q kind %v batch %d, want qtp0 tap 4", d.Name(), d.Kind(), d.BatchSize())
		}
	}
	big, _ := NewPipe(TUN, "x", 1000)
	if got := big.BatchSize(); got != pipeMaxBatch {
		t.Errorf("BatchSize with queue 1000 = %d, want %d", got, pipeMaxBatch)
	}
	tiny, _ := NewPipe(TUN, "x", 0)
	if got := tiny.BatchSize(); got != 1 {
		t.Errorf("BatchSize with queue 0 = %d, want 1", got)
	}
}

func TestPipeOrderingBothWays(t *testing.T) {
	const count = 100
	dev, peer := NewPipe(TUN, "qt0", count)
	defer dev.Close()
	for _, dir := range []struct {
		name     string
		from, to Device
	}{
		{"peer to dev", peer, dev},
		{"dev to peer", dev, peer},
	} {
		t.Run(dir.name, func(t *testing.T) {
			for i := range count {
				if n, err := dir.from.Write([][]byte{seqPacket(uint32(i), 20+i)}, 0); n != 1 || err != nil {
					t.Fatalf("Write %d = %d, %v", i, n, err)
				}
			}
			bufs, sizes := newBufs(7, 200)
			next := 0
			for reads := 0; next < count && reads < 2*count; reads++ {
				n, err := dir.to.Read(bufs, sizes, 0)
				if err != nil || n < 1 {
					t.Fatalf("Read = %d, %v", n, err)
				}
				for i := range n {
					want := seqPacket(uint32(next), 20+next)
					if got := bufs[i][:sizes[i]]; !bytes.Equal(got, want) {
						t.Fatalf("packet %d = %x, want %x", next, got, want)
					}
					next++
				}
			}
			if next != count {
				t.Fatalf("read %d packets, want %d", next, count)
			}
		})
	}
}

func TestPipeBatching(t *testing.T) {
	tests := []struct {
		name    string
		queue   int
		written int
		bufs    int
		want    []int // packets returned by successive Reads
	}{
		{name: "all ready in one read", queue: 8, written: 5, bufs: 8, want: []int{5}},
		{name: "limited by bufs", queue: 8, written: 5, bufs: 2, want: []int{2, 2, 1}},
		{name: "limited by batch size", queue: 64, written: 40, bufs: 40, want: []int{32, 8}},
		{name: "one buffer", queue: 4, written: 3, bufs: 1, want: []int{1, 1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, peer := NewPipe(TUN, "qt0", tt.queue)
			defer dev.Close()
			pkts := make([][]byte, tt.written)
			for i := range pkts {
				pkts[i] = seqPacket(uint32(i), 10)
			}
			if n, err := peer.Write(pkts, 0); n != tt.written || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			bufs, sizes := newBufs(tt.bufs, 64)
			seq := 0
			for _, want := range tt.want {
				n, err := dev.Read(bufs, sizes, 0)
				if err != nil || n != want {
					t.Fatalf("Read = %d, %v; want %d packets", n, err, want)
				}
				for i := range n {
					if got := binary.BigEndian.Uint32(bufs[i]); got != uint32(seq) {
						t.Fatalf("packet seq %d, want %d", got, seq)
					}
					seq++
				}
			}
		})
	}
}

func TestPipeOffsets(t *testing.T) {
	const off = 16
	dev, peer := NewPipe(TUN, "qt0", 4)
	defer dev.Close()

	// Write sends only b[off:].
	src := make([]byte, off+5)
	copy(src, bytes.Repeat([]byte{0xee}, off))
	copy(src[off:], "hello")
	if _, err := peer.Write([][]byte{src, src}, off); err != nil {
		t.Fatal(err)
	}

	// Read fills only bufs[i][off:] and leaves the headroom alone.
	bufs, sizes := newBufs(2, off+10)
	for _, b := range bufs {
		for i := range b {
			b[i] = 0xaa
		}
	}
	n, err := dev.Read(bufs, sizes, off)
	if err != nil || n != 2 {
		t.Fatalf("Read = %d, %v", n, err)
	}
	for i := range n {
		if sizes[i] != 5 || string(bufs[i][off:off+sizes[i]]) != "hello" {
			t.Errorf("packet %d = %q (size %d), want hello", i, bufs[i][off:off+sizes[i]], sizes[i])
		}
		if !bytes.Equal(bufs[i][:off], bytes.Repeat([]byte{0xaa}, off)) {
			t.Errorf("headroom of packet %d changed: %x", i, bufs[i][:off])
		}
	}
}

func TestPipeCopies(t *testing.T) {
	dev, peer := NewPipe(TUN, "qt0", 4)
	defer dev.Close()

	// The caller's buffer may change right after Write.
	b := []byte("first")
	if _, err := peer.Write([][]byte{b}, 0); err != nil {
		t.Fatal(err)
	}
	copy(b, "XXXXX")

	bufs, sizes := newBufs(1, 32)
	if _, err := dev.Read(bufs, sizes, 0); err != nil {
		t.Fatal(err)
	}
	if got := string(bufs[0][:sizes[0]]); got != "first" {
		t.Fatalf("read %q, want first", got)
	}

	// Reusing the pipe's internal buffer does not change what was read.
	if _, err := peer.Write([][]byte{[]byte("second")}, 0); err != nil {
		t.Fatal(err)
	}
	other, osizes := newBufs(1, 32)
	if _, err := dev.Read(other, osizes, 0); err != nil {
		t.Fatal(err)
	}
	if got := string(bufs[0][:sizes[0]]); got != "first" {
		t.Errorf("earlier read buffer changed to %q", got)
	}
	if got := string(other[0][:osizes[0]]); got != "second" {
		t.Errorf("read %q, want second", got)
	}
}

func TestPipeShortBuffer(t *testing.T) {
	t.Run("first packet too big", func(t *testing.T) {
		dev, peer := NewPipe(TUN, "qt0", 4)
		defer dev.Close()
		if _, err := peer.Write([][]byte{make([]byte, 100), []byte("ok")}, 0); err != nil {
			t.Fatal(err)
		}
		bufs, sizes := newBufs(4, 50)
		n, err := dev.Read(bufs, sizes, 0)
		if n != 0 || !errors.Is(err, io.ErrShortBuffer) {
			t.Fatalf("Read = %d, %v; want 0, ErrShortBuffer", n, err)
		}
		n, err = dev.Read(bufs, sizes, 0)
		if n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "ok" {
			t.Fatalf("next Read = %d, %v; want the packet after the dropped one", n, err)
		}
	})
	t.Run("later packet too big", func(t *testing.T) {
		dev, peer := NewPipe(TUN, "qt0", 4)
		defer dev.Close()
		if _, err := peer.Write([][]byte{[]byte("a"), make([]byte, 100), []byte("b")}, 0); err != nil {
			t.Fatal(err)
		}
		bufs, sizes := newBufs(4, 50)
		n, err := dev.Read(bufs, sizes, 0)
		if n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "a" {
			t.Fatalf("Read = %d, %v; want the packet before the big one", n, err)
		}
		n, err = dev.Read(bufs, sizes, 0)
		if n != 0 || !errors.Is(err, io.ErrShortBuffer) {
			t.Fatalf("second Read = %d, %v; want 0, ErrShortBuffer", n, err)
		}
		n, err = dev.Read(bufs, sizes, 0)
		if n != 1 || err != nil || string(bufs[0][:sizes[0]]) != "b" {
			t.Fatalf("third Read = %d, %v; want b", n, err)
		}
	})
}

func TestPipeClose(t *testing.T) {
	tests := []struct {
		name      string
		closeDev  bool // close dev rather than peer
		blockRead bool // block in Read rather than Write
	}{
		{name: "close peer unblocks read on dev", blockRead: true},
		{name: "close dev unblocks its own read", closeDev: true, blockRead: true},
		{name: "close peer unblocks write on dev"},
		{name: "close dev unblocks its own write", closeDev: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev, peer := NewPipe(TUN, "qt0", 2)
			closer := peer
			if tt.closeDev {
				closer = dev
			}
			bufs, sizes := newBufs(2, 64)
			if !tt.blockRead {
				// Fill the queue toward peer so the next Write blocks.
				if n, err := dev.Write([][]byte{{1}, {2}}, 0); n != 2 || err != nil {
					t.Fatalf("filling Write = %d, %v", n, err)
				}
			}
			errc := make(chan error, 1)
			go func() {
				var err error
				if tt.blockRead {
					_, err = dev.Read(bufs, sizes, 0)
				} else {
					_, err = dev.Write([][]byte{{3}}, 0)
				}
				errc <- err
			}()
			select {
			case err := <-errc:
				t.Fatalf("call returned before Close: %v", err)
			case <-time.After(50 * time.Millisecond):
			}
			if err := closer.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, ErrClosed) {
					t.Fatalf("blocked call returned %v, want ErrClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Close did not unblock the pending call")
			}
			// Both ends are closed now, for both directions.
			for _, d := range []Device{dev, peer} {
				if _, err := d.Read(bufs, sizes, 0); !errors.Is(err, ErrClosed) {
					t.Errorf("Read after Close = %v, want ErrClosed", err)
				}
				if n, err := d.Write([][]byte{{4}}, 0); n != 0 || !errors.Is(err, ErrClosed) {
					t.Errorf("Write after Close = %d, %v; want 0, ErrClosed", n, err)
				}
				if err := d.Close(); err != nil {
					t.Errorf("second Close = %v", err)
				}
			}
		})
	}
}

func TestPipeWriteBlocksWhenFull(t *testing.T) {
	dev, peer := NewPipe(TUN, "qt0", 3)
	defer dev.Close()
	if n, err := peer.Write([][]byte{{1}, {2}, {3}}, 0); n != 3 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		peer.Write([][]byte{{4}}, 0)
	}()
	select {
	case <-wrote:
		t.Fatal("Write into a full queue did not block")
	case <-time.After(50 * time.Millisecond):
	}
	bufs, sizes := newBufs(1, 8)
	if n, err := dev.Read(bufs, sizes, 0); n != 1 || err != nil || bufs[0][0] != 1 {
		t.Fatalf("Read = %d, %v, %v", n, err, bufs[0][:sizes[0]])
	}
	within(t, 5*time.Second, "blocked Write after a Read made room", func() { <-wrote })
	for want := byte(2); want <= 4; want++ {
		if n, err := dev.Read(bufs, sizes, 0); n != 1 || err != nil || bufs[0][0] != want {
			t.Fatalf("Read = %d, %v, %v; want [%d]", n, err, bufs[0][:sizes[0]], want)
		}
	}
}

func TestPipeConcurrent(t *testing.T) {
	const writers, perWriter = 4, 500
	dev, peer := NewPipe(TUN, "qt0", 16)
	defer dev.Close()

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 8)
			for i := range perWriter {
				binary.BigEndian.PutUint32(b, uint32(w))
				binary.BigEndian.PutUint32(b[4:], uint32(i))
				if _, err := peer.Write([][]byte{b}, 0); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	// Traffic the other way at the same time.
	wg.Add(1)
	go func() {
		defer wg.Done()
		bufs, sizes := newBufs(8, 16)
		for got := 0; got < perWriter; {
			n, err := peer.Read(bufs, sizes, 0)
			if err != nil {
				t.Errorf("reverse read: %v", err)
				return
			}
			got += n
		}
	}()
	go func() {
		for range perWriter {
			if _, err := dev.Write([][]byte{{9}}, 0); err != nil {
				return
			}
		}
	}()

	next := make([]uint32, writers)
	bufs, sizes := newBufs(8, 16)
	deadline := time.Now().Add(20 * time.Second)
	for total := 0; total < writers*perWriter; {
		if time.Now().After(deadline) {
			t.Fatalf("read only %d of %d packets in time", total, writers*perWriter)
		}
		n, err := dev.Read(bufs, sizes, 0)
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			w := binary.BigEndian.Uint32(bufs[i])
			seq := binary.BigEndian.Uint32(bufs[i][4:])
			if sizes[i] != 8 || w >= writers || seq != next[w] {
				t.Fatalf("packet %x (size %d) out of order; writer next %v", bufs[i][:sizes[i]], sizes[i], next)
			}
			next[w]++
		}
		total += n
	}
	within(t, 10*time.Second, "writers", wg.Wait)
}

func TestPipeNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	dev, peer := NewPipe(TUN, "qt0", 8)
	defer dev.Close()
	out := [][]byte{make([]byte, 1400), make([]byte, 1400)}
	bufs, sizes := newBufs(2, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := peer.Write(out, 0); err != nil {
			t.Fatal(err)
		}
		if n, err := dev.Read(bufs, sizes, 0); n != 2 || err != nil {
			t.Fatalf("Read = %d, %v", n, err)
		}
	})
	if allocs != 0 {
		t.Errorf("Write+Read allocates %.1f times per run, want 0", allocs)
	}
}

func BenchmarkPipe(b *testing.B) {
	dev, peer := NewPipe(TUN, "qt0", 64)
	defer dev.Close()
	pkt := make([]byte, 1400)
	out := [][]byte{pkt}
	bufs, sizes := newBufs(1, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, err := peer.Write(out, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := dev.Read(bufs, sizes, 0); err != nil {
			b.Fatal(err)
		}
	}
}
