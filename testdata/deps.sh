#!/usr/bin/env bash
# deps.sh — the programs that `make demo` and `make test` run besides Go,
# and the Debian packages that have them. Both targets call it first.
#
#   testdata/deps.sh install|check demo|test
#
# Nothing missing: it prints nothing. Something missing:
#   install  as root on a machine with apt-get (Debian, Ubuntu): installs
#            the packages, saying which and why, then checks again;
#   check    (or not root, or no apt-get): prints the one line that
#            installs them and fails.
# For test without root a missing program is only noted: every test that
# runs one of them needs root and skips without it.
set -euo pipefail

usage() { echo "usage: testdata/deps.sh install|check demo|test" >&2; exit 2; }
[ $# -eq 2 ] || usage
mode=$1 set=$2
case $mode in install | check) ;; *) usage ;; esac

# program:package. The demo pings and moves data with its own helper
# (testdata/netns/nettool), so it needs ip alone; the tests also run ping
# (ping -M do, -I dev), tc and ss (iproute2), nft, openssl, easy-rsa's
# easyrsa (the certificate recipes), sysctl (procps), setpriv
# (util-linux), and zsh, groff, systemd-analyze and man for the
# completion, man page and systemd unit tests.
case $set in
demo) tools=(ip:iproute2) ;;
test) tools=(ip:iproute2 tc:iproute2 ss:iproute2 ping:iputils-ping nft:nftables
	openssl:openssl easyrsa:easy-rsa sysctl:procps setpriv:util-linux
	zsh:zsh groff:groff-base systemd-analyze:systemd man:man-db) ;;
*) usage ;;
esac

# have PROGRAM: on PATH, or where Debian puts it (a user's PATH may lack
# the sbin directories; easy-rsa keeps easyrsa out of PATH).
have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	local d
	for d in /usr/sbin /sbin /usr/share/easy-rsa; do [ -x "$d/$1" ] && return 0; done
	return 1
}

# missing sets $progs and $pkgs to what is missing (each package once).
missing() {
	progs=() pkgs=()
	local t p
	for t in "${tools[@]}"; do
		have "${t%%:*}" && continue
		progs+=("${t%%:*}")
		p=${t#*:}
		[[ " ${pkgs[*]} " == *" $p "* ]] || pkgs+=("$p")
	done
}

missing
[ ${#progs[@]} -eq 0 ] && exit 0

what="make $set needs ${progs[*]}"
line="apt-get install -y ${pkgs[*]}"
if [ "$(id -u)" -ne 0 ]; then
	if [ "$set" = test ]; then
		echo "note: $what for the end-to-end tests, which skip without root; as root: $line (or sudo make deps)"
		exit 0
	fi
	echo "$what: run as root (sudo make $set), which installs them on Debian: $line" >&2
	exit 1
fi
if [ "$mode" = check ] || ! command -v apt-get >/dev/null; then
	echo "$what: install them (Debian: $line)" >&2
	exit 1
fi

echo "==> $what: $line"
want=("${pkgs[@]}")
export DEBIAN_FRONTEND=noninteractive
apt_get() { timeout 300 apt-get -q "$@"; }
# A fresh machine (or container) may have no package lists yet.
apt_get install -y --no-install-recommends "${pkgs[@]}" ||
	{ apt_get update && apt_get install -y --no-install-recommends "${pkgs[@]}"; } ||
	{ echo "apt-get failed: install them by hand: $line" >&2; exit 1; }
missing
if [ ${#progs[@]} -ne 0 ]; then
	echo "still missing after apt-get: ${progs[*]} (packages ${pkgs[*]})" >&2
	exit 1
fi
echo "==> installed ${want[*]}"
