package quictun

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		// events at these offsets; want says which are allowed
		at   []time.Duration
		want []bool
	}{
		{"burst then refused", 10, 3,
			[]time.Duration{0, 0, 0, 0, 0},
			[]bool{true, true, true, false, false}},
		{"refills at the rate", 10, 1,
			[]time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond},
			[]bool{true, false, true, false, true}},
		{"refill capped at burst", 100, 2,
			[]time.Duration{0, 0, 10 * time.Second, 10 * time.Second, 10 * time.Second},
			[]bool{true, true, true, true, false}},
		{"zero rate never refills", 0, 2,
			[]time.Duration{0, 0, time.Hour, 2 * time.Hour},
			[]bool{true, true, false, false}},
		{"zero burst means one", 1, 0,
			[]time.Duration{0, 0, time.Second},
			[]bool{true, false, true}},
		{"time going backwards adds nothing", 1, 1,
			[]time.Duration{10 * time.Second, 0, 5 * time.Second, 11 * time.Second},
			[]bool{true, false, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rl := newRateLimiter(tt.perSecond, tt.burst)
			for i, at := range tt.at {
				if got := rl.allow(now.Add(at)); got != tt.want[i] {
					t.Errorf("event %d at %v: allow = %v, want %v", i, at, got, tt.want[i])
				}
			}
		})
	}
}

func TestRateLimiterConcurrent(t *testing.T) {
	rl := newRateLimiter(0, 100)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				if rl.allow(time.Now()) {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 100 {
		t.Errorf("allowed %d of 400 with a burst of 100 and no refill", allowed.Load())
	}
}

func TestRateLimiterNoAlloc(t *testing.T) {
	rl := newRateLimiter(1000, 10)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { rl.allow(now) }); n != 0 {
		t.Errorf("allow allocates %v times per run, want 0", n)
	}
}

func BenchmarkRateLimiter(b *testing.B) {
	rl := newRateLimiter(1e6, 100)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		rl.allow(now)
	}
}
