#!/usr/bin/env bash
# Runs the whole test suite (what `make test` and CI run), then the fuzz
# targets for $FUZZTIME each when it is set. Under CI=true any skipped test
# is a failure: a skip would hide a missing proof.
set -euo pipefail
cd "$(dirname "$0")/.."

json=$(mktemp)
trap 'rm -f "$json"' EXIT
rc=0
go test -json -count=1 -timeout 80m "${@:-./...}" >"$json" || rc=$?
go run ./scripts/testreport <"$json" || rc=$?
if [ "$rc" -eq 0 ] && [ -n "${FUZZTIME:-}" ]; then
	scripts/fuzz.sh || rc=$?
fi
exit "$rc"
