#!/usr/bin/env bash
# Builds the .deb fixtures under testdata/deb/ (see testdata/deb/README.md).
#
# Every fixture is the same small package tree built by dpkg-deb --build with
# one compressor, or repacked with ar(1) where dpkg-deb cannot build the
# variant (bzip2 and lzma data members, multi-block and multi-stream xz,
# extra members). It must run as root: the tree has files owned by other
# users and setuid/setgid bits, which only root can create.
#
# The output is committed; rebuild it only when the tree or the variants
# change. SOURCE_DATE_EPOCH, fixed mtimes and `ar D` keep the archives stable
# across runs on one machine (compressor versions may still change bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "mkdebfixtures: run as root (the tree has setuid files and non-root owners)" >&2
	exit 1
fi
for cmd in dpkg-deb ar xz zstd bzip2 gzip tar md5sum; do
	command -v "$cmd" >/dev/null || { echo "mkdebfixtures: $cmd not found" >&2; exit 1; }
done

out=testdata/deb
export SOURCE_DATE_EPOCH=1700000000 LC_ALL=C TZ=UTC
umask 022
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# tree DIR [remove-on-upgrade]: the package tree. It has one of everything
# the reader must report: regular files, a setuid and a setgid file, a
# setgid+sticky directory, files owned by games and man, relative and
# absolute symlinks, a hard link, a conffile, nested directories, a name with
# spaces, an empty file, all five maintainer scripts and a triggers file.
tree() {
	local d=$1 rou=${2:-}
	rm -rf "$d"
	mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/usr/sbin" "$d/usr/games" \
		"$d/usr/share/debseal-fixture/nested/a/b/c" \
		"$d/usr/share/debseal-fixture/with space" \
		"$d/usr/share/doc/debseal-fixture" "$d/etc/debseal-fixture" \
		"$d/var/lib/debseal-fixture/shared" "$d/var/cache/debseal-fixture"

	printf '#!/bin/sh\necho "debseal fixture"\n' >"$d/usr/bin/debseal-fixture"
	chmod 0755 "$d/usr/bin/debseal-fixture"
	printf '#!/bin/sh\nid\n' >"$d/usr/bin/debseal-fixture-suid"
	chmod 4755 "$d/usr/bin/debseal-fixture-suid"
	printf '#!/bin/sh\necho game\n' >"$d/usr/games/debseal-fixture-game"
	chown root:games "$d/usr/games/debseal-fixture-game"
	chmod 2755 "$d/usr/games/debseal-fixture-game"
	ln -s debseal-fixture "$d/usr/bin/debseal-fixture-link"
	ln -s /usr/bin/debseal-fixture "$d/usr/sbin/debseal-fixture"
	ln -s ../../../../../../../etc/debseal-fixture/fixture.conf \
		"$d/usr/share/debseal-fixture/nested/a/b/c/conf-link"

	# Some text with repetition, so compressors have work and the
	# multi-block xz variant gets several blocks.
	for i in $(seq 1 400); do echo "line $i: the quick brown fox jumps over the lazy dog $((i * i))"; done \
		>"$d/usr/share/debseal-fixture/data.txt"
	ln "$d/usr/share/debseal-fixture/data.txt" "$d/usr/share/debseal-fixture/hardlink"
	head -c 3000 /dev/zero | tr '\0' 'z' >"$d/usr/share/debseal-fixture/nested/a/b/c/deep.txt"
	echo "spaces are allowed" >"$d/usr/share/debseal-fixture/with space/file name with spaces.txt"
	: >"$d/usr/share/debseal-fixture/empty"
	printf 'Files: *\nCopyright: none\nLicense: public-domain\n' >"$d/usr/share/doc/debseal-fixture/copyright"
	printf '# debseal fixture configuration\nkey = value\n' >"$d/etc/debseal-fixture/fixture.conf"
	echo "cache" >"$d/var/cache/debseal-fixture/index"
	chown -R man:man "$d/var/cache/debseal-fixture"
	chown root:staff "$d/var/lib/debseal-fixture/shared"
	chmod 3775 "$d/var/lib/debseal-fixture/shared"

	cat >"$d/DEBIAN/control" <<-EOF
	Package: debseal-fixture
	Version: 1:1.0~rc1-1
	Architecture: all
	Multi-Arch: foreign
	Maintainer: debseal developers <debseal@example.org>
	Installed-Size: 40
	Pre-Depends: dpkg (>= 1.20.6)
	Depends: libc6 (>= 2.36) | libc6.1, sh
	Conflicts: debseal-fixture-old
	Replaces: debseal-fixture-old (<< 1.0)
	Section: misc
	Priority: optional
	Description: test package for debseal's .deb reader
	 It has one of everything: setuid files, symlinks, a hard link,
	 a conffile, maintainer scripts and triggers.
	 .
	 It does nothing.
	EOF
	{
		echo "/etc/debseal-fixture/fixture.conf"
		if [ "$rou" = remove-on-upgrade ]; then
			echo "remove-on-upgrade /etc/debseal-fixture/obsolete.conf"
		fi
	} >"$d/DEBIAN/conffiles"
	for s in preinst postinst prerm postrm config; do
		printf '#!/bin/sh\nset -e\n# debseal fixture %s\necho "%s $*"\n' "$s" "$s" >"$d/DEBIAN/$s"
		chmod 0755 "$d/DEBIAN/$s"
	done
	printf '# file trigger and a named one\ninterest-noawait /usr/share/debseal-fixture/plugins\nactivate-noawait ldconfig\n' \
		>"$d/DEBIAN/triggers"
	(cd "$d" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
		grep -v '^etc/' | xargs -d '\n' md5sum >DEBIAN/md5sums)

	find "$d" -exec touch -h -d @$SOURCE_DATE_EPOCH {} +
}

