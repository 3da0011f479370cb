#!/usr/bin/env bash
# Benchmarks debseal's .deb reader (pkg/deb, through debseal inspect) against
# dpkg-deb on big real packages, and prints one table.
#
#   scripts/bench/deb.sh /path/to/debseal
#
# For each package: the control-only read (debseal inspect FILE, which never
# decompresses the data member, vs dpkg-deb --field FILE) and the full read
# (debseal inspect --hashes FILE, which lists every entry and hashes every
# regular file with SHA-256 and MD5, vs dpkg-deb --fsys-tarfile FILE |
# sha256sum, which only decompresses and hashes the stream), then the whole
# batch at once (debseal reads several files in parallel, as apt hands them
# over). Times are hyperfine medians (--warmup 1, $BENCH_RUNS runs, default 5).
# Whole processes are timed, so debseal's numbers include its start-up; the
# library alone: go test -bench 'ReadInfo|WalkData' ./pkg/deb.
#
# The packages are fetched with apt-get download into $DEBSEAL_TESTCACHE
# (default /var/tmp/debseal-testcache, shared with the tests) and reused.
# $PKGS overrides the package list.
set -euo pipefail

bin=${1:?usage: $0 DEBSEAL-BINARY}
bin=$(realpath "$bin")
cache=${DEBSEAL_TESTCACHE:-/var/tmp/debseal-testcache}
runs=${BENCH_RUNS:-5}
for cmd in hyperfine dpkg-deb sha256sum apt-get apt-cache; do
	command -v "$cmd" >/dev/null || { echo "bench/deb: $cmd not found" >&2; exit 1; }
done

if [ -z "${PKGS:-}" ]; then
	# The newest linux-headers-*-common of the running release's kernel
	# series (big, ~10k files, a multi-block xz member).
	headers=$(apt-cache search --names-only '^linux-headers-[0-9.]+-[0-9]+-common$' | awk '{print $1}' | sort -V | tail -n 1)
	PKGS="coreutils libllvm15 ${headers} libicu72"
fi

mkdir -p "$cache"
cd "$cache"
debs=()
for p in $PKGS; do
	f=$(ls -1 "${p}"_*.deb 2>/dev/null | sort -V | tail -n 1 || true)
	if [ -z "$f" ]; then
		apt-get download -q -o APT::Sandbox::User=root "$p" >&2
		f=$(ls -1 "${p}"_*.deb | sort -V | tail -n 1)
	fi
	debs+=("$f")
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median CSV: the median of each command of a hyperfine CSV export, in order.
median() { awk -F, 'NR > 1 { print $4 }' "$1"; }

bench() { # NAME COMMAND...
	local name=$1
	shift
	hyperfine -N --style none --warmup 1 --runs "$runs" --export-csv "$tmp/$name.csv" "$@" >/dev/null 2>&1 ||
		hyperfine --style none --warmup 1 --runs "$runs" --export-csv "$tmp/$name.csv" "$@" >/dev/null
}

printf '%s\n' "$("$bin" --version | head -n 1); dpkg-deb $(dpkg-deb --version | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/'); $(nproc) CPUs; medians of $runs runs"
printf '%s\n' "debseal start-up alone (debseal --version): $(hyperfine -N --style none --warmup 3 --runs 20 --export-csv "$tmp/startup.csv" "$bin --version" >/dev/null 2>&1 && median "$tmp/startup.csv" | awk '{printf "%.1f ms", $1 * 1000}')"
printf '%-44s %8s | %13s %13s | %13s %13s %7s\n' package '.deb MB' 'info debseal' 'dpkg-deb -f' 'full debseal' 'dpkg-deb|sha' ratio
for f in "${debs[@]}"; do
	name=$(basename "$f" .deb)
	bench "$name-info" "$bin inspect $f" "dpkg-deb --field $f"
	bench "$name-full" "$bin inspect --hashes $f" "sh -c 'dpkg-deb --fsys-tarfile $f | sha256sum'"
	mapfile -t info < <(median "$tmp/$name-info.csv")
	mapfile -t full < <(median "$tmp/$name-full.csv")
	size=$(stat -c %s "$f")
	awk -v n="${name%%_*}" -v s="$size" -v i1="${info[0]}" -v i2="${info[1]}" -v f1="${full[0]}" -v f2="${full[1]}" 'BEGIN {
		printf "%-44s %8.1f | %10.1f ms %10.1f ms | %11.3f s %11.3f s %6.2fx\n", n, s / 1e6, i1 * 1000, i2 * 1000, f1, f2, f1 / f2
	}'
done

# The batch: debseal reads the files in parallel; dpkg-deb one after the
# other (what a loop over apt's list would do).
list="${debs[*]}"
bench batch "$bin inspect --hashes $list" "sh -c 'for f in $list; do dpkg-deb --fsys-tarfile \$f | sha256sum; done'"
mapfile -t batch < <(median "$tmp/batch.csv")
awk -v n="all ${#debs[@]} at once" -v f1="${batch[0]}" -v f2="${batch[1]}" 'BEGIN {
	printf "%-44s %8s | %13s %13s | %11.3f s %11.3f s %6.2fx\n", n, "", "", "", f1, f2, f1 / f2
}'
