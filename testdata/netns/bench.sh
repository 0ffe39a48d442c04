#!/usr/bin/env bash
# bench.sh — quictun throughput, packet rate, latency and CPU cost, compared
# with the raw link and with wireguard-go, in one run on one machine.
#
# Two network namespaces joined by a veth (10.0.0.1 "server" <-> 10.0.0.2
# "client"). Each repetition goes round the tunnels — raw veth, quictun
# TUN, quictun TAP, wireguard-go — and for each starts the tunnel (only
# that one), waits until it answers pings, measures from the client
# namespace to an iperf3 server in the server namespace, and stops it:
#
#   tcp1     TCP, one stream, client -> server   (iperf3)           Mbit/s
#   tcp1_r   TCP, one stream, server -> client   (iperf3 -R)        Mbit/s
#   tcp4     TCP, four streams, client -> server (iperf3 -P 4)      Mbit/s
#   tcp2c    quictun only: two clients at once, one stream each, to the
#            server (a second client namespace, 10.0.1.2, joined to the
#            server's by its own veth); the sum received         Mbit/s
#   udp      UDP 64-byte payloads at full speed, packets received/s (iperf3 -u -b 0 -l 64)
#   udp_r    the same, server -> client
#   rtt      ping round trip, median of BENCH_PINGS echoes          ms
#            (per repetition; the figure is the median of those)
#   rtt1     the same with the tunnel's processes and ping all on CPU 0
#            (taskset): where the kernel puts the two ends, on one CPU
#            or on two, moves rtt by up to half, differently at each
#            start; pinned, the tunnels are compared on their own work  ms
#   cpu      CPU seconds (user+system, both tunnel processes) per GB
#            received during the tcp1 / tcp1_r runs                 s/GB
#
# Each figure is the median of BENCH_REPS runs. It prints a table with the
# ratios quictun/raw and quictun/wireguard-go and writes the same as JSON.
#
# Environment (all optional):
#   BENCH_REPS=3          repetitions per figure (median taken)
#   BENCH_TIME=4          seconds per iperf3 run
#   BENCH_PINGS=20        echoes for the RTT median
#   BENCH_OUT=bin/bench.json   where the JSON goes
#   BENCH_TUNNELS="raw tun tap wg"   which tunnels to measure
#   QUICTUN=path          quictun binary to measure (default: build one into
#                         a temp dir: `make clean` elsewhere cannot pull it away)
#   QUICTUN_ARGS="..."    extra flags for both `quictun listen` and `connect`
#                         (e.g. "--packet-size 1452")
#   BENCH_TXQUEUELEN=N    set this txqueuelen on the tunnel devices once up
#   BENCH_VETH_MTU=N      MTU of the veth (default 1500; e.g. 9000 to try
#                         jumbo QUIC packets with QUICTUN_ARGS="--packet-size 8000")
#   WIREGUARD_GO=path     wireguard-go binary (default: go install a pinned
#                         version into BENCH_CACHE, /tmp/quictun-bench-cache)
#
# Needs root, iproute2, iperf3, ping, jq; wireguard-go and wg (Debian's
# wireguard-tools, installed with apt-get when missing) are best effort: the
# wireguard-go column is left empty, with a note, when they are unavailable.
# Traffic stays inside the two namespaces it makes; it removes exactly what
# it made on exit. Exits non-zero if a tunnel never comes up (after printing
# the figures of the others).
# Run from anywhere: `make bench` or `sudo testdata/netns/bench.sh`.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$repo/testdata/netns/lib.sh"
prefix="qtb$$"
reps=${BENCH_REPS:-3}
secs=${BENCH_TIME:-4}
npings=${BENCH_PINGS:-20}
out=${BENCH_OUT:-$repo/bin/bench.json}
tunnels=${BENCH_TUNNELS:-raw tun tap wg}
qargs=${QUICTUN_ARGS:-}
txqlen=${BENCH_TXQUEUELEN:-}
veth_mtu=${BENCH_VETH_MTU:-1500}
# The pinned wireguard-go (golang.zx2c4.com/wireguard has no tagged
# releases; this is the newest pseudo-version when the script was written).
wg_version=v0.0.0-20260522210424-ecfc5a8d5446

