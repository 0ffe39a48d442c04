#!/usr/bin/env bash
# recovery.sh — measure how fast a quictun tunnel comes back after roaming
# events, in network namespaces with the real binary.
#
# Cases (each run several times; the table shows min / median / max):
#   restart       server killed with SIGKILL, 1 s down, started again; the
#                 client pings every 50 ms: time from the new server's start
#                 to the first reply through the tunnel.
#   restart-term  server stopped with SIGTERM (clients are told and start
#                 redialling), 1 s down, started again: time from the new
#                 server's start to the first reply (an upgrade).
#   restart-idle  the SIGKILL restart with no traffic at all: time from the new
#                 server's start to the client's next "tunnel up" (its
#                 padded keepalive draws the stateless reset).
#   addr          client underlay address replaced (add the new, delete the
#                 old): time from the change to the first reply.
#   noaddr        client without any address for 3 s, then a new one: time
#                 from the new address to the first reply.
#   blocked       the tunnel's UDP dropped both ways (nftables) for 8 s,
#                 longer than the idle timeout (--idle-timeout 5s
#                 --keepalive 1s on both ends): time from lifting the block
#                 to the first reply.
#   nat           the client behind a masquerading router (random source
#                 port in 40000-40999) whose mappings are cleared (outside
#                 address deleted and added again): time from the rebind to
#                 the first reply.
# The other cases use quictun's default --keepalive 10s and --idle-timeout
# 30s. "First reply" is `ping -i 0.05` started right after the event, so the
# resolution is about 50 ms.
#
# Usage: testdata/netns/recovery.sh [-n RUNS] [-o FILE.json] [CASE...]
#   -n RUNS   runs per case (default 5, at most 50)
#   -o FILE   write the results as JSON to FILE (default recovery.json)
#   CASE...   only these cases (default: all, in the order above)
# QUICTUN=/path/to/quictun uses that binary instead of building one (needs
# Go then). Needs root, iproute2, iputils-ping, nftables. Everything it
# makes (namespaces qtrec<pid>-*, processes by their PID, a temp directory)
# is removed on exit (RECOVERY_LOGS=DIR keeps a copy of the quictun logs);
# the whole run is bounded (RECOVERY_DEADLINE seconds, default 900). Exits
# non-zero if a case fails to recover within its bound.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$repo/testdata/netns/lib.sh"
prefix="qtrec$$-"
tmp=""
namespaces=()
pids=()
runs=5
json=recovery.json
deadline=$((SECONDS + ${RECOVERY_DEADLINE:-900}))
all_cases=(restart restart-term restart-idle addr noaddr blocked nat)

usage() { sed -n '/^# Usage:/,/^# non-zero if/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while getopts 'n:o:h' opt; do
	case $opt in
	n) runs=$OPTARG ;;
	o) json=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("${all_cases[@]}")
[[ $runs =~ ^[0-9]+$ ]] && ((runs >= 1 && runs <= 50)) || { say "-n: want 1..50 runs" >&2; exit 2; }
for c in "${cases[@]}"; do
	[[ " ${all_cases[*]} " == *" $c "* ]] || { say "unknown case $c (known: ${all_cases[*]})" >&2; exit 2; }
done

