package quictun

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
	mt := newMACTable[string](time.Minute, 0)
	a, b := testMAC(1), testMAC(2)
	mt.learn(a, "s1", now)
	mt.learn(b, "dev", now)
	mt.learn(packet.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "s1", now)
	mt.learn(packet.MAC{0x01, 0x00, 0x5e, 0, 0, 1}, "s1", now)
	mt.learn(packet.MAC{}, "s1", now)

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
			got, ok := mt.lookup(tt.dst, now.Add(tt.at))
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("lookup = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if mt.len() != 2 {
		t.Errorf("len = %d, want 2", mt.len())
	}

	// Refresh, then move.
	mt.learn(a, "s1", now.Add(50*time.Second))
	if p, ok := mt.lookup(a, now.Add(100*time.Second)); !ok || p != "s1" {
		t.Errorf("after refresh: lookup = %q, %v; want s1", p, ok)
	}
	mt.learn(a, "s2", now.Add(60*time.Second))
	if p, ok := mt.lookup(a, now.Add(60*time.Second)); !ok || p != "s2" {
		t.Errorf("after move: lookup = %q, %v; want s2", p, ok)
	}

	// b was last seen at now; a at now+60s.
	if n := mt.expire(now.Add(90 * time.Second)); n != 1 {
		t.Errorf("expire = %d, want 1", n)
	}
	if _, ok := mt.lookup(b, now); ok {
		t.Error("expired entry still found")
	}
	if n := mt.removePort("s2"); n != 1 || mt.len() != 0 {
		t.Errorf("removePort = %d, len %d; want 1, 0", n, mt.len())
	}
}

func TestMACTableFull(t *testing.T) {
	now := time.Now()
	mt := newMACTable[int](time.Minute, 4)
	for i := range 4 {
		mt.learn(testMAC(i), i, now.Add(time.Duration(i)*time.Second))
	}
	// Full and nothing aged: a new MAC is refused, known ones still move.
	mt.learn(testMAC(10), 10, now.Add(5*time.Second))
	if _, ok := mt.lookup(testMAC(10), now.Add(5*time.Second)); ok {
		t.Error("learned past maxEntries")
	}
	if mt.refused() != 1 {
		t.Errorf("refused = %d, want 1", mt.refused())
	}
	mt.learn(testMAC(0), 7, now.Add(5*time.Second))
	if p, _ := mt.lookup(testMAC(0), now.Add(5*time.Second)); p != 7 {
		t.Errorf("move in a full table: port %d, want 7", p)
	}
	// Once MAC 1 (seen at +1s) has aged out, learning purges it and makes room.
	at := now.Add(time.Minute + 1500*time.Millisecond)
	mt.learn(testMAC(11), 11, at)
	if p, ok := mt.lookup(testMAC(11), at); !ok || p != 11 {
		t.Errorf("after purge: lookup = %d, %v; want 11", p, ok)
	}
	if _, ok := mt.lookup(testMAC(1), now.Add(time.Second)); ok {
		t.Error("aged MAC 1 not purged")
	}
	if mt.len() != 4 {
		t.Errorf("len = %d, want 4", mt.len())
	}
}

func TestMACTableDefaults(t *testing.T) {
	mt := newMACTable[int](0, 0)
	if mt.maxAge != 5*time.Minute || mt.maxEntries != 8192 {
		t.Errorf("defaults = %v, %d", mt.maxAge, mt.maxEntries)
	}
}

func TestMACTableConcurrent(t *testing.T) {
	mt := newMACTable[int](time.Minute, 0)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 2000 {
				now := time.Now()
				mt.learn(testMAC(i%64), g%2, now)
				mt.lookup(testMAC((i+1)%64), now)
				if i%500 == 0 {
					mt.expire(now)
				}
			}
		})
	}
	wg.Wait()
	if mt.len() != 64 {
		t.Errorf("len = %d, want 64", mt.len())
	}
	for i := range 64 {
		if p, ok := mt.lookup(testMAC(i), time.Now()); !ok || (p != 0 && p != 1) {
			t.Errorf("MAC %d: port %d, %v", i, p, ok)
		}
	}
}

func TestMACTableNoAlloc(t *testing.T) {
	mt := newMACTable[*int](time.Minute, 0)
	port := new(int)
	now := time.Now()
	mt.learn(testMAC(1), port, now)
	if n := testing.AllocsPerRun(100, func() {
		mt.learn(testMAC(1), port, now)
		mt.lookup(testMAC(1), now)
		mt.lookup(testMAC(2), now)
	}); n != 0 {
		t.Errorf("learn/lookup allocate %v times per run, want 0", n)
	}
}

func BenchmarkMACTable(b *testing.B) {
	mt := newMACTable[*int](time.Minute, 0)
	port := new(int)
	now := time.Now()
	for i := range 1000 {
		mt.learn(testMAC(i), port, now)
	}
	b.Run("learn-known", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			mt.learn(testMAC(500), port, now)
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := mt.lookup(testMAC(500), now); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("learn-known-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				mt.learn(testMAC(500), port, now)
			}
		})
	})
}
