package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fragBufs returns n datagram buffers of size bytes each.
func fragBufs(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
	}
	return out
}

// testPacket returns n bytes of recognisable content.
func testPacket(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31) ^ seed
	}
	return p
}

func TestSplitWireFormat(t *testing.T) {
	var f Fragmenter
	out := fragBufs(MaxFragments, 1400)

	// Fits: one PACKET datagram.
	pkt := testPacket(1399, 1)
	n, err := f.Split(pkt, 1400, out)
	if err != nil || n != 1 {
		t.Fatalf("split(1399, 1400) = %d, %v; want 1 datagram", n, err)
	}
	if len(out[0]) != 1400 || out[0][0] != TypePacket || !bytes.Equal(out[0][1:], pkt) {
		t.Errorf("PACKET datagram wrong: len %d header %#x", len(out[0]), out[0][0])
	}

	// One byte more: two even FRAGMENT datagrams, ids counting up.
	for wantID := range 3 {
		out = fragBufs(MaxFragments, 1400)
		pkt = testPacket(1400, 2)
		n, err = f.Split(pkt, 1400, out)
		if err != nil || n != 2 {
			t.Fatalf("split(1400, 1400) = %d, %v; want 2 datagrams", n, err)
		}
		for i, d := range out[:n] {
			if len(d) != FragmentHeaderLen+700 {
				t.Errorf("piece %d: len %d, want %d", i, len(d), FragmentHeaderLen+700)
			}
			if d[0] != TypeFragment || d[1] != 0 || int(d[2]) != wantID || int(d[3]) != i || d[4] != 2 {
				t.Errorf("piece %d header % x, want 01 00 %02x %02x 02", i, d[:5], wantID, i)
			}
			if !bytes.Equal(d[FragmentHeaderLen:], pkt[i*700:(i+1)*700]) {
				t.Errorf("piece %d content differs", i)
			}
		}
	}

	// Uneven: all but the last the same length, the last not longer.
	out = fragBufs(MaxFragments, 1200)
	pkt = testPacket(3001, 3)
	n, err = f.Split(pkt, 1200, out)
	if err != nil || n != 3 {
		t.Fatalf("split(3001, 1200) = %d, %v; want 3", n, err)
	}
	if len(out[0]) != len(out[1]) || len(out[2]) > len(out[0]) || len(out[0])-FragmentHeaderLen != 1001 || len(out[2])-FragmentHeaderLen != 999 {
		t.Errorf("piece lengths %d %d %d", len(out[0]), len(out[1]), len(out[2]))
	}
}