cleanup() {
	local rc=$?
	set +e
	cleanup_common
	if [ -n "${RECOVERY_LOGS:-}" ] && [ -n "$tmp" ]; then
		mkdir -p "$RECOVERY_LOGS" && cp "$tmp"/*.log "$RECOVERY_LOGS"/ 2>/dev/null
	fi
	[ -n "$tmp" ] && rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then
	say "recovery.sh needs root (network namespaces, TUN devices): sudo make recovery" >&2
	exit 1
fi
for tool in ip:iproute2 ping:iputils-ping nft:nftables; do
	command -v "${tool%%:*}" >/dev/null || { say "recovery.sh needs ${tool%%:*}: apt-get install ${tool#*:}" >&2; exit 1; }
done
[ -e /dev/net/tun ] || { say "no /dev/net/tun: load the tun module (modprobe tun)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/quictun-recovery.XXXXXX)
quictun=${QUICTUN:-}
if [ -z "$quictun" ]; then
	command -v go >/dev/null || die "go not found (install Go, or set QUICTUN=)"
	(cd "$repo" && go build -o "$tmp/quictun" ./cmd/quictun) || die "go build ./cmd/quictun"
	quictun=$tmp/quictun
fi
pki=$tmp/pki
{
	"$quictun" cert ca --dir "$pki" --name "quictun recovery CA" &&
		"$quictun" cert issue --dir "$pki" --name server --server --host 10.0.0.1 &&
		"$quictun" cert issue --dir "$pki" --name c1 --ip 10.77.0.11/24
} >"$tmp/cert.out" 2>&1 || { cat "$tmp/cert.out" >&2; die "quictun cert"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }
check_deadline() { ((SECONDS < deadline)) || die "over the ${RECOVERY_DEADLINE:-900} s bound"; }

addns() { add_ns "$prefix$1"; }
delns() { del_ns "$prefix$1"; }

# first_reply NS T0: ping 10.77.0.1 every 50 ms until the first reply (10 s
# bound); prints milliseconds since T0 (ms since the epoch).
first_reply() {
	ip netns exec "$1" ping -n -c 1 -w 10 -i 0.05 10.77.0.1 >/dev/null 2>&1 || return 1
	echo $(($(now_ms) - $2))
}

count_lines() { grep -c -- "$2" "$tmp/$1.log" 2>/dev/null || true; }

srv_args=(listen --listen 10.0.0.1:4433 --cert "$pki/server.crt" --key "$pki/server.key" --ca "$pki/ca.crt"
	--mode tun --dev qt0 --ip 10.77.0.1/24)
cli_args=(connect --server 10.0.0.1:4433 --cert "$pki/c1.crt" --key "$pki/c1.key" --ca "$pki/ca.crt" --dev qt0)

# lab NAME [FLAGS...]: namespaces NAME-{router,server,c1} (router bridge,
# server 10.0.0.1, client 10.0.0.11 on 10.0.0.0/24), server and client
# started with FLAGS; sets $srv_pid $cli_pid $srv_ns $cli_ns $lab.
lab() {
	lab=$1
	shift
	local r
	addns "$lab-router"
	addns "$lab-server"
	addns "$lab-c1"
	r=$prefix$lab-router srv_ns=$prefix$lab-server cli_ns=$prefix$lab-c1
	ip -n "$r" link add br0 type bridge && ip -n "$r" link set br0 up || die "bridge"
	ip -n "$srv_ns" link add eth0 type veth peer name srv netns "$r" &&
		ip -n "$cli_ns" link add eth0 type veth peer name cl1 netns "$r" || die "veth"
	for p in srv cl1; do ip -n "$r" link set "$p" master br0 up; done
	ip -n "$srv_ns" link set eth0 up && ip -n "$srv_ns" addr add 10.0.0.1/24 dev eth0
	ip -n "$cli_ns" link set eth0 up && ip -n "$cli_ns" addr add 10.0.0.11/24 dev eth0
	ip netns exec "$cli_ns" sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
	wait_ping "$cli_ns" 10.0.0.1 10 || die "$lab: underlay"
	tunnel "$@"
}

# tunnel [FLAGS...]: start server and client in $srv_ns / $cli_ns.
tunnel() {
	run_bg "$lab-server" "$srv_ns" "$quictun" "${srv_args[@]}" "$@"
	srv_pid=$last_pid
	run_bg "$lab-client" "$cli_ns" "$quictun" "${cli_args[@]}" "$@"
	cli_pid=$last_pid
	wait_ping "$cli_ns" 10.77.0.1 15 || die "$lab: no tunnel in 15 s"
}

# nat_lab: c1 192.168.1.2 ── in0 [nat] out0 10.0.0.254 ── server 10.0.0.1;
# UDP masqueraded to a random port in 40000-40999.
nat_lab() {
	lab=nat
	addns nat-c1
	addns nat-router
	addns nat-server
	local r=${prefix}nat-router
	cli_ns=${prefix}nat-c1 srv_ns=${prefix}nat-server
	ip -n "$cli_ns" link add eth0 type veth peer name in0 netns "$r" &&
		ip -n "$r" link add out0 type veth peer name eth0 netns "$srv_ns" || die "veth"
	ip -n "$cli_ns" link set eth0 up && ip -n "$cli_ns" addr add 192.168.1.2/24 dev eth0 &&
		ip -n "$cli_ns" route add default via 192.168.1.1 &&
		ip -n "$r" link set in0 up && ip -n "$r" addr add 192.168.1.1/24 dev in0 &&
		ip -n "$r" link set out0 up && ip -n "$r" addr add 10.0.0.254/24 dev out0 &&
		ip -n "$srv_ns" link set eth0 up && ip -n "$srv_ns" addr add 10.0.0.1/24 dev eth0 || die "nat addresses"
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$r" nft -f - <<-EOF || die "nft masquerade"
		table ip qtrec$$ {
			chain post {
				type nat hook postrouting priority srcnat; policy accept;
				oifname "out0" meta l4proto udp masquerade to :40000-40999 random
				oifname "out0" masquerade
			}
		}
	EOF
	wait_ping "$cli_ns" 10.0.0.1 10 || die "nat: underlay"
	tunnel
}

# record CASE MS: one measurement.
declare -A results
record() {
	results[$1]+="$2 "
	printf '    %-13s run %d: %d ms\n' "$1" "$(wc -w <<<"${results[$1]}")" "$2"
}

# case_restart CASE SIGNAL
case_restart() {
	local t0 ms i
	for ((i = 0; i < runs; i++)); do
		check_deadline
		kill "-$2" "$srv_pid"
		wait "$srv_pid" 2>/dev/null || true
		forget "$srv_pid"
		sleep 1
		t0=$(now_ms)
		run_bg "$lab-server" "$srv_ns" "$quictun" "${srv_args[@]}"
		srv_pid=$last_pid
		ms=$(first_reply "$cli_ns" "$t0") || die "$1: no reply in 10 s"
		record "$1" "$ms"
		sleep 1
	done
}

case_restart_idle() {
	local t0 ms i n end
	for ((i = 0; i < runs; i++)); do
		check_deadline
		n=$(count_lines "$lab-client" 'msg="tunnel up"')
		kill -KILL "$srv_pid"
		wait "$srv_pid" 2>/dev/null || true
		forget "$srv_pid"
		sleep 1
		t0=$(now_ms)
		run_bg "$lab-server" "$srv_ns" "$quictun" "${srv_args[@]}"
		srv_pid=$last_pid
		end=$((SECONDS + 15))
		until (($(count_lines "$lab-client" 'msg="tunnel up"') > n)); do
			((SECONDS < end)) || die "restart-idle: no new tunnel in 15 s"
			sleep 0.02
		done
		ms=$(($(now_ms) - t0))
		record restart-idle "$ms"
		sleep 1
	done
}

# move_addr CASE GAP: move the client from one address to the other, RUNS
# times; with GAP 0 the new address comes before the old one goes, else the
# client has none for GAP seconds. Records CASE: time to the first reply.
move_addr() {
	local name=$1 gap=$2 t0 ms i cur=10.0.0.11 new
	for ((i = 0; i < runs; i++)); do
		check_deadline
		new=10.0.0.21
		[ "$cur" = 10.0.0.21 ] && new=10.0.0.11
		if ((gap == 0)); then
			ip -n "$cli_ns" addr add "$new/24" dev eth0
			ip -n "$cli_ns" addr del "$cur/24" dev eth0
		else
			ip -n "$cli_ns" addr del "$cur/24" dev eth0
			sleep "$gap"
			ip -n "$cli_ns" addr add "$new/24" dev eth0
		fi
		t0=$(now_ms)
		cur=$new
		ms=$(first_reply "$cli_ns" "$t0") || die "$name: no reply in 10 s"
		record "$name" "$ms"
		sleep 1
	done
}

case_addr() { move_addr addr 0; }

case_noaddr() { move_addr noaddr 3; }

case_blocked() {
	local t0 ms i
	for ((i = 0; i < runs; i++)); do
		check_deadline
		ip netns exec "$cli_ns" nft -f - <<-EOF || die "nft block"
			table inet qtrec$$ {
				chain out { type filter hook output priority 0; policy accept; udp dport 4433 drop; }
				chain in { type filter hook input priority 0; policy accept; udp sport 4433 drop; }
			}
		EOF
		sleep 8
		ip netns exec "$cli_ns" nft delete table inet "qtrec$$"
		t0=$(now_ms)
		ms=$(first_reply "$cli_ns" "$t0") || die "blocked: no reply in 10 s"
		record blocked "$ms"
		sleep 1
	done
}

case_nat() {
	local t0 ms i r=${prefix}nat-router
	for ((i = 0; i < runs; i++)); do
		check_deadline
		ip -n "$r" addr del 10.0.0.254/24 dev out0
		ip -n "$r" addr add 10.0.0.254/24 dev out0
		t0=$(now_ms)
		ms=$(first_reply "$cli_ns" "$t0") || die "nat: no reply in 10 s"
		record nat "$ms"
		sleep 1
	done
}

# teardown: stop this lab's processes and remove its namespaces.
teardown() {
	stop_pid "$cli_pid"
	stop_pid "$srv_pid"
	local x
	for x in router server c1; do delns "$lab-$x"; done
}

step "quictun recovery times: ${cases[*]}; $runs runs each"
for c in "${cases[@]}"; do
	check_deadline
	step "$c"
	case $c in
	restart) lab restart && case_restart restart KILL ;;
	restart-term) lab term && case_restart restart-term TERM ;;
	restart-idle) lab idle && case_restart_idle ;;
	addr) lab addr && case_addr ;;
	noaddr) lab noaddr && case_noaddr ;;
	blocked) lab blocked --keepalive 1s --idle-timeout 5s && case_blocked ;;
	nat) nat_lab && case_nat ;;
	esac
	if kill -0 "$cli_pid" 2>/dev/null; then :; else die "$c: the client exited"; fi
	teardown
done

# stats "v1 v2 …": min median max (median of an even count: mean of the two
# in the middle).
stats() {
	tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{v[NR] = $1} END {
		m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%d %d %d\n", v[1], m, v[NR] }'
}

step "results (ms; $runs runs each)"
printf '%-13s %8s %8s %8s   %s\n' case min median max runs
{
	printf '{\n  "date": "%s",\n  "commit": "%s",\n  "kernel": "%s",\n  "runs_per_case": %d,\n  "cases": {' \
		"$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" "$(uname -r)" "$runs"
	sep=""
	for c in "${cases[@]}"; do
		read -r mn md mx < <(stats "${results[$c]}")
		printf '%-13s %8d %8d %8d   %s\n' "$c" "$mn" "$md" "$mx" "${results[$c]}" >&3
		vals=$(tr -s ' ' <<<"${results[$c]}" | sed 's/ $//; s/ /, /g')
		printf '%s\n    "%s": {"median_ms": %d, "min_ms": %d, "max_ms": %d, "runs_ms": [%s]}' "$sep" "$c" "$md" "$mn" "$mx" "$vals"
		sep=","
	done
	printf '\n  }\n}\n'
} 3>&1 >"$tmp/recovery.json"
mkdir -p "$(dirname "$json")"
cp "$tmp/recovery.json" "$json"
say "==> wrote $json"
