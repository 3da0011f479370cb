#!/usr/bin/env bash
# How debseal's cost grows with the size of the dpkg database: the same
# commands on synthetic systems of 1,000, 10,000 and 50,000 packages
# (scripts/synthdb: one small file per package, some conffiles and
# maintainer scripts), as a new user would run them, and a hook run
# (dpkg -i, upgrade, remove of a small test package through debseal's
# dpkg hooks) on a 100-package system against the biggest one. Prints the
# scaling table and the goals of issue 12 met or missed:
#   - every command linear: at 50k within 1.2x of 5 x its 10k cost;
#   - status no slower than dpkg -l (wall);
#   - peak RSS of an audit at most 100 MB at 50k;
#   - the hook run on the biggest system at most 2x the 100-package one.
# BENCH_SCALE_SIZES sets the sizes (default "1000 10000 50000": about
# three and a half minutes on a quiet 2-CPU machine, most of it the 50,000
# package system; "1000 10000" takes under a minute).
# BENCH_RUNS (default 1) runs each command that many times and keeps the
# median. Times are wall and CPU (user+sys); CPU holds better than wall on
# a busy machine.
set -euo pipefail
bin=$1
sizes=${BENCH_SCALE_SIZES:-1000 10000 50000}
runs=${BENCH_RUNS:-1}
dir=$(mktemp -d /tmp/debseal-bench-scale.XXXXXX)
cleanup() { chattr -R -i "$dir" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
export DEBSEAL_REFUSE_HOST_ROOT=1
go build -o "$dir/synthdb" ./scripts/synthdb
go build -o "$dir/scalereport" ./scripts/scalereport
scripts/mktestpkgs.sh "$dir/debs" >/dev/null
out=$dir/measurements.tsv
: >"$out"

# [prep=SHELL-CMD] measure NAME SIZE CMD...: runs CMD $runs times under
# /usr/bin/time (prep before each run, untimed) and records the median
# wall, CPU and peak RSS. The command's exit status is ignored (an audit
# exits 1 on findings); its output goes to $dir/last.out.
measure() {
	local name=$1 size=$2
	shift 2
	local i
	for ((i = 0; i < runs; i++)); do
		if [ -n "${prep:-}" ]; then sh -c "$prep" >/dev/null 2>&1; fi
		/usr/bin/time -f '%e %U %S %M' -o "$dir/time" "$@" >"$dir/last.out" 2>&1 || true
		read -r wall user sys rss <"$dir/time"
		echo "$wall $(echo "$user + $sys" | bc) $rss"
	done | sort -n | awk -v n="$name" -v s="$size" '{w[NR]=$1; c[NR]=$2; r[NR]=$3} END {m=int((NR+1)/2); printf "%s\t%s\t%s\t%s\t%s\n", n, s, w[m], c[m], r[m]}' >>"$out"
}

# hookrun NAME SIZE ROOT: install, upgrade and remove dstest-base through
# debseal's dpkg hooks (given on dpkg's command line: the host's
# /etc/dpkg is not the sandbox's) and records debseal's own time, as its
# log says ("debseal took X ms (cpu Y ms, N page faults)"), summed over the six hook runs.
hookrun() {
	local name=$1 size=$2 R=$3
	local d=(dpkg "--root=$R" "--admindir=$R/var/lib/dpkg" "--log=$R/var/log/dpkg.log" --force-script-chrootless
		"--pre-invoke=$bin hook dpkg-pre" "--post-invoke=$bin hook dpkg-post")
	: >"$R/var/log/debseal.log"
	"${d[@]}" -i "$dir/debs/dstest-base_1.0_all.deb" >/dev/null
	"${d[@]}" -i "$dir/debs/dstest-base_2.0_all.deb" >/dev/null
	"${d[@]}" -r dstest-base >/dev/null
	sed -n 's/.*debseal took \([0-9.]*\) ms (cpu \([0-9.]*\) ms[,)].*/\1 \2/p' "$R/var/log/debseal.log" |
		awk -v n="$name" -v s="$size" '{w+=$1; c+=$2; k++} END {if (k != 6) {print "hook runs logged: " k ", want 6" > "/dev/stderr"; exit 1}; printf "%s\t%s\t%.3f\t%.3f\t0\n", n, s, w/1000, c/1000}' >>"$out"
}

biggest=0
for n in $sizes; do ((n > biggest)) && biggest=$n; done
for n in 100 $sizes; do
	R=$dir/s$n
	start=$(date +%s.%N)
	"$dir/synthdb" -n "$n" "$R"
	sync # write the new files back now, not during the first measurements
	echo "synthdb -n $n: $(echo "$(date +%s.%N) - $start" | bc | cut -c1-5) s"
	if [ "$n" = 100 ]; then
		"$bin" --root "$R" lock --all >/dev/null
		hookrun "hook run (install, upgrade, remove)" 100 "$R"
		"$bin" --root "$R" unlock --all >/dev/null
		rm -rf "$R"
		continue
	fi
	measure "dpkg -l" "$n" dpkg --root "$R" -l
	measure "status" "$n" "$bin" --root "$R" status
	measure "audit (new system)" "$n" "$bin" --root "$R" audit
	# The first lock --all also records every package's manifest: each
	# run starts from a system debseal never touched.
	prep="'$bin' --root '$R' unlock --all; chattr -R -i '$R'; rm -rf '$R/var/lib/debseal'" \
		measure "lock --all" "$n" "$bin" --root "$R" lock --all
	measure "lock --all (locked)" "$n" "$bin" --root "$R" lock --all
	# --full reads every file and writes the incremental cache, which the
	# next audit uses.
	measure "audit --full (sealed)" "$n" "$bin" --root "$R" audit --full
	measure "audit (sealed, cached)" "$n" "$bin" --root "$R" audit
	measure "status (sealed)" "$n" "$bin" --root "$R" status
	if [ "$n" = "$biggest" ]; then
		hookrun "hook run (install, upgrade, remove)" "$n" "$R"
	fi
	prep="'$bin' --root '$R' lock --all" measure "unlock --all" "$n" "$bin" --root "$R" unlock --all
	chattr -R -i "$R" 2>/dev/null || true
	rm -rf "$R"
done
"$dir/scalereport" "$out"
