#!/usr/bin/env bash
# third_party/quic-go.sh — make third_party/quic-go: quic-go at the version
# set below, cut down to the packages quictun builds, with quic-go.patch applied and its
# imports rewritten to the copy's own path inside this module. See
# third_party/README.md.
#
#   third_party/quic-go.sh           rewrite third_party/quic-go
#   third_party/quic-go.sh --check   fail if third_party/quic-go is not
#                                    exactly what the first form would write
#   third_party/quic-go.sh --test    run quic-go's own tests of the patched
#                                    packages (and its datagram integration
#                                    tests) on the whole patched module,
#                                    under quic-go's own import path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
dest=$here/quic-go
patchfile=$here/quic-go.patch

# The one place the version lives: go.mod no longer names quic-go. sum is
# the go.sum hash of that version's module zip; the module cache's copy must
# have it, so the copy starts from the code upstream published.
version=v0.65.0
sum=h1:BJQSjdTvLPLmWtaCupUphRbgxgpZhdO/GMpr9Eoe3B4=
upstream=github.com/quic-go/quic-go
# The copy's import path: a package of this module, so `go install
# github.com/quictun/quictun/cmd/quictun@latest` and modules that import
# quictun build the patched code with no replace line.
path=github.com/quictun/quictun/third_party/quic-go

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

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT

# Outside any module, so that go.mod and go.sum stay as they are.
info=$(cd "$work" && go mod download -json "$upstream@$version")
src=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
got=$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$src" ] || [ ! -d "$src" ]; then
	echo "error: could not download $upstream@$version" >&2
	exit 1
fi
if [ "$got" != "$sum" ]; then
	echo "error: $upstream@$version in the module cache has sum $got, not $sum" >&2
	exit 1
fi

# apply_patch DIR: make DIR writable and apply quic-go.patch in it, or exit.
apply_patch() {
	chmod -R u+w "$1"
	if ! (cd "$1" && patch -p1 --quiet --no-backup-if-mismatch <"$patchfile"); then
		echo "error: quic-go.patch does not apply to quic-go $version; port it by hand (third_party/README.md)" >&2
		exit 1
	fi
}

# rewrite_imports DIR: in every .go file under DIR, change the import paths
# $upstream and $upstream/... to $path and $path/..., in import
# declarations only (comments, URLs and strings keep the upstream name).
rewrite_imports() {
	find "$1" -name '*.go' | LC_ALL=C sort | while read -r f; do
		awk -v from="\"$upstream" -v to="\"$path" '
			function rewrite(line,    i, c) {
				i = index(line, from)
				if (i == 0) return line
				c = substr(line, i + length(from), 1)
				if (c != "\"" && c != "/") return line
				return substr(line, 1, i - 1) to substr(line, i + length(from))
			}
			/^import \($/ { block = 1; print; next }
			block && /^\)$/ { block = 0; print; next }
			block { print rewrite($0); next }
			/^import / { print rewrite($0); next }
			{ print }
		' "$f" >"$f.new"
		mv "$f.new" "$f"
	done
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
rewrite_imports "$out"
printf 'quic-go %s from %s with quic-go.patch applied and its imports\nrewritten to %s, by third_party/quic-go.sh.\nDo not edit: change quic-go.patch and run the script.\n' \
	"$version" "https://$upstream" "$path" >"$out/QUICTUN"
# What the copy is made of, for `quictun version`: the build info cannot
# say it, because the copy is a package of quictun's own module. Written
# here, not by hand, so it changes whenever the version or the patch does;
# --check fails if it is stale.
patchsum=$(sha256sum "$patchfile" | cut -d' ' -f1)
cat >"$out/quictun_version.go" <<EOF
// Code generated by third_party/quic-go.sh; DO NOT EDIT.

package quic

// UpstreamVersion is the release of $upstream this copy was
// made from. It is quictun's addition to the copy.
const UpstreamVersion = "$version"

// PatchSHA256 is the SHA-256, in hex, of third_party/quic-go.patch, the
// patch applied to make this copy. It is quictun's addition to the copy.
const PatchSHA256 = "$patchsum"
EOF

if [ "$mode" = check ]; then
	if ! diff -r "$out" "$dest"; then
		echo "error: third_party/quic-go differs from quic-go $version + quic-go.patch + the import rewrite; run third_party/quic-go.sh" >&2
		exit 1
	fi
	echo "third_party/quic-go is quic-go $version + quic-go.patch + the import rewrite"
	exit 0
fi
rm -rf "$dest"
cp -r "$out" "$dest"
echo "wrote third_party/quic-go: quic-go $version + quic-go.patch + the import rewrite"