nsA="${prefix}s" # server side, 10.0.0.1
nsB="${prefix}c" # client side, 10.0.0.2
nsC="${prefix}d" # a second client (quictun's two-client figure), 10.0.1.2
tmp=""
namespaces=()
pids=()        # every background process we started (killed on exit)
tunnel_pids=() # the processes of the tunnel being measured
notes=()
failed=() # tunnels that never came up
started=$SECONDS

note() { notes+=("$*"); printf '    note: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	cleanup_common
	[ -n "$tmp" ] && rm -rf "$tmp"
	if [ "$rc" -eq 0 ]; then
		say "==> cleaned up: ${#namespaces[@]} namespaces, temp files ($((SECONDS - started)) s in all)"
	else
		say "==> cleaned up; bench FAILED (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions ---
if [ "$(id -u)" -ne 0 ]; then
	say "bench.sh needs root (network namespaces, TUN devices): sudo make bench" >&2
	exit 1
fi
for tool in ip:iproute2 ping:iputils-ping iperf3:iperf3 jq:jq taskset:util-linux; do
	command -v "${tool%%:*}" >/dev/null || {
		say "bench.sh needs ${tool%%:*}: apt-get install ${tool#*:}" >&2
		exit 1
	}
done
[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true
[ -e /dev/net/tun ] || { say "no /dev/net/tun: load the tun module (modprobe tun)" >&2; exit 1; }
[[ $reps =~ ^[1-9][0-9]?$ ]] || { say "BENCH_REPS must be 1..99" >&2; exit 1; }
[[ $secs =~ ^[1-9][0-9]?$ ]] || { say "BENCH_TIME must be 1..99 seconds" >&2; exit 1; }
[[ $veth_mtu =~ ^[0-9]+$ ]] && ((veth_mtu >= 1280 && veth_mtu <= 65535)) || { say "BENCH_VETH_MTU must be 1280..65535" >&2; exit 1; }
tmp=$(mktemp -d /tmp/quictun-bench.XXXXXX)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
clk_tck=$(getconf CLK_TCK)

# --- build ---
step "build"
quictun=${QUICTUN:-}
if [ -z "$quictun" ]; then
	command -v go >/dev/null || die "go not found (install Go, or set QUICTUN=)"
	(cd "$repo" && go build -o "$tmp/quictun" ./cmd/quictun) || die "go build ./cmd/quictun"
	quictun=$tmp/quictun
fi
say "    quictun: $quictun"

wggo=""
if [[ " $tunnels " == *" wg "* ]]; then
	wggo=${WIREGUARD_GO:-}
	wgcache=${BENCH_CACHE:-/tmp/quictun-bench-cache}/wireguard-go-$wg_version
	if [ -z "$wggo" ] && [ -x "$wgcache/wireguard" ]; then wggo=$wgcache/wireguard; fi
	if [ -z "$wggo" ] && command -v go >/dev/null; then
		say "    installing wireguard-go $wg_version into $wgcache"
		if GOBIN=$wgcache GOFLAGS=-mod=mod timeout 300 go install "golang.zx2c4.com/wireguard@$wg_version" >"$tmp/wg-install.log" 2>&1; then
			wggo=$wgcache/wireguard
		else
			note "wireguard-go could not be installed ($(tail -n 1 "$tmp/wg-install.log")): its column is empty"
		fi
	fi
	if [ -n "$wggo" ] && ! command -v wg >/dev/null; then
		say "    installing wg (wireguard-tools)"
		{ timeout 120 apt-get install -y wireguard-tools || { timeout 120 apt-get update && timeout 120 apt-get install -y wireguard-tools; }; } >"$tmp/apt.log" 2>&1 || true
		command -v wg >/dev/null || { note "wg (wireguard-tools) unavailable: the wireguard-go column is empty"; wggo=""; }
	fi
	[ -n "$wggo" ] && say "    wireguard-go: $wggo"
fi

# --- PKI ---
step "PKI"
pki=$tmp/pki
{
	"$quictun" cert ca --dir "$pki" --name "quictun bench CA" &&
		"$quictun" cert issue --dir "$pki" --name server --server --host 10.0.0.1 &&
		"$quictun" cert issue --dir "$pki" --name client --ip 10.77.0.11/24 &&
		"$quictun" cert issue --dir "$pki" --name client2 --ip 10.77.0.12/24
} >"$tmp/cert.log" 2>&1 || die "quictun cert"

# --- namespaces ---
step "namespaces $nsA (10.0.0.1) <-veth-> $nsB (10.0.0.2); $nsA (10.0.1.1) <-veth-> $nsC (10.0.1.2)"
add_ns "$nsA"
add_ns "$nsB"
add_ns "$nsC"
ip -n "$nsA" link add eth0 type veth peer name eth0 netns "$nsB" &&
	ip -n "$nsA" addr add 10.0.0.1/24 dev eth0 && ip -n "$nsA" link set eth0 up &&
	ip -n "$nsB" addr add 10.0.0.2/24 dev eth0 && ip -n "$nsB" link set eth0 up &&
	ip -n "$nsA" link set eth0 mtu "$veth_mtu" && ip -n "$nsB" link set eth0 mtu "$veth_mtu" || die "veth"
# The second client reaches the server's 10.0.0.1 through its own veth.
ip -n "$nsA" link add eth1 type veth peer name eth0 netns "$nsC" &&
	ip -n "$nsA" addr add 10.0.1.1/24 dev eth1 && ip -n "$nsA" link set eth1 up &&
	ip -n "$nsC" addr add 10.0.1.2/24 dev eth0 && ip -n "$nsC" link set eth0 up &&
	ip -n "$nsA" link set eth1 mtu "$veth_mtu" && ip -n "$nsC" link set eth0 mtu "$veth_mtu" &&
	ip -n "$nsC" route add default via 10.0.1.1 || die "veth for the second client"

run_bg iperf3 "$nsA" iperf3 -s -p 5201
iperf_pid=$last_pid
run_bg iperf3-2 "$nsA" iperf3 -s -p 5202
iperf2_pid=$last_pid

# cpu_ticks: user+system clock ticks of the current tunnel's processes.
cpu_ticks() {
	local pid sum=0 st
	for pid in "${tunnel_pids[@]}"; do
		st=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
		st=${st##*) } # after "(comm) "; fields from 3 on
		read -r -a f <<<"$st"
		sum=$((sum + f[11] + f[12])) # utime, stime (fields 14, 15)
	done
	echo "$sum"
}

# median: of the numbers on stdin ("null" lines ignored); "null" if none.
median() {
	{ grep -v '^null$' || true; } | sort -g | awk '{v[NR]=$1} END {
		if (NR == 0) { print "null"; exit }
		if (NR % 2) printf "%.6g\n", v[(NR+1)/2]; else printf "%.6g\n", (v[NR/2]+v[NR/2+1])/2 }'
}

# iperf KIND ADDR ARGS...: one iperf3 run from the client namespace; prints
# "value cpu_s_per_gb retransmits" (null where not known).
iperf() {
	local kind=$1 addr=$2 j=$tmp/iperf.json t0 t1
	shift 2
	t0=$(cpu_ticks)
	if ! timeout $((secs + 20)) ip netns exec "$nsB" iperf3 -c "$addr" -p 5201 -t "$secs" \
		--connect-timeout 3000 -J "$@" >"$j" 2>"$tmp/iperf.err" || ! jq -e '.end.sum_received' "$j" >/dev/null 2>&1; then
		say "    (iperf3 $* to $addr failed: $(jq -r '.error // empty' "$j" 2>/dev/null | head -c 200)$(head -c 200 "$tmp/iperf.err"))" >&2
		echo "null null null"
		sleep 1
		return
	fi
	t1=$(cpu_ticks)
	if [ "$kind" = udp ]; then
		jq -r '"\(.end.sum_received.bytes / 64 / .end.sum_received.seconds) null null"' "$j"
	else
		jq -r --argjson ticks $((t1 - t0)) --argjson hz "$clk_tck" --argjson ntun "${#tunnel_pids[@]}" \
			'.end as $e | "\($e.sum_received.bits_per_second / 1e6) \(if $ntun == 0 then "null" else ($ticks / $hz) / ($e.sum_received.bytes / 1e9) end) \($e.sum_sent.retransmits // "null")"' "$j"
	fi
}

# rtt ADDR [CPU]: median ping RTT in ms; with CPU, ping runs on that CPU.
rtt() {
	local pin=()
	[ -z "${2:-}" ] || pin=(taskset -c "$2")
	"${pin[@]}" ip netns exec "$nsB" ping -c "$npings" -i 0.05 -w $((npings / 5 + 10)) "$1" 2>/dev/null |
		sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' | median
}

# rtt_pinned ADDR: rtt with the tunnel's processes (every thread) and ping
# on CPU 0; afterwards the processes may run on every CPU again.
rtt_pinned() {
	local pid all v=null pinned=true
	all="0-$(($(nproc) - 1))"
	for pid in "${tunnel_pids[@]}"; do
		taskset -a -cp 0 "$pid" >/dev/null 2>&1 || pinned=false
	done
	if $pinned; then
		v=$(rtt "$1" 0)
	else
		say "    (rtt1: could not pin the tunnel's processes to CPU 0)" >&2
	fi
	for pid in "${tunnel_pids[@]}"; do taskset -a -cp "$all" "$pid" >/dev/null 2>&1 || true; done
	echo "$v"
}

# two_clients MODE ADDR: start a second quictun client (namespace nsC),
# then one TCP stream from each client namespace to ADDR at once (ports
# 5201 and 5202), then stop the second client (so that the other figures
# are those of a server with one client); prints the sum received in
# Mbit/s, or null.
two_clients() {
	local mode=$1 addr=$2 j1=$tmp/iperf-c1.json j2=$tmp/iperf-c2.json p1 p2 c2 dev why=""
	dev=$([ "$mode" = tap ] && echo qtap0 || echo qt0)
	rm -f "$j1" "$j2"
	# shellcheck disable=SC2086 # QUICTUN_ARGS is a list of flags
	run_bg "$mode-client2" "$nsC" "$quictun" connect --server 10.0.0.1:4433 \
		--cert "$pki/client2.crt" --key "$pki/client2.key" --ca "$pki/ca.crt" \
		--mode "$mode" --dev "$dev" $qargs
	c2=$last_pid
	if ! wait_ping "$nsC" "$addr" 20; then
		why="the second client got no answer from $addr in 20 s"
	else
		set_txqlen "$nsC" "$dev"
		timeout $((secs + 20)) ip netns exec "$nsB" iperf3 -c "$addr" -p 5201 -t "$secs" --connect-timeout 3000 -J >"$j1" 2>&1 &
		p1=$!
		timeout $((secs + 20)) ip netns exec "$nsC" iperf3 -c "$addr" -p 5202 -t "$secs" --connect-timeout 3000 -J >"$j2" 2>&1 &
		p2=$!
		wait "$p1" || true
		wait "$p2" || true
		jq -e '.end.sum_received' "$j1" >/dev/null 2>&1 && jq -e '.end.sum_received' "$j2" >/dev/null 2>&1 ||
			why="iperf3: $(jq -r '.error // empty' "$j1" 2>/dev/null | head -c 200) / $(jq -r '.error // empty' "$j2" 2>/dev/null | head -c 200)"
	fi
	stop_pid "$c2"
	if [ -n "$why" ]; then
		say "    (two clients to $addr: $why)" >&2
		echo null
		return
	fi
	jq -rn --slurpfile a "$j1" --slurpfile b "$j2" '($a[0].end.sum_received.bits_per_second + $b[0].end.sum_received.bits_per_second) / 1e6'
}

# Every figure, in the order of the report.
metrics=(tcp1 tcp1_r tcp4 tcp2c udp udp_r rtt rtt1 retr retr_r cpu cpu_r)
declare -A R # R[tunnel.metric] = median value
declare -A S # S[tunnel.metric] = the samples so far, space-separated

# last TUNNEL METRIC: the latest sample (0 when there is none or it failed).
last() {
	local a
	read -r -a a <<<"${S[$1.$2]:-null}"
	echo "${a[-1]/null/0}"
}

# measure_rep TUNNEL ADDR REP: one repetition of every figure for one
# tunnel; the samples go into S.
measure_rep() {
	local t=$1 addr=$2 i=$3 v c r
	read -r v c r < <(iperf tcp "$addr") && S[$t.tcp1]+=" $v" S[$t.cpu]+=" $c" S[$t.retr]+=" $r"
	read -r v c r < <(iperf tcp "$addr" -R) && S[$t.tcp1_r]+=" $v" S[$t.cpu_r]+=" $c" S[$t.retr_r]+=" $r"
	read -r v c r < <(iperf tcp "$addr" -P 4) && S[$t.tcp4]+=" $v"
	if [ "$t" = tun ] || [ "$t" = tap ]; then S[$t.tcp2c]+=" $(two_clients "$t" "$addr")"; fi
	read -r v c r < <(iperf udp "$addr" -u -b 0 -l 64) && S[$t.udp]+=" $v"
	read -r v c r < <(iperf udp "$addr" -u -b 0 -l 64 -R) && S[$t.udp_r]+=" $v"
	S[$t.rtt]+=" $(rtt "$addr")"
	S[$t.rtt1]+=" $(rtt_pinned "$addr")"
	local two=""
	[ -z "${S[$t.tcp2c]:-}" ] || two=$(printf '  tcp2c %.0f' "$(last "$t" tcp2c)")
	printf '    rep %d/%d: tcp1 %.0f  tcp1_r %.0f  tcp4 %.0f%s Mbit/s  udp %.0f  udp_r %.0f pkt/s  rtt %s  rtt1 %s ms\n' \
		$((i + 1)) "$reps" "$(last "$t" tcp1)" "$(last "$t" tcp1_r)" "$(last "$t" tcp4)" "$two" "$(last "$t" udp)" "$(last "$t" udp_r)" "$(last "$t" rtt)" "$(last "$t" rtt1)"
}

# finish TUNNEL: the medians of its samples, into R.
finish() {
	local t=$1 m
	for m in "${metrics[@]}"; do
		[ -n "${S[$t.$m]:-}" ] || continue
		R[$t.$m]=$(printf '%s\n' ${S[$t.$m]} | median)
	done
}

# set_txqlen NS DEV: apply BENCH_TXQUEUELEN, when given.
set_txqlen() {
	[ -n "$txqlen" ] || return 0
	ip -n "$1" link set dev "$2" txqueuelen "$txqlen" || die "txqueuelen $txqlen on $2"
}

# stop_tunnel: stop the current tunnel's processes.
stop_tunnel() {
	((${#tunnel_pids[@]})) || return 0
	stop_pids "${tunnel_pids[@]}"
	forget "${tunnel_pids[@]}"
	tunnel_pids=()
}

# quictun_up MODE: server in A, client in B, both in MODE; 10.77.0.1 <-> .11
quictun_up() {
	local mode=$1 dev
	dev=$([ "$mode" = tap ] && echo qtap0 || echo qt0)
	# shellcheck disable=SC2086 # QUICTUN_ARGS is a list of flags
	run_bg "$mode-server" "$nsA" "$quictun" listen --listen 10.0.0.1:4433 \
		--cert "$pki/server.crt" --key "$pki/server.key" --ca "$pki/ca.crt" \
		--mode "$mode" --dev "$dev" --ip 10.77.0.1/24 $qargs
	tunnel_pids+=("$last_pid")
	# shellcheck disable=SC2086
	run_bg "$mode-client" "$nsB" "$quictun" connect --server 10.0.0.1:4433 \
		--cert "$pki/client.crt" --key "$pki/client.key" --ca "$pki/ca.crt" \
		--mode "$mode" --dev "$dev" $qargs
	tunnel_pids+=("$last_pid")
	wait_ping "$nsB" 10.77.0.1 20 || return 1
	set_txqlen "$nsA" "$dev"
	set_txqlen "$nsB" "$dev"
	say "    up: $(ip -n "$nsB" -o link show dev "$dev" | grep -o 'mtu [0-9]*'), server $(ip -n "$nsA" -br addr show dev "$dev" | awk '{print $3}'), client $(ip -n "$nsB" -br addr show dev "$dev" | awk '{print $3}')"
}

# wg_up: wireguard-go in both namespaces, 10.79.0.1 <-> 10.79.0.2.
# The interface names carry our prefix: the UAPI socket lives in
# /var/run/wireguard/NAME.sock, shared by all namespaces.
wg_up() {
	local ia="${prefix}a" ib="${prefix}b" i
	(umask 077 && wg genkey >"$tmp/wga.key" && wg genkey >"$tmp/wgb.key") || return 1
	run_bg wg-server "$nsA" env WG_PROCESS_FOREGROUND=1 "$wggo" -f "$ia"
	tunnel_pids+=("$last_pid")
	run_bg wg-client "$nsB" env WG_PROCESS_FOREGROUND=1 "$wggo" -f "$ib"
	tunnel_pids+=("$last_pid")
	for ((i = 0; i < 50; i++)); do
		[ -S "/var/run/wireguard/$ia.sock" ] && [ -S "/var/run/wireguard/$ib.sock" ] && break
		sleep 0.1
	done
	ip netns exec "$nsA" wg set "$ia" private-key "$tmp/wga.key" listen-port 51820 \
		peer "$(wg pubkey <"$tmp/wgb.key")" allowed-ips 10.79.0.2/32 &&
		ip netns exec "$nsB" wg set "$ib" private-key "$tmp/wgb.key" \
			peer "$(wg pubkey <"$tmp/wga.key")" endpoint 10.0.0.1:51820 allowed-ips 10.79.0.0/24 &&
		ip -n "$nsA" addr add 10.79.0.1/24 dev "$ia" && ip -n "$nsA" link set "$ia" up &&
		ip -n "$nsB" addr add 10.79.0.2/24 dev "$ib" && ip -n "$nsB" link set "$ib" up || return 1
	wait_ping "$nsB" 10.79.0.1 20 || return 1
	set_txqlen "$nsA" "$ia"
	set_txqlen "$nsB" "$ib"
	say "    up: $(ip -n "$nsB" -o link show dev "$ib" | grep -o 'mtu [0-9]*')"
}

# tunnel_failed MESSAGE LOG...: report a tunnel that never came up, with
# its logs, stop it, and go on with the others (the exit status says so).
tunnel_failed() {
	local msg=$1 log
	shift
	printf '    FAILED: %s\n' "$msg" >&2
	for log in "$@"; do
		[ -f "$tmp/$log.log" ] || continue
		printf -- '---- last lines of %s.log:\n' "$log" >&2
		tail -n 10 "$tmp/$log.log" >&2
	done
	failed+=("$msg")
	stop_tunnel
}

# The repetitions go round the tunnels (rep 1 of each, then rep 2 ...), each
# tunnel started afresh for its turn, so that a change in the machine's
# load during the run weighs on every tunnel alike rather than on the one
# measured at that time.
declare -A down # tunnels that failed to come up: not tried again
for t in $tunnels; do
	case $t in raw | tun | tap | wg) ;; *) die "unknown tunnel $t in BENCH_TUNNELS (raw tun tap wg)" ;; esac
done
for ((rep = 0; rep < reps; rep++)); do
	for t in $tunnels; do
		[ -z "${down[$t]:-}" ] || continue
		case $t in
		raw)
			step "raw veth (10.0.0.1), rep $((rep + 1))/$reps"
			wait_ping "$nsB" 10.0.0.1 5 || die "veth: no answer from 10.0.0.1"
			measure_rep raw 10.0.0.1 "$rep"
			;;
		tun | tap)
			step "quictun $t mode (10.77.0.1), rep $((rep + 1))/$reps"
			if ! quictun_up "$t"; then
				tunnel_failed "quictun $t mode: no answer from 10.77.0.1 through the tunnel in 20 s" "$t-server" "$t-client"
				down[$t]=1
				continue
			fi
			measure_rep "$t" 10.77.0.1 "$rep"
			stop_tunnel
			# The counters both ends log when they stop (drops, fragments...).
			say "    server: $(grep -h 'msg="client disconnected"' "$tmp/$t-server.log" | tail -n 1 | sed 's/.*msg="client disconnected" //' | cut -c1-400)"
			say "    client: $(grep -h 'msg="client stopped"' "$tmp/$t-client.log" | tail -n 1 | sed 's/.*counters=//' | cut -c1-400)"
			;;
		wg)
			step "wireguard-go (10.79.0.1), rep $((rep + 1))/$reps"
			if [ -z "$wggo" ]; then
				((rep > 0)) || note "wireguard-go skipped"
				continue
			fi
			if ! wg_up; then
				tunnel_failed "wireguard-go: not configured, or no answer from 10.79.0.1 in 20 s" wg-server wg-client
				down[$t]=1
				continue
			fi
			measure_rep wg 10.79.0.1 "$rep"
			stop_tunnel
			;;
		esac
	done
