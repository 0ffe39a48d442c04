# lib.sh — helpers shared by demo.sh, bench.sh and recovery.sh (sourced,
# not run). They keep their state in the caller's variables:
#   tmp         the script's temp directory (logs go to $tmp/NAME.log)
#   pids        every background process the script started
#   namespaces  every network namespace the script made
#   nettool     (optional) the traffic helper: when set, wait_ping pings
#               with `nettool ping` instead of the ping program
# Processes are only ever signalled by the PIDs recorded here, never by
# name, and namespaces are only those in $namespaces.

say() { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }

# die MESSAGE: print it and the last lines of every log in $tmp, and exit 1
# (the caller's EXIT trap cleans up).
die() {
	local log
	printf '    FAILED: %s\n' "$*" >&2
	for log in "${tmp:-/nonexistent}"/*.log; do
		[ -f "$log" ] || continue
		printf -- '---- last lines of %s:\n' "$(basename "$log")" >&2
		tail -n 20 "$log" >&2
	done
	exit 1
}

# add_ns NAME: make namespace NAME with lo up, and record it.
add_ns() {
	ip netns add "$1" || die "ip netns add $1"
	namespaces+=("$1")
	ip -n "$1" link set lo up
}

# del_ns NAME: delete namespace NAME and drop it from the record.
del_ns() {
	local keep=() x
	ip netns del "$1" 2>/dev/null || true
	for x in "${namespaces[@]}"; do [ "$x" = "$1" ] || keep+=("$x"); done
	namespaces=("${keep[@]}")
}

# run_bg NAME NS ARGS...: run ARGS in namespace NS in the background (ip
# netns exec execs, so the PID is the program's own), output appended to
# $tmp/NAME.log; records the PID and sets $last_pid.
run_bg() {
	local name=$1 n=$2
	shift 2
	ip netns exec "$n" "$@" >>"$tmp/$name.log" 2>&1 &
	last_pid=$!
	pids+=("$last_pid")
}

# stop_pids PID...: SIGTERM, wait up to 5 s each, then SIGKILL; reap them.
stop_pids() {
	local pid i
	for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "$@"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

# forget PID...: drop reaped processes from $pids, so that cleanup never
# signals a PID the system may have reused.
forget() {
	local keep=() p q drop
	for p in "${pids[@]}"; do
		drop=0
		for q in "$@"; do [ "$p" = "$q" ] && drop=1; done
		[ "$drop" -eq 1 ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# stop_pid PID: stop_pids and forget one process.
stop_pid() {
	stop_pids "$1"
	forget "$1"
}

# cleanup_common: stop every recorded process, delete every recorded
# namespace (for the caller's EXIT trap, which then removes $tmp).
cleanup_common() {
	((${#pids[@]})) && stop_pids "${pids[@]}"
	local n
	for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null; done
	return 0
}

# wait_ping NS ADDR [SECONDS]: until one echo is answered, at most SECONDS
# (default 15).
wait_ping() {
	local end=$((SECONDS + ${3:-15}))
	local cmd=(ping -n -c 1 -W 1)
	[ -n "${nettool:-}" ] && cmd=("$nettool" ping -count 1 -wait 1s)
	while ((SECONDS < end)); do
		ip netns exec "$1" "${cmd[@]}" "$2" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}