build() { # DIR COMPRESSOR OUT
	dpkg-deb --build -Z"$2" "$1" "$out/$3" >/dev/null
}

# repack IN OUT DATA-NAME FILTER...: replaces the data member of IN by the
# uncompressed data.tar run through FILTER, with GNU ar (member names get a
# trailing '/', mode 644: both legal and worth covering).
repack() {
	local in=$1 outname=$2 dataname=$3
	shift 3
	local d="$work/repack"
	rm -rf "$d" && mkdir -p "$d"
	(cd "$d" && ar x "$OLDPWD/$out/$in")
	dpkg-deb --fsys-tarfile "$out/$in" | "$@" >"$d/$dataname"
	local ctrl
	ctrl=$(cd "$d" && ls control.tar*)
	rm -f "$out/$outname"
	(cd "$d" && ar qcD "$OLDPWD/$out/$outname" debian-binary "$ctrl" "$dataname")
}

mkdir -p "$out"
rm -f "$out"/*.deb

tree "$work/pkg"
build "$work/pkg" gzip fixture_gzip.deb
build "$work/pkg" xz fixture_xz.deb
build "$work/pkg" none fixture_none.deb
tree "$work/pkg" remove-on-upgrade
build "$work/pkg" zstd fixture_zstd.deb

repack fixture_xz.deb fixture_bzip2.deb data.tar.bz2 bzip2 -9c
repack fixture_xz.deb fixture_lzma.deb data.tar.lzma xz --format=lzma -c
# Multi-threaded xz stores the block sizes in the block headers (as
# dpkg-deb's threaded xz does); single-threaded xz with --block-size does
# not. The reader has a path for each.
repack fixture_xz.deb fixture_xz-blocks.deb data.tar.xz xz -T2 --block-size=8KiB -c
repack fixture_xz.deb fixture_xz-blocks-nosize.deb data.tar.xz xz -T1 --block-size=8KiB -c
# A second xz stream (after stream padding) behind the real one: dpkg
# decodes only the first stream and ignores the rest, so must we.
trailing_stream() {
	local t="$work/ts.tar"
	cat >"$t"
	xz -c <"$t"
	printf '\0\0\0\0'
	printf 'ignored by dpkg\n' | xz --check=sha256 -c
}
repack fixture_xz.deb fixture_xz-trailing-stream.deb data.tar.xz trailing_stream

# Extra members: '_' members are skipped wherever they are, members after
# data.tar are ignored (deb(5)).
d="$work/extra"
rm -rf "$d" && mkdir -p "$d"
(cd "$d" && ar x "$OLDPWD/$out/fixture_gzip.deb")
echo "signature placeholder" >"$d/_gpgbuilder"
echo "note" >"$d/_debseal-note"
echo "trailing member" >"$d/zz-trailing"
(cd "$d" && ar qcD "$OLDPWD/$out/fixture_extra-members.deb" debian-binary _debseal-note control.tar.gz \
	_gpgbuilder data.tar.gz zz-trailing)

# A decompression bomb: a valid package whose data.tar.zst expands a 1 GiB
# file of zeros from about 33 KB.
d="$work/bomb"
rm -rf "$d" && mkdir -p "$d/usr/share/bomb"
truncate -s 1G "$d/usr/share/bomb/zeros"
find "$d" -exec touch -h -d @$SOURCE_DATE_EPOCH {} +
(cd "$work/repack" && rm -f data.tar* && tar --sort=name --owner=root:0 --group=root:0 --numeric-owner \
	--mtime=@$SOURCE_DATE_EPOCH -C "$d" -cf - ./usr | zstd -19 -q -c >data.tar.zst &&
	rm -f "$OLDPWD/$out/bomb_zstd.deb" &&
	ar qcD "$OLDPWD/$out/bomb_zstd.deb" debian-binary control.tar.xz data.tar.zst)

ls -l "$out"/*.deb
