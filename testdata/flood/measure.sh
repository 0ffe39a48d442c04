#!/usr/bin/env bash
# testdata/flood/measure.sh — measure a quictun server under each kind of
# flood, for docs/OPERATIONS.md ("Under attack"). Loopback only, no root.
#
#   testdata/flood/measure.sh [SECONDS]
#
# Starts `flood serve` (a TUN-mode quictun.Server on 127.0.0.1 with an
# in-memory echoing device), then for each kind of flood runs a good
# client (`flood good`, a packet every 5 ms, echoed back) and the flood
# (`flood send`) for SECONDS (default 10), and prints one line per kind:
# the rate tried and sent, the server's CPU (% of one core, from the
# flood's start until its handshakes have ended) and memory (RSS before, peak, and 8 s after), the good client's
# loss, and what the server counted (handshake outcomes and stray
# datagrams, as deltas). The machine's load is printed first and last:
# the numbers are only as good as the machine was idle.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dur=${1:-10}
work=$(mktemp -d)
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
go build -o "$work/flood" ./testdata/flood
pki=$root/testdata/pki
"$work/flood" serve -listen 127.0.0.1:0 -pki "$pki" -status "$work/status.json" \
	>"$work/serve.out" 2>"$work/serve.log" &
spid=$!
addr=
for _ in $(seq 50); do
	addr=$(awk '/^ready/{print $2}' "$work/serve.out")
	[ -n "$addr" ] && [ -s "$work/status.json" ] && break
	sleep 0.2
done
[ -n "$addr" ] || { echo "the server did not start:" >&2; cat "$work/serve.log" >&2; exit 1; }

hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14+$15}' "/proc/$spid/stat"; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$spid/status"; }
now() { date +%s.%N; }

echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg); ${dur}s per flood; server $addr"
echo "kind | rate tried | sent/s (flood sent, errors, failed) | server CPU % | RSS MB before/peak/8s after | goroutines after | good loss | server counted"

# phase KIND RATE SOURCES [SECONDS]: one line of the table.
phase() {
	local kind=$1 rate=$2 sources=$3 secs=${4:-$dur}
	cp "$work/status.json" "$work/before.json"
	local rss0 peak
	rss0=$(rss_kb)
	peak=$rss0
	"$work/flood" good -server "$addr" -pki "$pki" -for "$((secs + 2))s" >"$work/good.out" 2>&1 &
	local gpid=$!
	sleep 1
	local c0 t0
	c0=$(cpu_ticks)
	t0=$(now)
	if [ "$kind" = none ]; then
		sleep "$secs"
		echo "sent=0 errors=0 failed=0" >"$work/send.out"
	else
		"$work/flood" send -kind "$kind" -to "$addr" -pki "$pki" -rate "$rate" -for "${secs}s" \
			-sources "$sources" >"$work/send.out" 2>"$work/send.log" &
		local fpid=$!
		while kill -0 "$fpid" 2>/dev/null; do
			local r
			r=$(rss_kb)
			[ "$r" -gt "$peak" ] && peak=$r
			sleep 0.2
		done
		wait "$fpid"
	fi
	local c1 t1
	c1=$(cpu_ticks)
	t1=$(now)
	wait "$gpid" || true
	sleep 8
	local rss2
	rss2=$(rss_kb)
	sleep 0.3 # a fresh status file
	python3 - "$kind" "$rate" "$secs" "$work/before.json" "$work/status.json" "$work/send.out" "$work/good.out" \
		"$c0" "$c1" "$t0" "$t1" "$hz" "$rss0" "$peak" "$rss2" <<'EOF'
import json, re, sys
kind, rate, floodsecs, before, after, sendf, goodf = sys.argv[1:8]
c0, c1, t0, t1, hz = (float(x) for x in sys.argv[8:13])
rss0, peak, rss2 = (int(x) / 1024 for x in sys.argv[13:16])
b, a = json.load(open(before)), json.load(open(after))
sendout = open(sendf).read().strip()
sent = re.search(r"sent=(\d+)", sendout)
good = open(goodf).read().strip()
secs = t1 - t0
def delta(key):
    out = []
    for k, v in sorted(a[key].items()):
        d = v - b[key].get(k, 0)
        if d:
            out.append(f"{k} +{d}")
    return out
counted = delta("handshakes") + ["stray " + x for x in delta("stray")] + ["drop " + x for x in delta("drops")]
print(f"{kind} | {rate}/s | {int(sent.group(1)) / float(floodsecs) if sent else 0:.0f} ({sendout}) | {100 * (c1 - c0) / hz / secs:.0f} | "
      f"{rss0:.0f}/{peak:.0f}/{rss2:.0f} | {a['goroutines']} (in flight {a['handshakes_in_flight']}) | {good} | {', '.join(counted) or '-'}")
EOF
}

phase none 0 1
phase random 20000 4
phase bogus 20000 4
phase halfopen 1000 32
phase badcert 200 1
phase badcert 200 16
phase storm 500 30 1

echo "# done $(date -u +%FT%TZ), load: $(cut -d' ' -f1-3 /proc/loadavg)"
