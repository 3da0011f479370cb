#!/usr/bin/env bash
# lock/unlock speed against chattr -R, the tool an admin would otherwise
# use (the classic apt.conf "chattr -R +i /usr" recipe), on a debootstrap
# minbase chroot; and the cost of locking one package on that tree against
# the same package alone, to show that it scales with the package only.
set -euo pipefail
bin=$1
runs=${BENCH_RUNS:-10}
dir=$(mktemp -d /tmp/debseal-bench-lock.XXXXXX)
cleanup() { chattr -R -i "$dir" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
R=$dir/root
scripts/chroot.sh extract "$R"
debs=$dir/debs
scripts/mktestpkgs.sh "$debs" >/dev/null
dpkgr() { dpkg --root="$1" --admindir="$1/var/lib/dpkg" --log="$1/var/log/dpkg.log" --force-script-chrootless "${@:2}"; }
dpkgr "$R" -i "$debs/dstest-base_1.0_all.deb" >/dev/null

paths=$(cat "$R"/var/lib/dpkg/info/*.list | sort -u | wc -l)
files=$(find "$R/usr" "$R/etc" -xdev -type f | wc -l)
links=$(find "$R/usr" -xdev -type l | wc -l)
echo "tree: debootstrap --variant=minbase $(. "$R/etc/os-release"; echo "$VERSION_CODENAME"), $(ls "$R"/var/lib/dpkg/info/*.list | wc -l) packages, $paths listed paths; $files files and $links symlinks under /usr and /etc"

unlock_all="chattr -R -i $R/usr $R/etc 2>/dev/null || true"
lock_chattr="chattr -R +i $R/usr 2>/dev/null || true"
out=$dir/json
mkdir -p "$out"
h() { hyperfine --style none --warmup 1 --runs "$runs" "$@" >/dev/null; }

# Errors: chattr -R fails on every symlink (it cannot read their flags);
# debseal skips them.
eval "$unlock_all"
chattr_errors=$( (chattr -R +i "$R/usr" 2>&1 >/dev/null || true) | wc -l)
eval "$unlock_all"
debseal_out=$("$bin" --root "$R" lock --all 2>&1) && debseal_rc=0 || debseal_rc=$?
eval "$unlock_all"
echo "errors: chattr -R +i usr printed $chattr_errors error lines; debseal lock --all exit $debseal_rc: $(echo "$debseal_out" | head -n 2 | tr '\n' ' ')"

h --export-json "$out/lock.json" --prepare "$unlock_all" \
	-n "debseal lock --all (unlocked tree)" "$bin --root $R lock --all" \
	-n "chattr -R +i usr (unlocked tree)" "$lock_chattr"
h --export-json "$out/unlock.json" --prepare "$lock_chattr; $bin --root $R lock --all >/dev/null" \
	-n "debseal unlock --all (locked tree)" "$bin --root $R unlock --all" \
	-n "chattr -R -i usr (locked tree)" "chattr -R -i $R/usr 2>/dev/null || true"
eval "$unlock_all"
"$bin" --root "$R" lock --all >/dev/null
chattr -R +i "$R/usr" 2>/dev/null || true
h --export-json "$out/again.json" \
	-n "debseal lock --all (already locked)" "$bin --root $R lock --all" \
	-n "chattr -R +i usr (already locked)" "$lock_chattr"
eval "$unlock_all"

# One package: the same lock on the full tree and on a root with only that
# package. Equal times show the work follows the package, not the tree.
S=$dir/single
mkdir -p "$S/var/lib/dpkg/info" "$S/var/lib/dpkg/updates" "$S/var/log"
: >"$S/var/lib/dpkg/status"
dpkgr "$S" -i "$debs/dstest-base_1.0_all.deb" >/dev/null
h --export-json "$out/one.json" \
	--prepare "$bin --root $R unlock dstest-base >/dev/null; $bin --root $S unlock dstest-base >/dev/null" \
	-n "debseal lock dstest-base (in the chroot, $paths paths)" "$bin --root $R lock dstest-base" \
	-n "debseal lock dstest-base (alone in a root)" "$bin --root $S lock dstest-base"
"$bin" --root "$S" unlock --all >/dev/null

"$BENCHREPORT" "$out/lock.json" "$out/unlock.json" "$out/again.json" "$out/one.json"
