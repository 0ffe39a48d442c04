package main

import (
	"os"
	"runtime/debug"
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
