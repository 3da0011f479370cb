#!/usr/bin/env bash
# debseal audit against dpkg --verify and debsums:
#  1. full audit of this machine's own packages (read-only: --no-cache, no
#     flag is set on the host), warm cache, plus peak RSS;
#  2. the same cold (page cache dropped before each run) when
#     /proc/sys/vm/drop_caches is writable;
#  3. on a debootstrap chroot with every file locked: the incremental
#     re-audit with nothing changed, and a full audit with SHA-256
#     manifests, against dpkg --verify inside the chroot.
# The chroot gets BENCH_CHROOT_PACKAGES installed first (default: openjdk,
# gcc, g++, python3, libllvm15 — about 850 MB under /usr, so that hashing
# weighs as it does on a real system; set it empty for plain minbase).
# benchreport prints wall, CPU (user+sys) and sys ratios: on a shared
# machine the CPU ratios are the ones that hold (issue 12).
# BENCH_DEBSUMS=0 skips debsums (it takes minutes on a big system: it runs
# dpkg-query -S for every changed file). BENCH_RUNS sets hyperfine's runs.
# BENCH_COLD=0 skips the cold-cache runs (they drop the page cache of the
# whole machine, which disturbs whatever else runs on it).
set -euo pipefail
bin=$1
runs=${BENCH_RUNS:-3}
dir=$(mktemp -d /tmp/debseal-bench-audit.XXXXXX)
cleanup() { chattr -R -i "$dir" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
out=$dir/json
mkdir -p "$out"
h() { hyperfine --style none -i "$@" >/dev/null; }

pkgs=$(ls /var/lib/dpkg/info/*.list | wc -l)
echo "host: $pkgs packages; $(nproc) CPUs; dpkg $(dpkg-query -W -f='${Version}' dpkg)"

# 1. warm
h --export-json "$out/warm.json" --warmup 1 --runs "$runs" \
	-n "debseal audit (host, warm)" "$bin audit --no-cache" \
	-n "dpkg --verify (host, warm)" "dpkg --verify"
files=("$out/warm.json")
if [ "${BENCH_DEBSUMS:-1}" != 0 ] && command -v debsums >/dev/null; then
	h --export-json "$out/debsums.json" --runs 1 \
		-n "debseal audit (host, warm) " "$bin audit --no-cache" \
		-n "debsums -s (host, warm)" "debsums -s"
	files+=("$out/debsums.json")
fi
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }
echo "peak RSS: debseal audit $(rss "$bin" audit --no-cache) KB; dpkg --verify $(rss dpkg --verify) KB"

# 2. cold
if [ "${BENCH_COLD:-1}" = 0 ]; then
	echo "cold cache: skipped (BENCH_COLD=0)"
elif [ -w /proc/sys/vm/drop_caches ]; then
	drop="sync; echo 3 > /proc/sys/vm/drop_caches"
	h --export-json "$out/cold.json" --runs 1 --prepare "$drop" \
		-n "debseal audit (host, cold)" "$bin audit --no-cache" \
		-n "dpkg --verify (host, cold)" "dpkg --verify"
	files+=("$out/cold.json")
else
	echo "cold cache: /proc/sys/vm/drop_caches is not writable here; skipped"
fi

# 3. a locked chroot
R=$dir/root
scripts/chroot.sh extract "$R"
extra=${BENCH_CHROOT_PACKAGES-openjdk-17-jre-headless python3 gcc g++ perl libllvm15}
if [ -n "$extra" ]; then
	cp /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true
	printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
	chmod 0755 "$R/usr/sbin/policy-rc.d"
	mount -t proc proc "$R/proc"
	cache=${DEBSEAL_CACHE:-/var/tmp/debseal-cache}/archives
	mkdir -p "$cache"
	cp -l "$cache"/*.deb "$R/var/cache/apt/archives/" 2>/dev/null || true
	chroot "$R" sh -c "apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q -y -o APT::Keep-Downloaded-Packages=true install --no-install-recommends $extra" >"$dir/apt.log" 2>&1 ||
		{ tail -n 20 "$dir/apt.log" >&2; umount "$R/proc"; exit 1; }
	cp -ln "$R"/var/cache/apt/archives/*.deb "$cache/" 2>/dev/null || true
	umount "$R/proc"
fi
"$bin" --root "$R" lock --all --no-manifest >/dev/null # manifests come later, for the third comparison
"$bin" --root "$R" audit >/dev/null || true # fills the incremental cache
echo "chroot: $(ls "$R"/var/lib/dpkg/info/*.list | wc -l) packages, every file locked; $("$bin" --root "$R" audit | tail -n 1)"
h --export-json "$out/incr.json" --warmup 1 --runs $((runs * 3)) \
	-n "debseal audit (chroot, locked, incremental)" "$bin --root $R audit" \
	-n "dpkg --verify (chroot)" "chroot $R dpkg --verify"
h --export-json "$out/full.json" --warmup 1 --runs $((runs * 3)) \
	-n "debseal audit --full (chroot, md5sums only)" "$bin --root $R audit --full --no-cache" \
	-n "dpkg --verify (chroot) " "chroot $R dpkg --verify"
"$bin" --root "$R" manifest --all >/dev/null
h --export-json "$out/manifest.json" --warmup 1 --runs $((runs * 3)) \
	-n "debseal audit --full (chroot, with manifests)" "$bin --root $R audit --full --no-cache" \
	-n "dpkg --verify (chroot)  " "chroot $R dpkg --verify"
files+=("$out/incr.json" "$out/full.json" "$out/manifest.json")
"$bin" --root "$R" unlock --all >/dev/null

"$BENCHREPORT" "${files[@]}"
