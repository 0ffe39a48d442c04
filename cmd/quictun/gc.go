package main

import (
	"os"
	"runtime/debug"
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
