#!/usr/bin/env bash
# What debseal costs a Debian 12 -> 13 upgrade, per integration mode: the
# upgrade TestUpgradeBookwormToTrixie runs (about 300 packages, the
# documented path: apt-get upgrade --without-new-pkgs, then apt-get
# full-upgrade, offline from the cache scripts/upgrade-chroot.sh builds),
# in a fresh chroot without debseal and in one per mode with debseal set
# up and lock --all done. Reported: wall time and CPU time (user+sys of the
# whole apt process tree, from wait4 via GNU time), and their ratios to
# the run without debseal. Goal (issue 13): <= 1.15x for both.
#
# Also reported: the CPU time debseal's own processes used (the sum of
# the "cpu" its log records per run; in the wrapper modes dpkg's time is
# not in it), which a loaded machine disturbs far less than the ratios.
#
# Each run takes minutes, so each mode runs once: BENCH_UPGRADE_MODES
# chooses them (default: dpkg-hooks apt-hooks). The first run builds the
# cache (several minutes, about 250 MB downloaded).
# BENCH_UPGRADE_PROFILE=DIR keeps a CPU profile of every debseal process
# in DIR/MODE/ (go tool pprof -top bin/debseal DIR/MODE/*.prof).
set -euo pipefail
bin=$1
modes=${BENCH_UPGRADE_MODES:-dpkg-hooks apt-hooks}
cd "$(dirname "$0")/../.."
[ -x /usr/bin/time ] || { echo "bench upgrade: needs GNU time (apt-get install time)" >&2; exit 1; }
tarball=$(scripts/upgrade-chroot.sh tarball)
debs=$(scripts/upgrade-chroot.sh debs)
read -r -a flags <<<"$(scripts/upgrade-chroot.sh flags)"
work=$(mktemp -d /var/tmp/debseal-bench-upgrade.XXXXXX)
mounts=()
cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
	done
	chattr -R -i "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

in_chroot() {
	chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		DEBCONF_NONINTERACTIVE_SEEN=true HOME=/root TERM=dumb "${@:2}"
}

# prepare DIR MODE: a fresh bookworm chroot pointed at the cached trixie
# lists and .debs, with debseal set up and locking everything unless MODE
# is "none".
prepare() {
	local c=$1 mode=$2
	mkdir -p "$c"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$c" -xf "$tarball"
	mount -t proc proc "$c/proc" && mounts+=("$c/proc")
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$c/dev/pts" && mounts+=("$c/dev/pts")
	rm -f "$c/dev/ptmx" && ln -s pts/ptmx "$c/dev/ptmx"
	cp "$debs/sources.list" "$c/etc/apt/sources.list"
	cp -l "$debs/lists/"* "$c/var/lib/apt/lists/"
	cp -l "$debs/archives/"*.deb "$c/var/cache/apt/archives/"
	if [ "$mode" != none ]; then
		cp "$bin" "$c/usr/sbin/debseal"
		in_chroot "$c" debseal setup --mode "$mode" >/dev/null
		in_chroot "$c" debseal lock --all >/dev/null
	fi
}

# run DIR MODE: the two steps, timed; prints "wall cpu exit1 exit2".
run() {
	local c=$1 mode=$2 w=0 u=0 s=0 codes=() step rc
	for step in "upgrade --without-new-pkgs" "full-upgrade"; do
		rc=0
		# shellcheck disable=SC2086
		/usr/bin/time -o "$work/$mode.time" -f '%e %U %S' \
			chroot "$c" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
			DEBCONF_NONINTERACTIVE_SEEN=true HOME=/root TERM=dumb ${profile:+DEBSEAL_CPUPROFILE=/var/tmp/debseal-prof} \
			apt-get --no-download "${flags[@]}" $step >>"$work/$mode.log" 2>&1 || rc=$?
		codes+=("$rc")
		read -r sw su ss < <(tail -n1 "$work/$mode.time")
		w=$(awk "BEGIN{print $w + $sw}") u=$(awk "BEGIN{print $u + $su}") s=$(awk "BEGIN{print $s + $ss}")
	done
	echo "$w $(awk "BEGIN{print $u + $s}") ${codes[*]}"
}

# own DIR: the CPU seconds debseal's processes logged, and how many runs.
own() {
	[ -f "$1/var/log/debseal.log" ] || { echo "0 0"; return; }
	sed -n 's/.*debseal took [0-9.]* ms (cpu \([0-9.]*\) ms[,)].*/\1/p' "$1/var/log/debseal.log" |
		awk '{s += $1; n++} END {printf "%.1f %d\n", s / 1000, n}'
}

declare -A wall cpu exits ownc ownn
status=0
profile=${BENCH_UPGRADE_PROFILE:-}
for mode in none $modes; do
	prepare "$work/$mode" "$mode"
	if [ -n "$profile" ] && [ "$mode" != none ]; then
		mkdir -p "$work/$mode/var/tmp/debseal-prof"
	fi
	read -r w c e1 e2 < <(run "$work/$mode" "$mode")
	wall[$mode]=$w cpu[$mode]=$c exits[$mode]="$e1 $e2"
	read -r ownc[$mode] ownn[$mode] < <(own "$work/$mode")
	if [ -n "$profile" ] && [ "$mode" != none ]; then
		mkdir -p "$profile/$mode"
		cp "$work/$mode/var/tmp/debseal-prof/"*.prof "$profile/$mode/" 2>/dev/null || true
	fi
	if [ "$e1 $e2" != "${exits[none]}" ]; then
		echo "bench upgrade: $mode: apt exited $e1, $e2 (without debseal: ${exits[none]}); end of its output:" >&2
		grep -v '^(Reading database' "$work/$mode.log" | tail -n 20 >&2
	fi
done

echo "Debian 12 -> 13 upgrade ($(in_chroot "$work/none" dpkg-query -W | wc -l) packages after, $(ls "$debs/archives" | wc -l) .debs), one run per mode"
printf '| %-10s | %9s | %9s | %-9s | %7s | %7s | %-18s |\n' mode wall cpu "apt exits" "wall×" "cpu×" "debseal's own cpu"
printf '|%s|%s|%s|%s|%s|%s|%s|\n' ------------ ----------- ----------- ----------- --------- --------- --------------------
for mode in none $modes; do
	# A failed upgrade stops early: its ratios would flatter debseal.
	if [ "${exits[$mode]}" != "${exits[none]}" ]; then
		printf '| %-10s | %8.1fs | %8.1fs | %-9s | %7s | %7s | %-18s |\n' "$mode" "${wall[$mode]}" "${cpu[$mode]}" "${exits[$mode]}" "n/a" "n/a" "n/a"
		status=1
		continue
	fi
	printf '| %-10s | %8.1fs | %8.1fs | %-9s | %7s | %7s | %-18s |\n' "$mode" "${wall[$mode]}" "${cpu[$mode]}" "${exits[$mode]}" \
		"$(awk "BEGIN{printf \"%.2fx\", ${wall[$mode]} / ${wall[none]}}")" "$(awk "BEGIN{printf \"%.2fx\", ${cpu[$mode]} / ${cpu[none]}}")" \
		"${ownc[$mode]}s in ${ownn[$mode]} runs"
done
exit $status
