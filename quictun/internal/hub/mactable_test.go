package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/quictun/quictun/packet"
)

// testMAC returns a locally administered unicast MAC numbered i.
func testMAC(i int) packet.MAC { return packet.MAC{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)} }

func TestMACTableLearnLookup(t *testing.T) {
	now := time.Now()
	mt := NewMACs[string](time.Minute, 0)
	a, b := testMAC(1), testMAC(2)
	mt.Learn(a, "s1", now)
	mt.Learn(b, "dev", now)
	mt.Learn(packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "s1", now)
	mt.Learn(packet.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, "s1", now)
	mt.Learn(packet.MAC{}, "s1", now)

	tests := []struct {
		name   string
		dst    packet.MAC
		at     time.Duration
		want   string
		wantOK bool
	}{
		{"known", a, 0, "s1", true},
		{"other port", b, 0, "dev", true},
		{"unknown", testMAC(3), 0, "", false},
		{"broadcast not learned", packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, "", false},
		{"multicast not learned", packet.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, 0, "", false},
		{"zero not learned", packet.MAC{}, 0, "", false},
		{"fresh at max age", a, time.Minute, "s1", true},
		{"aged out", a, time.Minute + time.Millisecond, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mt.Lookup(tt.dst, now.Add(tt.at))
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("lookup = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if mt.len() != 2 {
		t.Errorf("len = %d, want 2", mt.len())
	}

	// Refresh, then move.
	mt.Learn(a, "s1", now.Add(50*time.Second))
	if p, ok := mt.Lookup(a, now.Add(100*time.Second)); !ok || p != "s1" {
		t.Errorf("after refresh: lookup = %q, %v; want s1", p, ok)
	}
	mt.Learn(a, "s2", now.Add(60*time.Second))
	if p, ok := mt.Lookup(a, now.Add(60*time.Second)); !ok || p != "s2" {
		t.Errorf("after move: lookup = %q, %v; want s2", p, ok)
	}

	// b was last seen at now; a at now+60s.
	if n := mt.Expire(now.Add(90 * time.Second)); n != 1 {
		t.Errorf("expire = %d, want 1", n)
	}
	if _, ok := mt.Lookup(b, now); ok {
		t.Error("expired entry still found")
	}
	if n := mt.RemovePort("s2"); n != 1 || mt.len() != 0 {
		t.Errorf("removePort = %d, len %d; want 1, 0", n, mt.len())
	}
}

func TestMACTableFull(t *testing.T) {
	now := time.Now()
	mt := NewMACs[int](time.Minute, 4)
	for i := range 4 {
		mt.Learn(testMAC(i), i, now.Add(time.Duration(i)*time.Second))
	}
	// Full and nothing aged: a new MAC is refused, known ones still move.
	if mt.Learn(testMAC(10), 10, now.Add(5*time.Second)) {
		t.Error("Learn past maxEntries did not report the refusal")
	}
	if _, ok := mt.Lookup(testMAC(10), now.Add(5*time.Second)); ok {
		t.Error("learned past maxEntries")
	}
	mt.Learn(testMAC(0), 7, now.Add(5*time.Second))
	if p, _ := mt.Lookup(testMAC(0), now.Add(5*time.Second)); p != 7 {
		t.Errorf("move in a full table: port %d, want 7", p)
	}
	// Once MAC 1 (seen at +1s) has aged out, learning purges it and makes room.
	at := now.Add(time.Minute + 1500*time.Millisecond)
	mt.Learn(testMAC(11), 11, at)
	if p, ok := mt.Lookup(testMAC(11), at); !ok || p != 11 {
		t.Errorf("after purge: lookup = %d, %v; want 11", p, ok)
	}
	if _, ok := mt.Lookup(testMAC(1), now.Add(time.Second)); ok {
		t.Error("aged MAC 1 not purged")
	}
	if mt.len() != 4 {
		t.Errorf("len = %d, want 4", mt.len())
	}
}

func TestMACTableDefaults(t *testing.T) {
	mt := NewMACs[int](0, 0)
	if mt.maxAge != 5*time.Minute || mt.maxEntries != 8192 {
		t.Errorf("defaults = %v, %d", mt.maxAge, mt.maxEntries)
	}
}

func TestMACTableConcurrent(t *testing.T) {
	mt := NewMACs[int](time.Minute, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				now := time.Now()
				mt.Learn(testMAC(i%64), g%2, now)
				mt.Lookup(testMAC((i+1)%64), now)
				if i%500 == 0 {
					mt.Expire(now)
				}
			}
		})
	}
	wg.Wait()
	if mt.len() != 64 {
		t.Errorf("len = %d, want 64", mt.len())
	}
	for i := range 64 {
		if p, ok := mt.Lookup(testMAC(i), time.Now()); !ok || (p != 0 && p != 1) {
			t.Errorf("MAC %d: port %d, %v", i, p, ok)
		}
	}
}

// TestMACTablePinnedConcurrent: ports racing to learn the same MACs with
// LearnPinned each get a MAC only if no other port holds it, so every MAC
// is accepted for exactly one port and stays there.
func TestMACTablePinnedConcurrent(t *testing.T) {
	mt := NewMACs[int](time.Minute, 0)
	const ports, macs = 4, 64
	var accepted [ports][macs]bool
	var wg sync.WaitGroup
	for g := range ports {
		wg.Go(func() {
			for i := range 2000 {
				if _, pinned := mt.LearnPinned(testMAC(i%macs), g, time.Now()); !pinned {
					accepted[g][i%macs] = true
				}
			}
		})
	}
	wg.Wait()
	for i := range macs {
		n := 0
		for g := range ports {
			if accepted[g][i] {
				n++
				if p, ok := mt.Lookup(testMAC(i), time.Now()); !ok || p != g {
					t.Errorf("MAC %d accepted for port %d but on port %d (%v)", i, g, p, ok)
				}
			}
		}
		if n != 1 {
			t.Errorf("MAC %d accepted for %d ports, want exactly 1", i, n)
		}
	}
}

func TestMACTableNoAlloc(t *testing.T) {
	mt := NewMACs[*int](time.Minute, 0)
	port, other := new(int), new(int)
	now := time.Now()
	mt.Learn(testMAC(1), port, now)
	if n := testing.AllocsPerRun(100, func() {
		mt.Learn(testMAC(1), port, now)
		mt.LearnPinned(testMAC(1), port, now)
		mt.LearnPinned(testMAC(1), other, now) // refused: pinned
		mt.Lookup(testMAC(1), now)
		mt.Lookup(testMAC(2), now)
	}); n != 0 {
		t.Errorf("learn/lookup allocate %v times per run, want 0", n)
	}
}

func BenchmarkMACTable(b *testing.B) {
	mt := NewMACs[*int](time.Minute, 0)
	port := new(int)
	now := time.Now()
	for i := range 1000 {
		mt.Learn(testMAC(i), port, now)
	}
	b.Run("learn-known", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mt.Learn(testMAC(500), port, now)
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := mt.Lookup(testMAC(500), now); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("learn-known-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mt.Learn(testMAC(500), port, now)
			}
		})
	})
}
