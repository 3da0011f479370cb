#!/usr/bin/env bash
# The cached inputs of the Debian 12 -> 13 upgrade test and benchmark:
#
#   scripts/upgrade-chroot.sh tarball   print the bookworm tarball's path, building it if absent
#   scripts/upgrade-chroot.sh debs      print the trixie cache directory, building it (and the
#                                       tarball) if absent; it holds archives/*.deb and lists/
#   scripts/upgrade-chroot.sh key       print the key the two are named by
#   scripts/upgrade-chroot.sh flags     print the apt-get flags of the upgrade (the test and
#                                       the benchmark use them too)
#
# The tarball is scripts/chroot.sh's bookworm minbase with i386 added and
# $PACKAGES installed (apt's defaults, so Recommends too): about 300
# packages, a realistic server. No service is ever started (policy-rc.d
# stays in the tree, the test's upgrades need it too). Its apt lists are
# removed, so the tree knows no suite until the test gives it one.
#
# The trixie directory is made by doing the upgrade itself once, in a
# throwaway copy, exactly as the test does (sources -> trixie, apt-get
# upgrade --without-new-pkgs, then apt-get full-upgrade): every .deb that
# upgrade fetched, and the trixie lists it ran with, are kept. The test
# then runs with --no-download and needs no network.
#
# Both are named by a key hashed from everything that decides their
# contents (this list, the suites, the architecture, the apt flags), kept
# in $DEBSEAL_CACHE (/var/tmp/debseal-cache), and rebuilt only when absent.
# The first build takes several minutes (about 250 MB downloaded).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}
arch=$(dpkg --print-architecture)
from=bookworm
to=trixie
# The realistic set issue 13 asks for, plus what a small server has.
PACKAGES="systemd systemd-sysv dbus libpam-systemd openssh-server sudo python3 python3-apt perl man-db manpages
locales procps zlib1g:i386 libc6:i386 less vim-tiny nano curl wget ca-certificates gnupg iproute2 iputils-ping
cron logrotate rsyslog bash-completion file xz-utils bzip2 zstd unzip unattended-upgrades git make openssl tzdata
kmod udev net-tools lsof strace rsync psmisc ucf lsb-release tmux htop ifupdown isc-dhcp-client"
# Flags both the cache build and the test give apt-get for the upgrade.
APTFLAGS="-q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
key=$(printf '%s\n' v1 "$from" "$to" "$arch" "$PACKAGES" "$APTFLAGS" | sha256sum | cut -c1-12)
tarball=$cache/$from-upgrade-$arch-$key.tar
debs=$cache/$to-upgrade-$arch-$key

mounts=()
cleanup_mounts() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
	done
	mounts=()
}

# prepare ROOT: /proc, a private devpts, resolv.conf, policy-rc.d.
prepare() {
	local r=$1
	cp /etc/resolv.conf "$r/etc/resolv.conf.debseal" && rm -f "$r/etc/resolv.conf" && mv "$r/etc/resolv.conf.debseal" "$r/etc/resolv.conf"
	mount -t proc proc "$r/proc" && mounts+=("$r/proc")
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$r/dev/pts" && mounts+=("$r/dev/pts")
	rm -f "$r/dev/ptmx" && ln -s pts/ptmx "$r/dev/ptmx"
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d" && chmod 755 "$r/usr/sbin/policy-rc.d"
}

in_chroot() {
	chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root TERM=dumb "${@:2}"
}

mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

build_tarball() {
	mkdir -p "$cache"
	local tmp
	tmp=$(mktemp -d "$cache/upgrade-build.XXXXXX")
	trap 'cleanup_mounts; rm -rf "$tmp"' EXIT
	echo "upgrade-chroot.sh: building $tarball" >&2
	scripts/chroot.sh extract "$tmp/root"
	prepare "$tmp/root"
	echo "deb $(mirror) $from main" >"$tmp/root/etc/apt/sources.list"
	in_chroot "$tmp/root" dpkg --add-architecture i386
	# shellcheck disable=SC2086
	if ! { in_chroot "$tmp/root" apt-get -q update &&
		in_chroot "$tmp/root" apt-get $APTFLAGS install $PACKAGES; } >"$tmp/log" 2>&1; then
		tail -n 40 "$tmp/log" >&2
		echo "upgrade-chroot.sh: installing the $from set failed (log above)" >&2
		exit 1
	fi
	in_chroot "$tmp/root" apt-get clean
	rm -rf "$tmp/root/var/lib/apt/lists/"*_* 2>/dev/null || true
	cleanup_mounts
	rm -f "$tmp/root/etc/resolv.conf"
	echo "upgrade-chroot.sh: $(in_chroot "$tmp/root" dpkg-query -W | wc -l) packages" >&2
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/root" -cf "$tmp/out.tar" .
	mv "$tmp/out.tar" "$tarball"
	rm -rf "$tmp"
	trap - EXIT
}

build_debs() {
	local tmp
	tmp=$(mktemp -d "$cache/upgrade-debs.XXXXXX")
	trap 'cleanup_mounts; rm -rf "$tmp"' EXIT
	echo "upgrade-chroot.sh: building $debs (doing the upgrade once, with downloads)" >&2
	mkdir -p "$tmp/root"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$tmp/root" -xf "$tarball"
	prepare "$tmp/root"
	echo "deb $(mirror) $to main" >"$tmp/root/etc/apt/sources.list"
	local rc=0
	# shellcheck disable=SC2086
	{
		in_chroot "$tmp/root" apt-get -q update &&
			in_chroot "$tmp/root" apt-get $APTFLAGS upgrade --without-new-pkgs &&
			in_chroot "$tmp/root" apt-get $APTFLAGS full-upgrade
	} >"$tmp/log" 2>&1 || rc=$?
	if [ "$rc" != 0 ]; then
		# The .debs are what matters; the test compares this failure with debseal's.
		tail -n 40 "$tmp/log" >&2
		echo "upgrade-chroot.sh: warning: the plain upgrade exited $rc (log above); keeping its downloads" >&2
	fi
	cleanup_mounts
	mkdir -p "$tmp/out/archives" "$tmp/out/lists"
	mv "$tmp/root/var/cache/apt/archives/"*.deb "$tmp/out/archives/"
	find "$tmp/root/var/lib/apt/lists" -maxdepth 1 -type f -name '*_*' -exec mv {} "$tmp/out/lists/" \;
	echo "deb $(mirror) $to main" >"$tmp/out/sources.list"
	cp "$tmp/log" "$tmp/out/upgrade.log"
	echo "upgrade-chroot.sh: $(ls "$tmp/out/archives" | wc -l) .debs, $(du -sh "$tmp/out/archives" | cut -f1)" >&2
	mv "$tmp/out" "$debs"
	chattr -R -i "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
	trap - EXIT
}

case "${1:-}" in
tarball)
	[ -s "$tarball" ] || build_tarball
	echo "$tarball"
	;;
debs)
	[ -s "$tarball" ] || build_tarball
	[ -d "$debs/archives" ] || build_debs
	echo "$debs"
	;;
key)
	echo "$key"
	;;
flags)
	echo "$APTFLAGS"
	;;
*)
	echo "usage: upgrade-chroot.sh tarball | debs | key | flags" >&2
	exit 64
	;;
esac
