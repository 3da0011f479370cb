#!/usr/bin/env bash
# A cached debootstrap chroot for benchmarks and end-to-end tests.
#
#   scripts/chroot.sh tarball       print the cached tarball's path, building it if absent
#   scripts/chroot.sh extract DIR   unpack a fresh copy into DIR (which must be empty or absent)
#
# The tree is debootstrap --variant=minbase of $DEBSEAL_SUITE (bookworm) for
# the machine's architecture, from the Debian mirror in the machine's apt
# sources (deb.debian.org when none is found). It is kept as a tarball in
# $DEBSEAL_CACHE (/var/tmp/debseal-cache) between runs and rebuilt when
# absent; building takes a minute or two, extracting a few seconds.
set -euo pipefail
cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}
suite=${DEBSEAL_SUITE:-bookworm}
arch=$(dpkg --print-architecture)
tarball=$cache/$suite-minbase-$arch.tar

mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

build() {
	command -v debootstrap >/dev/null || { echo "chroot.sh: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
	mkdir -p "$cache"
	local tmp
	tmp=$(mktemp -d "$cache/build.XXXXXX")
	trap 'rm -rf "$tmp"' RETURN
	echo "chroot.sh: debootstrap --variant=minbase $suite from $(mirror) (cached in $tarball)" >&2
	if ! debootstrap --variant=minbase "$suite" "$tmp/root" "$(mirror)" >"$tmp/log" 2>&1; then
		tail -n 30 "$tmp/log" >&2
		exit 1
	fi
	rm -rf "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/root/var/lib/apt/lists/"*_Packages 2>/dev/null || true
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/root" -cf "$tmp/out.tar" .
	mv "$tmp/out.tar" "$tarball"
}

case "${1:-}" in
tarball)
	[ -s "$tarball" ] || build
	echo "$tarball"
	;;
extract)
	dir=${2:?usage: chroot.sh extract DIR}
	[ -s "$tarball" ] || build
	mkdir -p "$dir"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$dir" -xf "$tarball"
	;;
*)
	echo "usage: chroot.sh tarball | extract DIR" >&2
	exit 64
	;;
esac
