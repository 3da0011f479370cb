#!/usr/bin/env bash
# What the check before an upgrade costs (issue 10, part 4): "apt-get
# install --reinstall coreutils" in a sealed bookworm chroot (dpkg-hooks
# mode), with BIN (which checks every sealed file before unlocking it) and
# with BASE (a build without the check, e.g. main's), in two chroots made
# the same way, reinstall after reinstall, interleaved so that the
# machine's load weighs on both alike.
#
#   scripts/bench/evidence.sh BIN BASE          (as root; BENCH_RUNS=5)
#
# Per reinstall it prints debseal's own CPU time (user+sys that each
# debseal process logs for itself: the hooks of every dpkg run apt makes),
# the CPU time of apt's whole process tree (GNU time; noisy), and what
# BIN's check logged: files checked, files read, its wall time. The first
# reinstall after "lock --all" is shown apart: no relock has recorded the
# files' stamps yet, so the check reads them.
set -euo pipefail
bin=$(readlink -f "$1")
base=$(readlink -f "$2")
runs=${BENCH_RUNS:-5}
cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}/archives
work=$(mktemp -d /var/tmp/debseal-bench-evidence.XXXXXX)
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
cd "$(dirname "$0")/../.."

in_chroot() { chroot "$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive HOME=/root "${@:2}"; }

# prepare DIR BINARY: a fresh chroot, debseal in the dpkg-hooks mode,
# everything locked.
prepare() {
	local c=$1 b=$2
	scripts/chroot.sh extract "$c" >/dev/null
	chroots+=("$c")
	cp /etc/resolv.conf "$c/etc/resolv.conf"
	mount -t proc proc "$c/proc"
	mount -t devpts -o newinstance,ptmxmode=0666 devpts "$c/dev/pts"
	rm -f "$c/dev/ptmx" && ln -s pts/ptmx "$c/dev/ptmx"
	printf '#!/bin/sh\nexit 101\n' >"$c/usr/sbin/policy-rc.d" && chmod 755 "$c/usr/sbin/policy-rc.d"
	in_chroot "$c" apt-get -q update >/dev/null
	cp -ln "$cache"/coreutils_*.deb "$c/var/cache/apt/archives/" 2>/dev/null || true
	cp "$b" "$c/usr/sbin/debseal"
	in_chroot "$c" debseal setup --mode dpkg-hooks >/dev/null
	in_chroot "$c" debseal lock --all >/dev/null
}

# reinstall DIR: one reinstall; prints "debseal-cpu-ms tree-cpu-s
# checked read check-ms check-cpu-ms" (the check's figures summed over the
# run's hooks).
reinstall() {
	local c=$1 log=$1/var/log/debseal.log before t
	before=$( [ -f "$log" ] && wc -l <"$log" || echo 0)
	t=$(mktemp)
	/usr/bin/time -f "%U %S" -o "$t" chroot "$c" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		DEBIAN_FRONTEND=noninteractive HOME=/root apt-get -q -y -o APT::Keep-Downloaded-Packages=true \
		install --reinstall coreutils >>"$work/apt.log" 2>&1
	tail -n +"$((before + 1))" "$log" >"$work/last.log"
	if grep -q 'tampered-before-upgrade\|debseal\[[0-9]*\] [a-z-]* error' "$work/last.log"; then
		echo "bench evidence: debseal complained in $c:" >&2
		cat "$work/last.log" >&2
		exit 1
	fi
	local own checked read ms
	own=$(sed -n 's/.*debseal took [0-9.]* ms (cpu \([0-9.]*\) ms.*/\1/p' "$work/last.log" | awk '{s += $1} END {printf "%.1f", s}')
	checked=$(sed -n 's/.*checked \([0-9]*\) sealed files first, \([0-9]*\) of them read (\([0-9.]*\) ms, cpu \([0-9.]*\) ms).*/\1 \2 \3 \4/p' "$work/last.log" |
		awk '{c += $1; r += $2; m += $3; u += $4} END {printf "%d %d %.1f %.1f", c, r, m, u}')
	echo "$own $(awk '{printf "%.2f", $1 + $2}' "$t") $checked"
	rm -f "$t"
}

cp -ln "$cache"/coreutils_*.deb "$work/" 2>/dev/null || true
prepare "$work/with" "$bin"
prepare "$work/base" "$base"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-28s | %-34s | %-34s\n' "" "with the check ($(basename "$bin"))" "without ($(basename "$base"))"
printf '%-28s | %-34s | %-34s\n' "reinstall" "debseal cpu, tree cpu, read/checked, check wall, check cpu" "debseal cpu, tree cpu"
for r in $(seq 0 "$runs"); do
	a=$(reinstall "$work/with")
	b=$(reinstall "$work/base")
	label="round $r"
	[ "$r" = 0 ] && label="first after lock --all"
	read -r aown atree achk aread ams acpu <<<"$a"
	read -r bown btree _ <<<"$b"
	printf '%-28s | %8s ms %6s s %4s/%-4s %6s ms %6s ms | %8s ms %6s s\n' "$label" "$aown" "$atree" "$aread" "$achk" "$ams" "$acpu" "$bown" "$btree"
	if [ "$r" -gt 0 ]; then
		echo "$aown $bown $ams $acpu" >>"$work/rounds"
	fi
done
awk '{a[NR] = $1; b[NR] = $2; d[NR] = $1 - $2; m[NR] = $3; u[NR] = $4}
	function med(x, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
		return n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2 }
	END { n = NR; printf "medians of %d rounds: debseal cpu %.1f ms with the check, %.1f ms without; difference %.1f ms; the check itself %.1f ms wall, %.1f ms cpu\n", n, med(a, n), med(b, n), med(d, n), med(m, n), med(u, n) }' "$work/rounds"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
