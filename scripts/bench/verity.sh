#!/usr/bin/env bash
# fs-verity on a booted Debian guest (this machine's kernel may lack it):
# the VM suite's verity-bench scenario (vmtest/bench_test.go) boots a
# fresh copy of the VM image (scripts/vm-image.sh, ext4 with the verity
# feature) under qemu, installs debseal and reports, in one run:
#  - the content audit of the sealed, verity-enabled guest (no incremental
#    cache, page cache dropped) against dpkg --verify on the same system,
#    and the same audit with --full (every file read);
#  - lock --all with fs-verity against lock --all without (the kernel
#    reads every file once to build its Merkle tree);
#  - the Merkle trees' space (status's estimate and df).
# Wall and CPU (user+sys, children included) are bash's; under emulation
# (TCG) absolute times are slow, the ratios are what count.
set -euo pipefail
bin=$1
cd "$(dirname "$0")/../.."
log=$(mktemp /tmp/debseal-bench-verity.XXXXXX)
trap 'rm -f "$log"' EXIT
if ! DEBSEAL_BIN=$bin DEBSEAL_VM_BENCH=1 DEBSEAL_REFUSE_HOST_ROOT=1 \
	go test -count=1 -timeout 40m -v -run 'TestVM/verity-bench$' ./vmtest >"$log" 2>&1; then
	tail -n 40 "$log" >&2
	exit 1
fi
grep -o 'bench verity: .*' "$log"
