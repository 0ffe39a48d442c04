package main

import (
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// tunnelGCPercent is the garbage collector's target for a running tunnel.
// Chosen when quic-go still copied every datagram into a new slice (about
// 250 MB/s of garbage at 1 Gbit/s): in alternating 9 s single-stream runs
// through the bench's namespaces, 200 gave c->s median 1.32 -> 1.49 Gbit/s
// (5 pairs), s->c 1.10 -> 1.16 (3 pairs), for a peak RSS of 62 instead of
// 44 MB on the server. With the patched quic-go (third_party/quic-go,
// pooled datagram buffers) the garbage is about 15 times less, and 100 vs
// 200 measured within the noise (6 s runs, 3 rounds: medians 1850 / 1690
// vs 2050 / 1780 Mbit/s c->s / s->c); 200 stays (docs/PERFORMANCE.md).
const tunnelGCPercent = 200

// tuneGC sets tunnelGCPercent unless the user chose with GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(tunnelGCPercent)
}

// Returning memory after a burst. With GOGC 200 and a data path that
// makes little garbage, a burst (a storm of handshakes, many clients
// leaving at once) leaves its garbage uncollected until the next cycle,
// and the next cycle comes only when the heap grows to three times the
// live heap again — or after Go's forced collection two minutes later;
// the freed pages then go back to the OS slowly. A server measured 13 MB
// at rest, 65 MB in a storm and still 34 MB 20 s after it, its live heap
// back at 5 MB. So a trimmer looks every trimEvery: when no collection
// ran since its last look (the process allocates slowly: a busy tunnel
// collects on its own and is left alone) and at least trimMin of garbage
// or free pages could go back, it collects and returns them
// (debug.FreeOSMemory). That is at most one forced collection per
// trimEvery, only while idle, and costs a few milliseconds with a small
// live heap.
const (
	trimEvery = 5 * time.Second
	trimMin   = 8 << 20
)

// memSample is what the trimmer reads of the runtime.
type memSample struct {
	gcCycles    uint64 // collections so far
	heapObjects uint64 // bytes in heap objects, live or not yet swept
	heapLive    uint64 // bytes live at the last collection
	heapFree    uint64 // bytes of free heap pages not yet returned to the OS
}

// memSampleNames are the runtime/metrics names of memSample's fields, in
// order.
var memSampleNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/free:bytes",
}

// readMemSample reads a memSample into s, reusing samples.
func readMemSample(samples []metrics.Sample) memSample {
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0 // not in this Go release: the trimmer then never acts on it
		}
		return samples[i].Value.Uint64()
	}
	return memSample{gcCycles: v(0), heapObjects: v(1), heapLive: v(2), heapFree: v(3)}
}

// reclaimable is how many bytes a collection and a scavenge would give
// back: the garbage in the heap and its free pages.
func (s memSample) reclaimable() uint64 {
	garbage := s.heapObjects - min(s.heapLive, s.heapObjects)
	return garbage + s.heapFree
}

// shouldTrim decides from the last look (prev) and this one (now).
func shouldTrim(prev, now memSample) bool {
	return now.gcCycles == prev.gcCycles && now.reclaimable() >= trimMin
}

// startMemoryTrim runs the trimmer for the life of the process.
func startMemoryTrim(log *slog.Logger) {
	samples := make([]metrics.Sample, len(memSampleNames))
	for i, n := range memSampleNames {
		samples[i].Name = n
	}
	go func() {
		prev := readMemSample(samples)
		t := time.NewTicker(trimEvery)
		defer t.Stop()
		for range t.C {
			now := readMemSample(samples)
			if shouldTrim(prev, now) {
				debug.FreeOSMemory()
				after := readMemSample(samples)
				log.Debug("returned memory to the OS after a burst", "reclaimable_before", now.reclaimable(), "live", after.heapLive)
				now = after
			}
			prev = now
		}
	}()
}
