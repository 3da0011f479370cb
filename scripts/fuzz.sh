#!/usr/bin/env bash
# Runs every fuzz target in the module for $FUZZTIME (default 30s) each.
# New interesting inputs are minimised for at most $FUZZMINIMIZE (default
# 100 executions): a time bound let slow targets spend short runs only
# minimising, and a run ending mid-minimisation fails with "context
# deadline exceeded".
set -euo pipefail
cd "$(dirname "$0")/.."
t=${FUZZTIME:-30s}
minimize=${FUZZMINIMIZE:-100x}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "fuzz: $pkg $target ($t)"
		for try in 1 2; do
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -fuzzminimizetime "$minimize" "$pkg" >/tmp/fuzz.$$.log 2>&1; then
				tail -n 1 /tmp/fuzz.$$.log
				break
			fi
			cat /tmp/fuzz.$$.log
			# Go 1.26's coordinator can end a run at the -fuzztime
			# deadline with a bare "context deadline exceeded" and no
			# input (go.dev/issue/75804, fixed in Go 1.27). A finding
			# always writes its input: anything else fails at once.
			if grep -q 'Failing input written\|panic:\|_test.go:[0-9]' /tmp/fuzz.$$.log ||
				! grep -q '^    context deadline exceeded$' /tmp/fuzz.$$.log; then
				rm -f /tmp/fuzz.$$.log
				exit 1
			fi
			if [ "$try" = 2 ]; then
				echo "fuzz: $target: the coordinator's deadline race twice in a row (go.dev/issue/75804); no input failed" >&2
				break
			fi
			echo "fuzz: $target: the coordinator's deadline race (go.dev/issue/75804), no failing input; running it again"
		done
	done
done
rm -f /tmp/fuzz.$$.log
