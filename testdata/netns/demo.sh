#!/usr/bin/env bash
# demo.sh — quictun end to end on one machine, in network namespaces.
#
# Makes a throwaway PKI, a star underlay (a router namespace with a bridge,
# the server and two clients on 10.0.0.0/24), runs `quictun listen` and two
# `quictun connect`, pings server <-> clients and client <-> client through
# the tunnel, moves 20 MB with a SHA-256 check, prints what happened, and
# removes everything it made (namespaces, processes, temp files) on exit.
#
# Needs root, iproute2 (ip), and Go to build quictun and the traffic helper
# (which also pings, so no ping program is needed): GO=/path/to/go, else go
# on PATH, else /usr/local/go/bin/go (sudo's secure_path drops it from
# PATH); QUICTUN=/path/to/quictun and NETTOOL=/path/to/nettool skip the
# builds. Run from the repository root: `make demo` or
# `sudo testdata/netns/demo.sh`. Exits non-zero if a step fails.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=lib.sh
. "$repo/testdata/netns/lib.sh"
prefix="qtdemo$$-"
tmp=""
namespaces=()
pids=()

ok() { printf '    ok: %s\n' "$*"; }

cleanup() {
	local rc=$?
	set +e
	local nproc=${#pids[@]}
	cleanup_common
	[ -n "$tmp" ] && rm -rf "$tmp"
	if [ "$rc" -eq 0 ]; then
		say "==> cleaned up: ${#namespaces[@]} namespaces, $nproc processes, temp files"
		say "demo passed"
	else
		say "==> cleaned up; demo FAILED (exit $rc)" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- preconditions ---
if [ "$(id -u)" -ne 0 ]; then
	say "demo.sh needs root (it creates network namespaces and TUN devices): run sudo make demo" >&2
	exit 1
fi
command -v ip >/dev/null || {
	say "demo.sh needs ip: apt-get install -y iproute2 (or: sudo make deps)" >&2
	exit 1
}
[ -e /dev/net/tun ] || modprobe tun 2>/dev/null || true
[ -e /dev/net/tun ] || { say "no /dev/net/tun: load the tun module (modprobe tun)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/quictun-demo.XXXXXX)

# --- build ---
step "build"
quictun=${QUICTUN:-}
nettool=${NETTOOL:-}
if [ -z "$quictun" ] && [ -x "$repo/bin/quictun" ]; then quictun=$repo/bin/quictun; fi
if [ -z "$quictun" ] || [ -z "$nettool" ]; then
	go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
	[ -x "$go" ] || command -v "$go" >/dev/null ||
		die "no go command at $go (GO, else go on PATH, else /usr/local/go/bin/go): install Go, or give GO=/path/to/go (or QUICTUN= and NETTOOL=)"
fi
if [ -z "$quictun" ]; then
	(cd "$repo" && "$go" build -o "$tmp/quictun" ./cmd/quictun) || die "go build ./cmd/quictun"
	quictun=$tmp/quictun
fi
if [ -z "$nettool" ]; then
	(cd "$repo" && "$go" build -o "$tmp/nettool" ./testdata/netns/nettool) || die "go build ./testdata/netns/nettool"
	nettool=$tmp/nettool
fi
ok "quictun: $quictun"
ok "nettool (transfers and pings): $nettool"

# --- PKI ---
step "PKI: a CA, a server certificate for 10.0.0.1, laptop1 (10.77.0.11), laptop2 (10.77.0.12)"
pki=$tmp/pki
{
	"$quictun" cert ca --dir "$pki" --name "quictun demo CA" &&
		"$quictun" cert issue --dir "$pki" --name server --server --host 10.0.0.1 &&
		"$quictun" cert issue --dir "$pki" --name laptop1 --ip 10.77.0.11/24 --ip fd77::11/64 &&
		"$quictun" cert issue --dir "$pki" --name laptop2 --ip 10.77.0.12/24 --ip fd77::12/64
} >"$tmp/cert.out" 2>&1 || { cat "$tmp/cert.out" >&2; die "quictun cert"; }
ok "$(ls "$pki" | tr '\n' ' ')"
"$quictun" cert show "$pki/laptop1.crt" 2>&1 | sed 's/^/    | /' || true

# --- namespaces ---
step "namespaces ${prefix}{router,server,laptop1,laptop2}: bridge underlay 10.0.0.0/24"
ns() { printf '%s%s' "$prefix" "$1"; }
for role in router server laptop1 laptop2; do add_ns "$(ns "$role")"; done
r=$(ns router)
ip -n "$r" link add br0 type bridge && ip -n "$r" link set br0 up || die "bridge"
i=0
for role in server laptop1 laptop2; do
	n=$(ns "$role")
	addr=10.0.0.$((i == 0 ? 1 : 10 + i))
	ip -n "$n" link add eth0 type veth peer name "p$i" netns "$r" &&
		ip -n "$r" link set "p$i" master br0 up &&
		ip -n "$n" link set eth0 up &&
		ip -n "$n" addr add "$addr/24" dev eth0 || die "veth for $role"
	ok "$role: eth0 $addr/24"
	i=$((i + 1))
done

# ping_all NS ADDR: 3 echoes, all answered (nettool ping exits 1
# otherwise); prints the rtt line.
ping_all() {
	local out
	out=$(ip netns exec "$1" "$nettool" ping -count 3 -interval 200ms -wait 5s "$2" 2>&1) || { say "$out" >&2; return 1; }
	grep -q ' 0% packet loss' <<<"$out" || { say "$out" >&2; return 1; }
	ok "${1#"$prefix"} -> $2: $(grep -o 'rtt.*' <<<"$out")"
}

# --- quictun ---
step "start the server (TUN hub 10.77.0.1/24, fd77::1/64) and both laptops"
run_bg server "$(ns server)" "$quictun" listen --listen 10.0.0.1:4433 \
	--cert "$pki/server.crt" --key "$pki/server.key" --ca "$pki/ca.crt" \
	--mode tun --dev qt0 --ip 10.77.0.1/24 --ip fd77::1/64
for c in laptop1 laptop2; do
	run_bg "$c" "$(ns "$c")" "$quictun" connect --server 10.0.0.1:4433 \
		--cert "$pki/$c.crt" --key "$pki/$c.key" --ca "$pki/ca.crt" --dev qt0
done
for c in laptop1 laptop2; do
	wait_ping "$(ns "$c")" 10.77.0.1 15 || die "$c: no answer from 10.77.0.1 through the tunnel in 15 s"
	ok "$c: tunnel up; qt0: $(ip -n "$(ns "$c")" -br addr show dev qt0 | awk '{$1=$1; print}')"
done

step "ping through the tunnel"
ping_all "$(ns laptop1)" 10.77.0.1 || die "laptop1 -> server"
ping_all "$(ns server)" 10.77.0.11 || die "server -> laptop1"
ping_all "$(ns server)" 10.77.0.12 || die "server -> laptop2"
ping_all "$(ns laptop1)" 10.77.0.12 || die "laptop1 -> laptop2 (through the hub)"
wait_ping "$(ns laptop1)" fd77::1 15 || die "laptop1 -> fd77::1"
ping_all "$(ns laptop1)" fd77::1 || die "laptop1 -> fd77::1 (IPv6)"

# transfer FROM_NS TO_NS ADDR:PORT: 20 MB, SHA-256 compared by nettool.
transfer() {
	local from=$1 to=$2 addr=$3 rpid out
	ip netns exec "$to" "$nettool" recv -listen "$addr" -timeout 60s >"$tmp/recv.out" 2>&1 &
	rpid=$!
	pids+=("$rpid")
	out=$(ip netns exec "$from" "$nettool" send -to "$addr" -bytes $((20 << 20)) -timeout 60s 2>&1) || {
		say "$out" >&2
		return 1
	}
	local rc=0
	wait "$rpid" || rc=$?
	forget "$rpid"
	[ "$rc" -eq 0 ] || { cat "$tmp/recv.out" >&2; return 1; }
	grep -qx "$(grep '^bytes=' <<<"$out")" "$tmp/recv.out" || { say "$out" >&2; cat "$tmp/recv.out" >&2; return 1; }
	ok "${from#"$prefix"} -> ${to#"$prefix"}: $(grep '^bytes=' <<<"$out" | cut -c1-40)… received intact; $(grep -o 'in .*' <<<"$out")"
}

step "move 20 MB through the tunnel, SHA-256 checked at both ends"
transfer "$(ns laptop1)" "$(ns server)" 10.77.0.1:5001 || die "transfer laptop1 -> server"
transfer "$(ns server)" "$(ns laptop2)" 10.77.0.12:5002 || die "transfer server -> laptop2"
transfer "$(ns laptop2)" "$(ns laptop1)" 10.77.0.11:5003 || die "transfer laptop2 -> laptop1 (through the hub)"

step "stop the server (SIGTERM): it should exit 0 and remove qt0"
server_pid=${pids[0]}
kill -TERM "$server_pid"
for ((i = 0; i < 50; i++)); do
	kill -0 "$server_pid" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && die "server still running 5 s after SIGTERM"
rc=0
wait "$server_pid" || rc=$?
forget "$server_pid"
[ "$rc" -eq 0 ] || die "server exited $rc after SIGTERM"
if ip -n "$(ns server)" link show qt0 >/dev/null 2>&1; then die "server left qt0 behind"; fi
ok "server exited 0, qt0 removed"

step "the server's log lines about its clients"
grep -E 'msg="client|peer=laptop' "$tmp/server.log" | grep -v 'msg="dropped' | head -n 12 | sed 's/^/    | /' || true
dropped=$(grep -c 'msg="dropped' "$tmp/server.log" || true)
[ "$dropped" -eq 0 ] || say "    ($dropped \"dropped …\" lines left out)"
