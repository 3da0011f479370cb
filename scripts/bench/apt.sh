#!/usr/bin/env bash
# What debseal costs apt, per integration mode, in a debootstrap chroot:
#  - debseal's own time within one transaction, summed over every hook or
#    wrapper invocation of "apt-get install hello" (each logs how long it
#    took, excluding dpkg), against the project goal of 50 ms;
#  - the wall time of a whole scenario (installs with triggers and
#    conffiles, an Essential reinstall, remove, purge) with debseal and
#    without it, goal <= 1.10x; and, because that ratio of two noisy wall
#    times moves by 10-30% here from run to run, also the time debseal's
#    own processes took within the scenario, as a ratio to the scenario
#    without debseal.
# Packages come from the shared apt cache (downloaded once); man-db is
# installed before timing so hello's install fires its trigger.
set -euo pipefail
bin=$1
# The scenario's wall time varies by 10-15% from run to run here (apt,
# dpkg and the disk): the median of several runs is what is compared.
runs=${BENCH_RUNS:-3}
work=$(mktemp -d /tmp/debseal-bench-apt.XXXXXX)
cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}/archives
mkdir -p "$cache"
chroots=()
cleanup() {
	for c in "${chroots[@]}"; do
		umount "$c/dev/pts" 2>/dev/null || true
		umount "$c/proc" 2>/dev/null || true
	done
	chattr -R -i "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

in_chroot() { chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root "${@:2}"; }
apt_in() {
	local c=$1
	shift
	cp -ln "$cache"/*.deb "$c/var/cache/apt/archives/" 2>/dev/null || true
	if ! in_chroot "$c" apt-get -q -y -o APT::Keep-Downloaded-Packages=true "$@" >>"$work/apt.log" 2>&1; then
		echo "bench apt: apt-get $* failed in $c:" >&2
		tail -n 30 "$work/apt.log" >&2
		return 1
	fi
	cp -ln "$c"/var/cache/apt/archives/*.deb "$cache/" 2>/dev/null || true
}

# prepare DIR MODE: a fresh chroot with man-db, and debseal set up and
# locking everything unless MODE is "none".
prepare() {
	local c=$1 mode=$2
	scripts/chroot.sh extract "$c"
	chroots+=("$c")
	cp /etc/resolv.conf "$c/etc/resolv.conf"
	mount -t proc proc "$c/proc"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$c/dev/pts"
	rm -f "$c/dev/ptmx" && ln -s pts/ptmx "$c/dev/ptmx"
	printf '#!/bin/sh\nexit 101\n' >"$c/usr/sbin/policy-rc.d" && chmod 755 "$c/usr/sbin/policy-rc.d"
	apt_in "$c" update
	apt_in "$c" install man-db
	apt_in "$c" install --download-only nano hello
	if [ "$mode" != none ]; then
		cp "$bin" "$c/usr/sbin/debseal"
		in_chroot "$c" debseal setup --mode "$mode" >/dev/null
		in_chroot "$c" debseal lock --all >/dev/null
	fi
}

scenario() {
	local c=$1
	apt_in "$c" install nano hello
	apt_in "$c" install --reinstall coreutils
	apt_in "$c" remove hello
	apt_in "$c" purge nano
}

now() { date +%s.%N; }

# Process start-up before main (Go runtime, package initialisers), which
# debseal's own timer cannot see.
startup=$(hyperfine -N --warmup 5 --runs 40 --export-json "$work/startup.json" "$bin --version" >/dev/null 2>&1 &&
	sed -n 's/.*"median": \([0-9.e-]*\).*/\1/p' "$work/startup.json" | head -n1 | awk '{printf "%.1f", $1 * 1000}')
echo "debseal process start-up (debseal --version, median): $startup ms"
printf '| %-10s | %22s | %13s | %22s | %26s |\n' mode "scenario wall (min-max)" "vs no debseal" "debseal's time in it" "debseal in 'install hello'"
printf '|%s|%s|%s|%s|%s|\n' "------------" "-------------------------" "---------------" "------------------------" "----------------------------"
# Runs are interleaved (a run of every mode, then the next round), so that
# the machine's load drifting over minutes weighs on every mode alike.
modes=(none dpkg-hooks apt-hooks wrapper divert)
declare -A walls owns starts added sstarts
for r in $(seq "$runs"); do
	for mode in "${modes[@]}"; do
		c=$work/$mode-$r
		prepare "$c" "$mode"
		log=$c/var/log/debseal.log
		before=$( [ -f "$log" ] && wc -l <"$log" || echo 0)
		t0=$(now)
		scenario "$c"
		t1=$(now)
		walls[$mode]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') "
		if [ "$mode" != none ]; then
			# What debseal added to the scenario, measured rather than
			# read off two noisy wall times: its processes run in dpkg's
			# path (a hook blocks dpkg), so their time is the overhead.
			# In-process time from the log, plus a start-up per debseal
			# process (counted in a second run of the same scenario,
			# which ends where it started, under strace).
			inside=$(tail -n +"$((before + 1))" "$log" | sed -n 's/.*debseal took \([0-9.]*\) ms.*/\1/p' |
				awk '{s += $1} END {printf "%.1f", s}')
			if [ "$r" = 1 ]; then
				strace -f -qq -e trace=execve -o "$work/strace-scenario.$mode" bash -c "$(declare -f in_chroot apt_in scenario); work=$work cache=$cache; scenario $c" >/dev/null 2>&1
				exe=/usr/sbin/debseal # the wrapper script starts it in the wrapper and divert modes
				sstarts[$mode]=$(grep -cE "execve\(\"$exe\".*= 0\$" "$work/strace-scenario.$mode" || true)
			fi
			added[$mode]+="$(awk -v i="$inside" -v n="${sstarts[$mode]}" -v s="$startup" 'BEGIN {printf "%.1f", i + n * s}') "
		fi
		# debseal's own time in one transaction, apt-get install hello:
		# what each invocation logs (from main's start to its exit, dpkg's
		# time excluded), plus the process start-up before main, measured
		# apart, times the number of debseal processes (counted with
		# strace in a second, identical transaction).
		before=$( [ -f "$log" ] && wc -l <"$log" || echo 0)
		apt_in "$c" install hello
		if [ "$mode" != none ]; then
			inside=$(tail -n +"$((before + 1))" "$log" | sed -n 's/.*debseal took \([0-9.]*\) ms.*/\1/p' |
				awk '{s += $1} END {printf "%.1f", s}')
			apt_in "$c" remove hello
			cp -ln "$cache"/*.deb "$c/var/cache/apt/archives/" 2>/dev/null || true
			strace -f -qq -e trace=execve -o "$work/strace.$mode" \
				chroot "$c" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
				apt-get -q -y install hello >/dev/null 2>&1
			exe=/usr/sbin/debseal
			procs=$(grep -cE "execve\(\"$exe\".*= 0\$" "$work/strace.$mode" || true)
			owns[$mode]+="$(awk -v i="$inside" -v n="$procs" -v s="$startup" 'BEGIN {printf "%.1f", i + n * s}') "
			starts[$mode]=$procs
		fi
		umount "$c/dev/pts" "$c/proc"
		chattr -R -i "$c" 2>/dev/null || true
		rm -rf "$c"
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(echo "${walls[none]}" | median)
for mode in "${modes[@]}"; do
	wall=$(echo "${walls[$mode]}" | median)
	spread=$(echo "${walls[$mode]}" | tr ' ' '\n' | grep . | sort -n | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.1f-%.1f", lo, hi}')
	if [ "$mode" = none ]; then
		ratio="-"
		own="-"
		add="-"
	else
		ratio=$(awk -v a="$wall" -v b="$base" 'BEGIN {printf "%.3fx", a / b}')
		own="$(echo "${owns[$mode]}" | median | awk '{printf "%.0f", $1}') ms (${starts[$mode]} starts)"
		add=$(echo "${added[$mode]}" | median | awk -v b="$base" -v n="${sstarts[$mode]}" '{printf "%.0f ms, %d starts = %.3fx", $1, n, (b + $1 / 1000) / b}')
	fi
	printf '| %-10s | %11.1f s (%9s) | %13s | %22s | %26s |\n' "$mode" "$wall" "$spread" "$ratio" "$add" "$own"
done