done
for t in $tunnels; do finish "$t"; done
stop_pids "$iperf_pid" "$iperf2_pid"
forget "$iperf_pid" "$iperf2_pid"

# --- report ---
declare -A label=(
	[tcp1]="TCP 1 stream c->s (Mbit/s)" [tcp1_r]="TCP 1 stream s->c (Mbit/s)"
	[tcp4]="TCP 4 streams c->s (Mbit/s)" [tcp2c]="TCP 2 clients -> s, sum (Mbit/s)" [udp]="UDP 64 B c->s (pkt/s rcvd)"
	[udp_r]="UDP 64 B s->c (pkt/s rcvd)" [rtt]="ping RTT median (ms)" [rtt1]="ping RTT, all on CPU 0 (ms)"
	[retr]="TCP retransmits c->s (per run)" [retr_r]="TCP retransmits s->c (per run)"
	[cpu]="CPU s/GB c->s (tunnel procs)" [cpu_r]="CPU s/GB s->c (tunnel procs)")
val() { echo "${R[$1.$2]:-null}"; }
# ratio A B: A/B with 2 decimals, or "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "null" || b == "null" || a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f\n", a / b }'; }
fmt() { awk -v v="$1" 'BEGIN { if (v == "null" || v == "") print "-"; else if (v >= 100) printf "%.0f\n", v; else printf "%.3g\n", v }'; }

