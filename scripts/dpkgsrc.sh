#!/usr/bin/env bash
# dpkg's source tree (for its functional test suite, tests/), fetched once
# and cached.
#
#   scripts/dpkgsrc.sh VERSION     print the path of the unpacked dpkg-VERSION
#                                  source tree, fetching it if absent
#
# apt-get source with a private apt configuration under $DEBSEAL_CACHE
# (/var/tmp/debseal-cache/dpkgsrc): a deb-src list for the machine's Debian
# mirror and its own lists directory, so the host's /etc/apt is never
# touched. apt checks the .dsc and tarballs against the signed Sources
# index, dpkg-source -x unpacks them.
set -euo pipefail
version=${1:?usage: dpkgsrc.sh VERSION}
cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}/dpkgsrc
tree=$cache/dpkg-$version
if [ -f "$tree/tests/Makefile" ]; then
	echo "$tree"
	exit 0
fi
for c in apt-get dpkg-source; do
	command -v "$c" >/dev/null || { echo "dpkgsrc.sh: needs $c (apt-get install dpkg-dev)" >&2; exit 1; }
done

mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

mkdir -p "$cache/apt/lists/partial" "$cache/apt/archives/partial" "$cache/apt/etc/preferences.d"
m=$(mirror)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$cache/apt/sources.list" <<SRC
deb-src [signed-by=$keyring] ${m%/} bookworm main
deb-src [signed-by=$keyring] ${m%/} bookworm-updates main
deb-src [signed-by=$keyring] ${m%/}-security bookworm-security main
SRC
opts=(-o "Dir::Etc::SourceList=$cache/apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
	-o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt" -o "Dir::Cache::pkgcache="
	-o "Dir::Cache::srcpkgcache=" -o "Dir::Etc::Preferences=/nonexistent" -o "Dir::Etc::PreferencesParts=$cache/apt/etc/preferences.d"
	-o "APT::Sandbox::User=root" -o "Acquire::Languages=none")
echo "dpkgsrc.sh: fetching dpkg $version source from $m (cached in $cache)" >&2
apt-get -q "${opts[@]}" update >&2
tmp=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get -q "${opts[@]}" source --download-only "dpkg=$version" >&2)
dpkg-source -q -x "$tmp/dpkg_$version.dsc" "$tmp/dpkg-$version" >&2
rm -rf "$tree"
mv "$tmp/dpkg-$version" "$tree"
echo "$tree"
