package main

import (
	"os"
	"runtime/debug"
)

// tunnelGCPercent is the garbage collector's target for a running tunnel.
// quic-go copies every datagram into a new slice, sent and received, so a
// tunnel at 1 Gbit/s allocates about 250 MB/s that dies at once, and with
// Go's default (100) the collector runs very often. 200 measured, in
// alternating 9 s single-stream runs through the bench's namespaces:
// c->s median 1.32 -> 1.49 Gbit/s (5 pairs), s->c 1.10 -> 1.16 (3 pairs),
// for a peak RSS of 62 instead of 44 MB on the server (see
// docs/PERFORMANCE.md).
const tunnelGCPercent = 200

// tuneGC sets tunnelGCPercent unless the user chose with GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(tunnelGCPercent)
}