step "results: medians of $reps runs of ${secs} s (rtt: $npings pings); load average $load_start at the start, $(cut -d' ' -f1-3 /proc/loadavg) now"
{
	printf '%-32s %10s %10s %10s %10s | %8s %8s %8s %8s\n' metric raw tun tap wg-go tun/raw tap/raw tun/wg tap/wg
	for m in "${metrics[@]}"; do
		printf '%-32s %10s %10s %10s %10s | %8s %8s %8s %8s\n' "${label[$m]}" \
			"$(fmt "$(val raw "$m")")" "$(fmt "$(val tun "$m")")" "$(fmt "$(val tap "$m")")" "$(fmt "$(val wg "$m")")" \
			"$(ratio "$(val tun "$m")" "$(val raw "$m")")" "$(ratio "$(val tap "$m")" "$(val raw "$m")")" \
			"$(ratio "$(val tun "$m")" "$(val wg "$m")")" "$(ratio "$(val tap "$m")" "$(val wg "$m")")"
	done
} | tee "$tmp/table.txt"
for n in "${notes[@]}"; do say "note: $n"; done

# JSON: {meta, results{tunnel{metric}}, ratios{tun_vs_raw{metric}...}, notes}
args=()
for t in raw tun tap wg; do
	for m in "${metrics[@]}"; do args+=(--argjson "${t}_$m" "$(val "$t" "$m")"); done
