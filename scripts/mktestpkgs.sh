#!/usr/bin/env bash
# Builds debseal's test packages with dpkg-deb --build into OUTDIR.
#
#   scripts/mktestpkgs.sh OUTDIR
#
# The packages cover what locking must get right: regular files in nested
# directories, a setuid binary, symlinks to package and non-package
# targets, hard links, a conffile, a name with spaces, a file under /var
# (excluded by default), a Multi-Arch: same library for amd64 and i386, a
# package whose preinst diverts another package's file with --rename, one
# whose postinst runs dpkg-statoverride --update on another package's file,
# a file trigger whose handler touches a file of the interested package, a
# package whose preinst kills dpkg (interrupted unpacks), a package without
# md5sums that overwrites another's file, a package with files on the EFI
# system partition, and a version 2.0 of the base package that drops a
# file (for upgrade tests). Maintainer scripts prefix paths with
# $DPKG_ROOT so they also work in a sandbox installed with --root and
# --force-script-chrootless. The build is deterministic (fixed mtimes).
set -euo pipefail
out=${1:?usage: mktestpkgs.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export SOURCE_DATE_EPOCH=1700000000

# control NAME VERSION ARCH [EXTRA-FIELDS...]
control() {
	local dir=$1 name=$2 version=$3 arch=$4
	shift 4
	mkdir -p "$dir/DEBIAN"
	{
		echo "Package: $name"
		echo "Version: $version"
		echo "Architecture: $arch"
		echo "Maintainer: debseal tests <tests@debseal.invalid>"
		echo "Section: misc"
		echo "Priority: optional"
		for f in "$@"; do echo "$f"; done
		echo "Description: debseal test package $name"
		echo " Built by scripts/mktestpkgs.sh for debseal's tests."
	} >"$dir/DEBIAN/control"
}

# md5sums DIR: like dh_md5sums, regular files except conffiles.
md5sums() {
	local dir=$1
	(
		cd "$dir"
		find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
			while IFS= read -r f; do
				if [ -f DEBIAN/conffiles ] && grep -qxF "/$f" DEBIAN/conffiles; then continue; fi
				md5sum "$f"
			done >DEBIAN/md5sums
	)
}

build() {
	local dir=$1
	[ -e "$dir/DEBIAN/no-md5sums" ] && rm "$dir/DEBIAN/no-md5sums" || md5sums "$dir"
	find "$dir" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	dpkg-deb --root-owner-group -Zgzip --build "$dir" "$out" >/dev/null
}

script() { # script DIR NAME BODY
	printf '#!/bin/sh\nset -e\n%s\n' "$3" >"$1/DEBIAN/$2"
	chmod 0755 "$1/DEBIAN/$2"
}

# --- dstest-base 1.0 and 2.0 ------------------------------------------------
base() {
	local version=$1 d="$work/base-$1"
	control "$d" dstest-base "$version" all
	mkdir -p "$d/usr/bin" "$d/usr/share/dstest/a/b/c" "$d/etc/dstest" "$d/var/lib/dstest" \
		"$d/usr/share/dstest/plugins" "$d/usr/share/doc/dstest-base"
	printf '#!/bin/sh\necho dstest tool %s\n' "$version" >"$d/usr/bin/dstest-tool"
	chmod 0755 "$d/usr/bin/dstest-tool"
	ln "$d/usr/bin/dstest-tool" "$d/usr/bin/dstest-tool-hardlink"
	printf '#!/bin/sh\necho setuid helper\n' >"$d/usr/bin/dstest-suid"
	chmod 4755 "$d/usr/bin/dstest-suid"
	printf 'divert me %s\n' "$version" >"$d/usr/bin/dstest-divertme"
	printf 'override me %s\n' "$version" >"$d/usr/bin/dstest-private"
	chmod 0755 "$d/usr/bin/dstest-divertme" "$d/usr/bin/dstest-private"
	ln -s dstest-tool "$d/usr/bin/dstest-link"
	ln -s /etc/hostname "$d/usr/share/dstest/hostname-link"
	echo "deep $version" >"$d/usr/share/dstest/a/b/c/deep.txt"
	echo "spaces $version" >"$d/usr/share/dstest/name with spaces.txt"
	echo "state" >"$d/var/lib/dstest/state"
	echo "setting = 1" >"$d/etc/dstest/dstest.conf"
	echo "/etc/dstest/dstest.conf" >"$d/DEBIAN/conffiles"
	echo "copyright" >"$d/usr/share/doc/dstest-base/copyright"
	if [ "$version" = 1.0 ]; then
		echo "only in 1.0" >"$d/usr/share/dstest/dropped-in-2.0.txt"
	fi
	echo "interest-noawait /usr/share/dstest/plugins" >"$d/DEBIAN/triggers"
	# The trigger handler also touches a file of the package itself (a
	# same-mode chmod, which changes nothing but fails with EPERM on an
	# immutable file): a run that activates the trigger must unlock the
	# interested package, or its configure fails half-way.
	script "$d" postinst '
if [ "$1" = triggered ]; then
	ls "$DPKG_ROOT/usr/share/dstest/plugins" >"$DPKG_ROOT/usr/share/dstest/plugins.cache"
	chmod 0755 "$DPKG_ROOT/usr/bin/dstest-tool"
fi'
	build "$d"
}
base 1.0
base 2.0

# --- dstest-multi: Multi-Arch: same, amd64 and i386 -------------------------
for arch in amd64 i386; do
	d="$work/multi-$arch"
	triplet=$([ "$arch" = amd64 ] && echo x86_64-linux-gnu || echo i386-linux-gnu)
	control "$d" dstest-multi 1.0 "$arch" "Multi-Arch: same"
	mkdir -p "$d/usr/lib/$triplet" "$d/usr/share/doc/dstest-multi"
	echo "lib for $arch" >"$d/usr/lib/$triplet/libdstest.so.1"
	echo "shared by both architectures" >"$d/usr/share/doc/dstest-multi/README"
	build "$d"
done

# --- dstest-diverter: diverts dstest-base's file with --rename --------------
d="$work/diverter"
control "$d" dstest-diverter 1.0 all "Depends: dstest-base"
mkdir -p "$d/usr/bin"
printf 'the diverter replacement\n' >"$d/usr/bin/dstest-divertme"
chmod 0755 "$d/usr/bin/dstest-divertme"
script "$d" preinst '
if [ "$1" = install ] || [ "$1" = upgrade ]; then
	dpkg-divert --package dstest-diverter --add --rename \
		--divert /usr/bin/dstest-divertme.distrib /usr/bin/dstest-divertme
fi'
script "$d" postrm '
if [ "$1" = remove ] || [ "$1" = abort-install ] || [ "$1" = disappear ]; then
	dpkg-divert --package dstest-diverter --remove --rename \
		--divert /usr/bin/dstest-divertme.distrib /usr/bin/dstest-divertme
fi'
build "$d"

# --- dstest-override: statoverride --update on dstest-base's file ----------
d="$work/override"
control "$d" dstest-override 1.0 all "Depends: dstest-base"
mkdir -p "$d/usr/share/doc/dstest-override"
echo "copyright" >"$d/usr/share/doc/dstest-override/copyright"
script "$d" postinst '
if [ "$1" = configure ] && ! dpkg-statoverride --list /usr/bin/dstest-private >/dev/null; then
	dpkg-statoverride --update --add root root 0700 /usr/bin/dstest-private
fi'
script "$d" postrm '
if [ "$1" = remove ] || [ "$1" = purge ]; then
	if dpkg-statoverride --list /usr/bin/dstest-private >/dev/null; then
		dpkg-statoverride --remove /usr/bin/dstest-private
		chmod 0755 "$DPKG_ROOT/usr/bin/dstest-private" || true
	fi
fi'
build "$d"

# --- dstest-plugin: activates dstest-base's file trigger --------------------
d="$work/plugin"
control "$d" dstest-plugin 1.0 all "Depends: dstest-base"
mkdir -p "$d/usr/share/dstest/plugins"
echo "plugin" >"$d/usr/share/dstest/plugins/plugin.conf"
build "$d"

# --- dstest-killer: its preinst kills dpkg, for interrupted unpacks ---------
# While $DPKG_ROOT/dstest-kill-dpkg exists, the preinst SIGKILLs the dpkg
# that runs it: dpkg dies half-way through an unpack (no post-invoke hook,
# the package left half-installed, others unpacked), as on a power cut.
d="$work/killer"
control "$d" dstest-killer 1.0 all
mkdir -p "$d/usr/share/dstest-killer"
echo "survivor" >"$d/usr/share/dstest-killer/data.txt"
script "$d" preinst '
if [ -e "$DPKG_ROOT/dstest-kill-dpkg" ]; then
	kill -KILL "$PPID"
	exit 1
fi'
build "$d"

# --- dstest-nomd5: no md5sums member; overwrites a file of dstest-base ------
# (installed with --force-overwrite: without Replaces, only the file list
# of the archive tells which locked file it takes over)
d="$work/nomd5"
control "$d" dstest-nomd5 1.0 all
mkdir -p "$d/usr/share/dstest/a/b/c"
echo "taken over" >"$d/usr/share/dstest/a/b/c/deep.txt"
touch "$d/DEBIAN/no-md5sums"
build "$d"

# --- dstest-efi: files that live on the EFI system partition ---------------
d="$work/efi"
control "$d" dstest-efi 1.0 all
mkdir -p "$d/boot/efi/EFI/dstest" "$d/usr/share/doc/dstest-efi"
echo "efi binary" >"$d/boot/efi/EFI/dstest/grubx64.efi"
echo "efi config" >"$d/boot/efi/EFI/dstest/grub.cfg"
echo "copyright" >"$d/usr/share/doc/dstest-efi/copyright"
build "$d"

ls "$out"
