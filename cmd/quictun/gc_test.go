package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestTuneGC: the tunnel's GC target applies unless GOGC is set.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	t.Setenv("GOGC", "")
	tuneGC()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, tuneGC changed the GC percent to %d", got)
	}
	// t.Setenv cannot unset; clear it for the rest of the test by hand.
	t.Setenv("GOGC", "x")
	unsetenv(t, "GOGC")
	tuneGC()
	if got := debug.SetGCPercent(100); got != tunnelGCPercent {
		t.Errorf("without GOGC, GC percent = %d, want %d", got, tunnelGCPercent)
	}
}

func unsetenv(t *testing.T, k string) {
	t.Helper()
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// TestMemSampleNames: every metric the trimmer reads exists in this Go
// release (a renamed one would read as zero and disable the trimmer
// without a word).
func TestMemSampleNames(t *testing.T) {
	samples := make([]metrics.Sample, len(memSampleNames))
	for i, n := range memSampleNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	for _, s := range samples {
		if s.Value.Kind() != metrics.KindUint64 {
			t.Errorf("runtime metric %s: kind %v, want uint64", s.Name, s.Value.Kind())
		}
	}
}

func TestShouldTrim(t *testing.T) {
	idle := memSample{gcCycles: 7, heapObjects: 5 << 20, heapLive: 5 << 20}
	garbage := memSample{gcCycles: 7, heapObjects: 40 << 20, heapLive: 5 << 20}
	free := memSample{gcCycles: 7, heapObjects: 5 << 20, heapLive: 5 << 20, heapFree: 30 << 20}
	for _, tc := range []struct {
		name       string
		prev, now  memSample
		want       bool
		whyNotTrim string
	}{
		{"garbage while idle", idle, garbage, true, ""},
		{"free pages while idle", idle, free, true, ""},
		{"nothing to give back", idle, idle, false, "under trimMin"},
		{"a collection ran: busy", memSample{gcCycles: 6}, garbage, false, "the collector runs on its own"},
		{"live above objects (sampled between phases)", idle, memSample{gcCycles: 7, heapObjects: 1 << 20, heapLive: 9 << 20}, false, "no garbage"},
	} {
		if got := shouldTrim(tc.prev, tc.now); got != tc.want {
			t.Errorf("%s: shouldTrim = %v, want %v (%s)", tc.name, got, tc.want, tc.whyNotTrim)
		}
	}
}

// TestTrimGivesBack: garbage left by a burst shows as reclaimable, and
// what the trimmer does when it decides to trim gives it back.
func TestTrimGivesBack(t *testing.T) {
	samples := make([]metrics.Sample, len(memSampleNames))
	for i, n := range memSampleNames {
		samples[i].Name = n
	}
	// No collection but the ones the test makes: the burst's garbage
	// stays, as it does between a tunnel's rare collections.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	runtime.GC()
	prev := readMemSample(samples)
	burst := make([][]byte, 0, 64)
	for range 64 {
		burst = append(burst, make([]byte, 512<<10)) // 32 MiB
	}
	runtime.KeepAlive(burst)
	burst = nil
	now := readMemSample(samples)
	if !shouldTrim(prev, now) {
		t.Fatalf("after a 32 MiB burst: reclaimable %d, want at least %d", now.reclaimable(), trimMin)
	}
	debug.FreeOSMemory()
	after := readMemSample(samples)
	if after.reclaimable() >= trimMin {
		t.Errorf("after FreeOSMemory: reclaimable %d, still at least %d", after.reclaimable(), trimMin)
	}
}
