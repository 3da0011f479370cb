#!/usr/bin/env bash
# make bench: runs every benchmark in scripts/bench/ against the given
# debseal binary. Each compares debseal with the tool an admin would
# otherwise use, in the same run, and prints the ratio (debseal / peer:
# below 1 means debseal is faster).
set -euo pipefail
bin=${1:?usage: bench.sh PATH-TO-DEBSEAL [NAME...]}
shift
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then echo "bench: needs root (the immutable flag)" >&2; exit 1; fi
command -v hyperfine >/dev/null || { echo "bench: needs hyperfine (apt-get install hyperfine)" >&2; exit 1; }
go build -o /tmp/debseal-benchreport ./scripts/benchreport
export BENCHREPORT=/tmp/debseal-benchreport
status=0
for b in scripts/bench/*.sh; do
	name=$(basename "$b" .sh)
	if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then continue; fi
	echo
	echo "### $name"
	bash "$b" "$bin" || { echo "bench $name failed" >&2; status=1; }
done
exit $status
