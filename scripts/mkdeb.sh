#!/usr/bin/env bash
# Builds debseal_<version>_<arch>.deb with dpkg-deb from the static binary.
#
#   scripts/mkdeb.sh BINARY VERSION OUTDIR
#
# Contents: /usr/sbin/debseal; /etc/debseal/debseal.conf and
# /etc/default/debseal (conffiles); the systemd units; debseal(8); bash
# completion; copyright, changelog and lintian overrides; the auditd rules
# example; postinst/prerm/postrm from packaging/debian. Deterministic: fixed mtimes, root owner.
set -euo pipefail
bin=${1:?usage: mkdeb.sh BINARY VERSION OUTDIR}
version=${2:?usage: mkdeb.sh BINARY VERSION OUTDIR}
out=${3:?usage: mkdeb.sh BINARY VERSION OUTDIR}
cd "$(dirname "$0")/.."
arch=$(dpkg --print-architecture)
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
root=$(mktemp -d)
chmod 0755 "$root"
trap 'rm -rf "$root"' EXIT
p=packaging

install -D -m 0755 "$bin" "$root/usr/sbin/debseal"
install -D -m 0644 $p/debseal.conf "$root/etc/debseal/debseal.conf"
install -D -m 0644 $p/default "$root/etc/default/debseal"
for u in $p/systemd/*; do
	install -D -m 0644 "$u" "$root/usr/lib/systemd/system/$(basename "$u")"
done
install -D -m 0644 $p/bash-completion "$root/usr/share/bash-completion/completions/debseal"
install -D -m 0644 $p/lintian/debseal "$root/usr/share/lintian/overrides/debseal"
install -D -m 0644 $p/copyright "$root/usr/share/doc/debseal/copyright"
install -D -m 0644 $p/auditd/debseal-setflags.rules "$root/usr/share/doc/debseal/examples/debseal-setflags.rules"
for d in README.md docs/audit.md docs/json.md; do
	gzip -9n <"$d" >"$root/usr/share/doc/debseal/$(basename "$d").gz"
done
mkdir -p "$root/usr/share/man/man8"
go run ./scripts/mkman docs/debseal.8.md | gzip -9n >"$root/usr/share/man/man8/debseal.8.gz"
{
	echo "debseal ($version) unstable; urgency=medium"
	echo
	echo "  * Built from $(git rev-parse --short HEAD 2>/dev/null || echo a source tree)."
	echo
	echo " -- debseal developers <debseal@users.noreply.github.com>  $(date -R -u -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$root/usr/share/doc/debseal/changelog.gz"

mkdir -p "$root/DEBIAN"
install -m 0755 $p/debian/postinst $p/debian/prerm $p/debian/postrm "$root/DEBIAN/"
install -m 0644 $p/debian/conffiles "$root/DEBIAN/"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" $p/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
mkdir -p "$out"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/debseal_${version}_${arch}.deb" >/dev/null
echo "$out/debseal_${version}_${arch}.deb"
