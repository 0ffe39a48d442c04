#!/usr/bin/env bash
# third_party/quic-go.sh — make third_party/quic-go: quic-go at the version
# in quic-go.version, cut down to the packages quictun builds, with
# quic-go.patch applied and its import paths rewritten to
# github.com/quictun/quictun/third_party/quic-go, so that the copy is a
# part of our module (no replace line: go install and go get work). See
# third_party/README.md.
#
#   third_party/quic-go.sh           rewrite third_party/quic-go
#   third_party/quic-go.sh --check   fail if third_party/quic-go is not
#                                    exactly what the first form would write
#   third_party/quic-go.sh --test    run quic-go's own tests of the patched
#                                    packages (and its datagram integration
#                                    tests) on the whole patched module
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
dest=$here/quic-go
patchfile=$here/quic-go.patch

# The packages of quic-go that quictun's build uses (go list -deps ./... in
# the repository). A newer quic-go that imports another one fails to build
# until it is added here.
pkgs=(
	.
	internal/ackhandler
	internal/congestion
	internal/handshake
	internal/monotime
	internal/protocol
	internal/qerr
	internal/utils
	internal/utils/linkedlist
	internal/utils/minheap
	internal/utils/ringbuffer
	internal/wire
	qlog
	qlogwriter
	qlogwriter/jsontext
	quicvarint
)

mode=write
case "${1:-}" in
--check) mode=check ;;
--test) mode=test ;;
"") ;;
*)
	echo "usage: $0 [--check | --test]" >&2
	exit 2
	;;
esac

upstream=github.com/quic-go/quic-go
fork=github.com/quictun/quictun/third_party/quic-go
version=$(tr -d '[:space:]' <"$here/quic-go.version")
if [ -z "$version" ]; then
	echo "error: $here/quic-go.version is empty: it holds the upstream version, e.g. v0.65.0" >&2
	exit 1
fi
# Our go.mod does not require quic-go (the copy is part of our module);
# asking for the version itself fetches the upstream source.
src=$(cd "$root" && go mod download -json "$upstream@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
	echo "error: could not download $upstream@$version" >&2
	exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# apply_patch DIR: make DIR writable and apply quic-go.patch in it, or exit.
apply_patch() {
	chmod -R u+w "$1"
	if ! (cd "$1" && patch -p1 --quiet --no-backup-if-mismatch <"$patchfile"); then
		echo "error: quic-go.patch does not apply to quic-go $version; port it by hand (third_party/README.md)" >&2
		exit 1
	fi
}

if [ "$mode" = test ]; then
	# The whole module, tests included, with the patch: quic-go's own
	# tests say whether the patch broke something they cover.
	cp -r "$src" "$work/full"
	apply_patch "$work/full"
	cd "$work/full"
	go test -count=1 . ./internal/wire ./internal/protocol
	go test -count=1 -run 'Datagram|GSO' ./integrationtests/self
	echo "quic-go $version + quic-go.patch: its tests pass"
	exit 0
fi

out=$work/quic-go
mkdir -p "$out"
cp "$src/LICENSE" "$out/"
for p in "${pkgs[@]}"; do
	mkdir -p "$out/$p"
	for f in "$src/$p"/*.go; do
		case "$f" in *_test.go) continue ;; esac
		cp "$f" "$out/$p/"
	done
done
apply_patch "$out"
# The path rewrite: every import path of quic-go's own packages (a quoted
# string that is exactly the module path or one of its packages) names the
# copy instead. Nothing else in the files changes; gofmt then re-sorts the
# import blocks, as it would for any hand edit.
find "$out" -name '*.go' -exec sed -i -E "s#\"$upstream(/[A-Za-z0-9_./-]*)?\"#\"$fork\\1\"#g" {} +
gofmt -w "$out"
printf 'quic-go %s from %s with quic-go.patch applied and its import paths\nrewritten to %s, by third_party/quic-go.sh.\nDo not edit: change quic-go.patch and run the script.\n' \
	"$version" "https://$upstream" "$fork" >"$out/QUICTUN"

if [ "$mode" = check ]; then
	if ! diff -r "$out" "$dest"; then
		echo "error: third_party/quic-go differs from quic-go $version + quic-go.patch + the path rewrite; run third_party/quic-go.sh" >&2
		exit 1
	fi
	echo "third_party/quic-go is quic-go $version + quic-go.patch + the path rewrite, nothing else"
	exit 0
fi
rm -rf "$dest"
cp -r "$out" "$dest"
echo "wrote third_party/quic-go: quic-go $version + quic-go.patch + the path rewrite"
