#!/usr/bin/env bash
# Installs the Debian packages a target needs (scripts/deps.txt), and only
# those that are missing: make test and make bench call it, .ci/run too.
#
#   scripts/deps.sh [--dry-run] [--update] TARGET...     (TARGET: test, bench)
#
# As root it installs what is missing quietly (one line naming it; apt's
# output only when it fails). Not as root it says what to install and
# carries on (the tests that need a missing tool skip, and the test
# report lists them). --dry-run prints the missing packages on one line and changes
# nothing. --update refreshes apt's lists even when nothing is missing (CI:
# the tests download real .debs). Exit status 0, or 1 under CI=true when
# something stays missing (a skip would fail the run later anyway) and on
# usage errors.
set -euo pipefail
list=$(dirname "$0")/deps.txt
dry=false update=false
targets=()
for a in "$@"; do
	case $a in
	--dry-run) dry=true ;;
	--update) update=true ;;
	-*) echo "deps: unknown option $a" >&2; exit 1 ;;
	*) targets+=("$a") ;;
	esac
done
[ "${#targets[@]}" -gt 0 ] || { echo "usage: deps.sh [--dry-run] [--update] TARGET..." >&2; exit 1; }

# The packages of the targets, in the file's order, each once.
need=()
known=" "
while read -r line; do
	line=${line%%#*}
	read -r pkg users <<<"$line" || true
	[ -n "$pkg" ] || continue
	for t in "${targets[@]}"; do
		if [[ " $users " == *" $t "* ]]; then
			need+=("$pkg")
			break
		fi
	done
	known+="$users "
done <"$list"
for t in "${targets[@]}"; do
	[[ $known == *" $t "* ]] || { echo "deps: no target $t in $list" >&2; exit 1; }
done

# dpkg-query reports the packages it knows (missing ones on stderr, exit
# 1); only "install ok installed" counts: a removed package that left its
# conffiles is missing.
installed=" "
if command -v dpkg-query >/dev/null; then
	installed+=$(dpkg-query -W -f='${Status} ${Package}\n' "${need[@]}" 2>/dev/null |
		awk '$1 == "install" && $3 == "installed" {printf "%s ", $4}' || true)
fi
missing=()
for p in "${need[@]}"; do
	[[ $installed == *" $p "* ]] || missing+=("$p")
done

if $dry; then
	if [ "${#missing[@]}" -gt 0 ]; then echo "${missing[*]}"; fi
	exit 0
fi
fail() {
	if [ "${CI:-}" = true ]; then exit 1; fi
	exit 0
}
if [ "$(id -u)" != 0 ]; then
	if [ "${#missing[@]}" -gt 0 ]; then
		echo "deps: make ${targets[*]} needs ${missing[*]}; as root, run" >&2
		echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
		fail
	fi
	exit 0
fi
if [ "${#missing[@]}" -eq 0 ] && ! $update; then
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Fresh lists: a fresh image has none, and old ones name .debs the mirror
# no longer has.
if ! apt-get update -qq >"$log" 2>&1 </dev/null; then
	cat "$log" >&2
	echo "deps: apt-get update failed; continuing with the old lists" >&2
fi
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}" >&2
	if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1 </dev/null; then
		cat "$log" >&2
		echo "deps: could not install ${missing[*]}" >&2
		fail
	fi
fi