done
mkdir -p "$(dirname "$out")"
jq -n "${args[@]}" \
	--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg kernel "$(uname -r)" --argjson cpus "$(nproc)" \
	--arg quictun "$quictun" --arg quictun_args "$qargs" --arg txqueuelen "$txqlen" --argjson veth_mtu "$veth_mtu" \
	--arg load_start "$load_start" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
	--arg wireguard_go "${wggo:+golang.zx2c4.com/wireguard@$wg_version ($wggo)}" \
	--argjson reps "$reps" --argjson seconds "$secs" --argjson pings "$npings" \
	--argjson rmem_max "$(sysctl -n net.core.rmem_max)" --argjson wmem_max "$(sysctl -n net.core.wmem_max)" \
	--arg metrics "${metrics[*]}" --arg notes "$(printf '%s\n' "${notes[@]}")" --arg failed "$(printf '%s\n' "${failed[@]}")" '
	def units: {tcp1: "Mbit/s", tcp1_r: "Mbit/s", tcp4: "Mbit/s", tcp2c: "Mbit/s (two clients at once, summed)", udp: "packets/s received", udp_r: "packets/s received",
		rtt: "ms", rtt1: "ms (tunnel processes and ping on CPU 0)", retr: "TCP retransmits per run", retr_r: "TCP retransmits per run", cpu: "CPU s per GB", cpu_r: "CPU s per GB"};
	($metrics | split(" ")) as $ms |
	$ARGS.named as $a |
	def res(t): reduce $ms[] as $m ({}; .[$m] = $a[t + "_" + $m]);
	def rat(x; y): reduce $ms[] as $m ({}; .[$m] = (if $a[x + "_" + $m] == null or $a[y + "_" + $m] == null or $a[y + "_" + $m] == 0
		then null else (($a[x + "_" + $m] / $a[y + "_" + $m]) * 1000 | round) / 1000 end));
	{meta: {date: $date, kernel: $kernel, cpus: $cpus, quictun: $quictun, quictun_args: $quictun_args,
		txqueuelen: $txqueuelen, veth_mtu: $veth_mtu, loadavg_start: $load_start, loadavg_end: $load_end,
		wireguard_go: $wireguard_go, reps: $reps, seconds_per_run: $seconds,
		pings: $pings, net_core_rmem_max: $rmem_max, net_core_wmem_max: $wmem_max, units: units},
	 results: {raw: res("raw"), tun: res("tun"), tap: res("tap"), wireguard_go: res("wg")},
	 ratios: {tun_vs_raw: rat("tun"; "raw"), tap_vs_raw: rat("tap"; "raw"),
		tun_vs_wireguard_go: rat("tun"; "wg"), tap_vs_wireguard_go: rat("tap"; "wg")},
	 notes: ($notes | split("\n") | map(select(. != ""))),
	 failed: ($failed | split("\n") | map(select(. != "")))}' >"$out" || die "writing $out"
say "==> JSON written to $out"
if ((${#failed[@]})); then
	say "==> tunnels that never came up:" >&2
	printf '    %s\n' "${failed[@]}" >&2
	exit 1
fi