func TestSplitErrors(t *testing.T) {
	var f Fragmenter
	tests := []struct {
		name    string
		pkt     int
		maxDg   int
		bufs    int
		bufSize int
		want    error
	}{
		{"empty packet", 0, 1400, 16, 1400, ErrEmptyPacket},
		{"datagram too small", 3, FragmentHeaderLen, 16, 1400, ErrDatagramTooSmall},
		{"too many fragments", 16*1195 + 1, 1200, 17, 1200, ErrTooManyFragments},
		{"exactly 16 fragments fit", 16 * 1195, 1200, 16, 1200, nil},
		{"too few buffers", 3000, 1200, 2, 1200, ErrFragmentBuffers},
		{"buffer too small", 3000, 1200, 3, 1000, ErrFragmentBuffers},
		{"no buffer", 10, 1200, 0, 1200, ErrFragmentBuffers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Split(testPacket(tt.pkt, 0), tt.maxDg, fragBufs(tt.bufs, tt.bufSize))
			if !errors.Is(err, tt.want) {
				t.Errorf("split error %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFragmentRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var f Fragmenter
	r := newCounted(0, 0)
	now := time.Now()
	var wantCompleted uint64
	sizes := []int{1, 2, 100, 1162, 1163, 1199, 1200, 1201, 1414, 1415, 1416, 1514, 1518, 2000, 2999, 4096, 9000, 16 * 1158}
	for range 200 {
		sizes = append(sizes, 1+rng.IntN(16*1158))
	}
	for _, size := range sizes {
		for _, maxDg := range []int{1163, 1200, 1243, 1300, 1415} {
			pkt := testPacket(size, byte(size))
			if size > 16*(maxDg-FragmentHeaderLen) {
				continue
			}
			out := fragBufs(MaxFragments, maxDg)
			n, err := f.Split(pkt, maxDg, out)
			if err != nil {
				t.Fatalf("split(%d, %d): %v", size, maxDg, err)
			}
			for _, d := range out[:n] {
				if len(d) > maxDg {
					t.Fatalf("split(%d, %d): datagram of %d bytes", size, maxDg, len(d))
				}
			}
			if n == 1 {
				if out[0][0]&TypeMask != TypePacket || !bytes.Equal(out[0][1:], pkt) {
					t.Fatalf("split(%d, %d): bad PACKET datagram", size, maxDg)
				}
				continue
			}
			rng.Shuffle(n, func(i, j int) { out[i], out[j] = out[j], out[i] })
			for i, d := range out[:n] {
				got, err := r.Add(d, now)
				if err != nil {
					t.Fatalf("size %d maxDg %d: add: %v", size, maxDg, err)
				}
				if (got != nil) != (i == n-1) {
					t.Fatalf("size %d maxDg %d: piece %d of %d returned %d bytes", size, maxDg, i, n, len(got))
				}
				if got != nil && !bytes.Equal(got, pkt) {
					t.Fatalf("size %d maxDg %d: reassembled packet differs", size, maxDg)
				}
			}
			wantCompleted++
		}
	}
	completed, expired, malformed := r.stats()
	if completed != wantCompleted || expired != 0 || malformed != 0 {
		t.Errorf("stats = %d, %d, %d; want %d, 0, 0", completed, expired, malformed, wantCompleted)
	}
}

// splitTest splits a packet of size bytes into datagrams of at most maxDg.
func splitTest(t *testing.T, f *Fragmenter, size, maxDg int, seed byte) ([]byte, [][]byte) {
	t.Helper()
	pkt := testPacket(size, seed)
	out := fragBufs(MaxFragments, maxDg)
	n, err := f.Split(pkt, maxDg, out)
	if err != nil || n < 2 {
		t.Fatalf("split(%d, %d) = %d, %v", size, maxDg, n, err)
	}
	return pkt, out[:n]
}

func TestReassemblerLossExpires(t *testing.T) {
	var f Fragmenter
	r := newCounted(4, 2*time.Second)
	now := time.Now()
	_, dgs := splitTest(t, &f, 3000, 1200, 1)
	for _, d := range dgs[1:] { // piece 0 lost
		if got, err := r.Add(d, now); got != nil || err != nil {
			t.Fatalf("add = %v, %v", got, err)
		}
	}
	pkt2, dgs2 := splitTest(t, &f, 2000, 1200, 2)
	r.Add(dgs2[0], now.Add(2*time.Second)) // not yet expired
	if _, expired, _ := r.stats(); expired != 0 {
		t.Fatalf("expired = %d before the timeout", expired)
	}
	got, _ := r.Add(dgs2[1], now.Add(2*time.Second+time.Millisecond))
	if !bytes.Equal(got, pkt2) {
		t.Fatal("second packet not rebuilt")
	}
	if _, expired, _ := r.stats(); expired != 1 {
		t.Errorf("expired = %d after the timeout, want 1", expired)
	}
	// The lost piece arriving late starts a new packet that never completes.
	if got, _ := r.Add(dgs[0], now.Add(3*time.Second)); got != nil {
		t.Error("late piece completed a dropped packet")
	}
	// A piece of a timed-out packet with the same id restarts it.
	pkt3, dgs3 := splitTest(t, &f, 3000, 1300, 3) // 3 pieces
	r.Add(dgs3[0], now.Add(4*time.Second))
	r.Add(dgs3[1], now.Add(7*time.Second)) // too late: restarts the slot
	got, _ = r.Add(dgs3[0], now.Add(7*time.Second))
	if got != nil {
		t.Fatal("completed with a piece from before the timeout")
	}
	if got, _ = r.Add(dgs3[1], now.Add(7*time.Second)); got != nil {
		t.Fatal("duplicate piece completed the packet")
	}
	got, _ = r.Add(dgs3[2], now.Add(7*time.Second))
	if !bytes.Equal(got, pkt3) {
		t.Error("restarted packet not rebuilt")
	}
}

func TestReassemblerInterleaved(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var f Fragmenter
	r := newCounted(8, time.Second)
	now := time.Now()
	for round := range 50 {
		type piece struct {
			d   []byte
			pkt int
		}
		var pkts [][]byte
		var all []piece
		for i := range 8 {
			pkt, dgs := splitTest(t, &f, 1300+rng.IntN(8000), 1200, byte(round*8+i))
			pkts = append(pkts, pkt)
			for _, d := range dgs {
				all = append(all, piece{d, i})
			}
		}
		rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		done := 0
		for _, p := range all {
			got, err := r.Add(p.d, now)
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if got != nil {
				if !bytes.Equal(got, pkts[p.pkt]) {
					t.Fatalf("round %d: packet %d differs", round, p.pkt)
				}
				done++
			}
		}
		if done != 8 {
			t.Fatalf("round %d: %d of 8 packets rebuilt", round, done)
		}
	}
	if c, e, m := r.stats(); c != 400 || e != 0 || m != 0 {
		t.Errorf("stats = %d, %d, %d; want 400, 0, 0", c, e, m)
	}
}

func TestReassemblerSlotExhaustion(t *testing.T) {
	var f Fragmenter
	r := newCounted(2, time.Minute)
	now := time.Now()
	p1, d1 := splitTest(t, &f, 2000, 1200, 1)
	p2, d2 := splitTest(t, &f, 2000, 1200, 2)
	p3, d3 := splitTest(t, &f, 2000, 1200, 3)
	r.Add(d1[0], now)
	r.Add(d2[0], now.Add(time.Millisecond))
	r.Add(d3[0], now.Add(2*time.Millisecond)) // evicts packet 1, the oldest
	if _, e, _ := r.stats(); e != 1 {
		t.Fatalf("expired = %d, want 1", e)
	}
	if got, _ := r.Add(d1[1], now); got != nil {
		t.Error("evicted packet 1 completed") // (and evicts packet 2 in turn)
	}
	if got, _ := r.Add(d3[1], now); !bytes.Equal(got, p3) {
		t.Error("packet 3 not rebuilt")
	}
	r.Add(d2[0], now)
	if got, _ := r.Add(d2[1], now); !bytes.Equal(got, p2) {
		t.Error("packet 2 not rebuilt after retransmission")
	}
	_ = p1
	if c, e, _ := r.stats(); c != 2 || e != 2 {
		t.Errorf("completed, expired = %d, %d; want 2, 2", c, e)
	}
}

func TestReassemblerStaleID(t *testing.T) {
	f := new(Fragmenter)
	r := newCounted(8, time.Hour)
	now := time.Now()
	_, old := splitTest(t, f, 2000, 1200, 1)
	r.Add(old[0], now)                   // never completed
	f.nextID.Add(reassemblyStaleIDs - 1) // the next id is exactly the window ahead
	pkt, dgs := splitTest(t, f, 2000, 1200, 2)
	r.Add(dgs[0], now)
	if _, e, _ := r.stats(); e != 0 {
		t.Fatalf("expired = %d within the stale window", e)
	}
	f.nextID.Add(1)
	_, dgs2 := splitTest(t, f, 2000, 1200, 3)
	r.Add(dgs2[0], now)
	if _, e, _ := r.stats(); e != 1 {
		t.Errorf("expired = %d, want 1 for the stale id", e)
	}
	if got, _ := r.Add(dgs[1], now); !bytes.Equal(got, pkt) {
		t.Error("recent packet not rebuilt")
	}
}

func TestReassemblerMalformed(t *testing.T) {
	// hdr returns a FRAGMENT header for id 7.
	hdr := func(index, count byte, n int) []byte {
		return append([]byte{TypeFragment, 0, 7, index, count}, make([]byte, n)...)
	}
	tests := []struct {
		name string
		dgs  [][]byte // added in order; the last must fail with want
		want error
	}{
		{"too short", [][]byte{{TypeFragment, 0, 7, 0, 2}}, ErrFragmentShort},
		{"not a fragment", [][]byte{{TypePacket, 0, 7, 0, 2, 1}}, ErrFragmentType},
		{"reserved type", [][]byte{{0x3f, 0, 7, 0, 2, 1}}, ErrFragmentType},
		{"count 1", [][]byte{hdr(0, 1, 10)}, ErrFragmentHeader},
		{"count 17", [][]byte{hdr(0, 17, 10)}, ErrFragmentHeader},
		{"index past count", [][]byte{hdr(3, 3, 10)}, ErrFragmentHeader},
		{"count changes", [][]byte{hdr(0, 3, 10), hdr(1, 4, 10)}, ErrFragmentInconsistent},
		{"piece length changes", [][]byte{hdr(0, 3, 10), hdr(1, 3, 11)}, ErrFragmentInconsistent},
		{"last longer than the others", [][]byte{hdr(0, 3, 10), hdr(2, 3, 11)}, ErrFragmentInconsistent},
		{"last first, then shorter pieces", [][]byte{hdr(2, 3, 11), hdr(0, 3, 10)}, ErrFragmentInconsistent},
		{"too large", [][]byte{hdr(0, 16, 4400)}, ErrFragmentTooLarge},
		{"too large with the last", [][]byte{hdr(0, 2, 40000), hdr(1, 2, 30000)}, ErrFragmentTooLarge},
		{"too large, the last first", [][]byte{hdr(1, 2, 30000), hdr(0, 2, 40000)}, ErrFragmentTooLarge},
		{"too large from the last alone", [][]byte{hdr(2, 3, 21852)}, ErrFragmentTooLarge},
		{"last at the limit, then a longer piece", [][]byte{hdr(2, 3, 21851), hdr(0, 3, 21852)}, ErrFragmentTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCounted(0, 0)
			now := time.Now()
			var err error
			for i, d := range tt.dgs {
				_, err = r.Add(d, now)
				if i < len(tt.dgs)-1 && err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("add error %v, want %v", err, tt.want)
			}
			if _, _, m := r.stats(); m != 1 {
				t.Errorf("malformed = %d, want 1", m)
			}
			// The packet in progress is gone: a consistent retry completes.
			got, _ := r.Add(hdr(0, 2, 5), now)
			got2, err := r.Add(hdr(1, 2, 5), now)
			if got != nil || err != nil || len(got2) != 10 {
				t.Errorf("retry after a malformed datagram: %d bytes, %v", len(got2), err)
			}
		})
	}
}

// TestReassemblerLimit checks, for every order of the pieces, that the
// largest packet the format carries is rebuilt and that one byte more is
// refused as too large, not as inconsistent: its pieces agree.
func TestReassemblerLimit(t *testing.T) {
	var f Fragmenter
	for _, size := range []int{maxReassembled, maxReassembled + 1} {
		pkt, dgs := splitTest(t, &f, size, 21856, 1)
		for _, order := range permutations(len(dgs)) {
			r := newCounted(0, 0)
			var got []byte
			var errs []error
			for _, i := range order {
				p, err := r.Add(dgs[i], time.Now())
				if p != nil {
					got = p
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			if size == maxReassembled && (!bytes.Equal(got, pkt) || errs != nil) {
				t.Errorf("%d bytes in %d pieces, order %v: rebuilt %d bytes, errors %v", size, len(dgs), order, len(got), errs)
			}
			if size > maxReassembled && (got != nil || len(errs) == 0 || errs[0] != ErrFragmentTooLarge) {
				t.Errorf("%d bytes in %d pieces, order %v: rebuilt %d bytes, errors %v; want ErrFragmentTooLarge first", size, len(dgs), order, len(got), errs)
			}
		}
	}
}

// permutations returns every order of 0..n-1.
func permutations(n int) [][]int {
	if n == 0 {
		return [][]int{{}}
	}
	var all [][]int
	for _, p := range permutations(n - 1) {
		for i := range n {
			q := append(append(append([]int{}, p[:i]...), n-1), p[i:]...)
			all = append(all, q)
		}
	}
	return all
}

func TestReassemblerEpochIgnored(t *testing.T) {
	var f Fragmenter
	r := newCounted(0, 0)
	pkt, dgs := splitTest(t, &f, 2000, 1200, 9)
	var got []byte
	for _, d := range dgs {
		d[0] |= 0xc0
		got, _ = r.Add(d, time.Now())
	}
	if !bytes.Equal(got, pkt) {
		t.Error("fragments with epoch bits set not reassembled")
	}
}

func TestFragmenterSharedIDs(t *testing.T) {
	var f Fragmenter // one, shared by every sender
	var mu sync.Mutex
	seen := map[uint16]bool{}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			out := fragBufs(MaxFragments, 1200)
			for range 1000 {
				n, err := f.Split(testPacket(2000, byte(g)), 1200, out)
				if err != nil || n != 2 {
					t.Errorf("split: %d, %v", n, err)
					return
				}
				id := uint16(out[0][1])<<8 | uint16(out[0][2])
				mu.Lock()
				if seen[id] {
					t.Errorf("id %d used twice", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Errorf("%d distinct ids, want 4000", len(seen))
	}
}

func TestFragmentNoAlloc(t *testing.T) {
	var f Fragmenter
	r := newCounted(0, 0)
	pkt := testPacket(1514, 1)
	out := fragBufs(MaxFragments, 1200)
	now := time.Now()
	step := func() {
		bufs := out[:MaxFragments]
		for i := range bufs {
			bufs[i] = bufs[i][:cap(bufs[i])]
		}
		n, err := f.Split(pkt, 1200, bufs)
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		for i := n - 1; i >= 0; i-- {
			got, _ = r.Add(bufs[i], now)
		}
		if len(got) != len(pkt) {
			t.Fatalf("reassembled %d bytes", len(got))
		}
	}
	step() // first use allocates the slot's buffers
	if n := testing.AllocsPerRun(100, step); n != 0 {
		t.Errorf("split+add allocate %v times per run, want 0", n)
	}
}

func BenchmarkSplit(b *testing.B) {
	var f Fragmenter
	out := fragBufs(MaxFragments, 1200)
	for _, size := range []int{1000, 1514, 9000} {
		pkt := testPacket(size, 0)
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				for i := range out {
					out[i] = out[i][:cap(out[i])]
				}
				if _, err := f.Split(pkt, 1200, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkReassemble(b *testing.B) {
	var f Fragmenter
	r := newCounted(0, 0)
	now := time.Now()
	for _, size := range []int{1514, 9000} {
		pkt := testPacket(size, 0)
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			out := fragBufs(MaxFragments, 1200)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				for i := range out {
					out[i] = out[i][:cap(out[i])]
				}
				n, _ := f.Split(pkt, 1200, out)
				var got []byte
				for _, d := range out[:n] {
					got, _ = r.Add(d, now)
				}
				if got == nil {
					b.Fatal("not reassembled")
				}
			}
		})
	}
}

// fuzzRecord appends one step of a FuzzReassemblerAdd sequence: dg
// arrives advance×10 ms after the step before.
func fuzzRecord(seq []byte, advance byte, dg []byte) []byte {
	seq = append(seq, advance, byte(len(dg)>>8), byte(len(dg)))
	return append(seq, dg...)
}

// fuzzLimit is the largest packet FuzzReassemblerAdd's reassembler
// rebuilds: small, so that small inputs reach it.
const fuzzLimit = 600

// FuzzReassemblerAdd feeds a Reassembler (3 slots, 1 s timeout, packets of
// at most fuzzLimit bytes) a sequence of arbitrary datagrams, then the
// pieces of pkt split at 6 + maxDg%200 bytes, in an order picked by order,
// with one piece repeated. seq is a list of records: one byte of time
// advance (in 10 ms), a big-endian uint16 length, and that many bytes of
// datagram (fewer at the end of seq).
//
// It checks that Add never panics; that it returns a packet or an error,
// not both, and only its own sentinel errors; that a packet is never
// longer than the limit and holds the piece that completed it at the
// place the piece's header names; that the stats and the onExpire calls
// count what Add returned; and that whatever came before, a packet whose
// id no earlier datagram used is rebuilt exactly if it is within the
// limit, and not at all if it is not.
func FuzzReassemblerAdd(f *testing.F) {
	var fr Fragmenter
	out := fragBufs(MaxFragments, 64)
	n, _ := fr.Split(testPacket(250, 5), 64, out)
	var seq []byte
	for i, d := range out[:n] {
		seq = fuzzRecord(seq, byte(i), d)
	}
	f.Add(seq, testPacket(200, 1), uint16(44), uint64(1))
	seq = nil
	for _, d := range out[:n] {
		seq = fuzzRecord(seq, 0, d[:len(d)/2]) // inconsistent lengths
	}
	f.Add(seq, testPacket(20, 2), uint16(10), uint64(2))
	seq = fuzzRecord(nil, 0, []byte{TypeFragment, 0, 0, 0, 2, 1})
	seq = fuzzRecord(seq, 150, []byte{TypeFragment, 0, 0, 1, 2, 1, 2}) // after the timeout
	seq = fuzzRecord(seq, 0, []byte{TypeFragment, 0xff, 0xff, 15, 16})
	seq = fuzzRecord(seq, 0, []byte{0xc1, 0, 1, 1, 2, 9, 9, 9})
	seq = fuzzRecord(seq, 0, []byte{TypePacket, 0, 1, 1, 2, 9})
	f.Add(seq, testPacket(150, 3), uint16(100), uint64(3))
	out = fragBufs(MaxFragments, 205)
	n, _ = fr.Split(testPacket(fuzzLimit, 4), 205, out) // the largest packet, in 3 pieces
	seq = nil
	for _, d := range out[:n] {
		seq = fuzzRecord(seq, 0, d)
	}
	f.Add(seq, testPacket(fuzzLimit+1, 5), uint16(199), uint64(4))

	known := map[error]bool{ErrFragmentShort: true, ErrFragmentType: true, ErrFragmentHeader: true,
		ErrFragmentInconsistent: true, ErrFragmentTooLarge: true}
	f.Fuzz(func(t *testing.T, seq, pkt []byte, maxDg uint16, order uint64) {
		r := NewReassembler(3, time.Second, nil)
		r.limit = fuzzLimit
		now := time.Unix(1e9, 0)
		usedIDs := map[uint16]bool{}
		add := func(dg []byte) []byte {
			t.Helper()
			got, err := r.Add(dg, now)
			if err != nil {
				if got != nil {
					t.Fatalf("Add returned %d bytes and %v", len(got), err)
				}
				if !known[err] {
					t.Fatalf("Add returned an error of its own: %v", err)
				}
				return nil
			}
			if got == nil {
				return nil
			}
			if len(got) > fuzzLimit {
				t.Fatalf("rebuilt a packet of %d bytes, more than %d", len(got), fuzzLimit)
			}
			index, count, piece := int(dg[3]), int(dg[4]), dg[FragmentHeaderLen:]
			if index < count-1 {
				l := len(piece)
				if len(got) <= (count-1)*l || len(got) > count*l || !bytes.Equal(got[index*l:(index+1)*l], piece) {
					t.Fatalf("piece %d of %d (%d bytes) completed a packet of %d bytes that does not hold it there", index, count, l, len(got))
				}
			} else if rest := len(got) - len(piece); !bytes.HasSuffix(got, piece) || rest%(count-1) != 0 || rest/(count-1) < len(piece) {
				t.Fatalf("last piece (%d bytes) of %d completed a packet of %d bytes that does not end in it", len(piece), count, len(got))
			}
			return got
		}
		for len(seq) >= 3 {
			now = now.Add(time.Duration(seq[0]) * 10 * time.Millisecond)
			l := min(int(seq[1])<<8|int(seq[2]), len(seq)-3)
			dg := seq[3 : 3+l]
			seq = seq[3+l:]
			if len(dg) >= 3 && dg[0]&TypeMask == TypeFragment {
				usedIDs[uint16(dg[1])<<8|uint16(dg[2])] = true
			}
			add(dg)
		}

		// The packet that must come through, under an id not used yet
		// (ids close to used ones are as good as any: a packet is never
		// expired by its own pieces).
		id := uint16(order >> 48)
		for usedIDs[id] {
			id++
		}
		fr := new(Fragmenter)
		fr.nextID.Store(uint32(id))
		size := FragmentHeaderLen + 1 + int(maxDg)%200
		out := fragBufs(MaxFragments, size)
		n, err := fr.Split(pkt, size, out)
		switch {
		case err != nil:
		case n == 1:
			if out[0][0] != TypePacket || !bytes.Equal(out[0][PacketHeaderLen:], pkt) {
				t.Fatalf("Split(%d bytes, %d) made a bad PACKET datagram", len(pkt), size)
			}
		default:
			rng := rand.New(rand.NewPCG(order, 0))
			dgs := append(out[:n:n], out[rng.IntN(n)]) // one piece twice
			rng.Shuffle(len(dgs), func(i, j int) { dgs[i], dgs[j] = dgs[j], dgs[i] })
			var got []byte
			for i, d := range dgs {
				p := add(d)
				if p != nil && got != nil {
					t.Fatalf("packet rebuilt twice")
				}
				if p != nil {
					got = bytes.Clone(p) // p is valid only until the next Add
					if i < n-1 {
						t.Fatalf("packet rebuilt from %d of its %d pieces", i+1, n)
					}
				}
			}
			if len(pkt) > fuzzLimit {
				if got != nil {
					t.Fatalf("rebuilt a %d-byte packet, more than %d", len(got), fuzzLimit)
				}
			} else if !bytes.Equal(got, pkt) {
				t.Fatalf("packet of %d bytes in %d pieces of at most %d: rebuilt %d bytes, not the packet", len(pkt), n, size, len(got))
			}
		}
	})
}

func TestReassemblerIDWrap(t *testing.T) {
	f := new(Fragmenter)
	f.nextID.Store(0xfffe)
	r := newCounted(0, 0)
	now := time.Now()
	var pkts [][]byte
	var dgs [][][]byte
	for i := range 3 { // ids 0xfffe, 0xffff, 0x0000
		p, d := splitTest(t, f, 2000, 1200, byte(i))
		pkts, dgs = append(pkts, p), append(dgs, d)
		r.Add(d[0], now)
	}
	for i := range 3 {
		if got, _ := r.Add(dgs[i][1], now); !bytes.Equal(got, pkts[i]) {
			t.Errorf("packet %d (id %#x) not rebuilt across the id wrap", i, uint16(0xfffe+i))
		}
	}
	if _, e, m := r.stats(); e != 0 || m != 0 {
		t.Errorf("expired, malformed = %d, %d; want 0, 0", e, m)
	}
}

// counted is a Reassembler that counts what its Add returned: packets
// rebuilt, datagrams refused and incomplete packets given up.
type counted struct {
	*Reassembler
	completed, expired, malformed uint64
}

func newCounted(slots int, timeout time.Duration) *counted {
	c := &counted{}
	c.Reassembler = NewReassembler(slots, timeout, func() { c.expired++ })
	return c
}

func (c *counted) Add(dg []byte, now time.Time) ([]byte, error) {
	p, err := c.Reassembler.Add(dg, now)
	if err != nil {
		c.malformed++
	}
	if p != nil {
		c.completed++
	}
	return p, err
}

func (c *counted) stats() (completed, expired, malformed uint64) {
	return c.completed, c.expired, c.malformed
}
