#!/usr/bin/env bash
# Runs every host unit test binary and every system test, then prints one closing line
# "N passed, M failed". Counts are per test case for cmocka binaries (from their own
# summaries) and per script for system tests.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
passed=0 failed=0 failed_names=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for t in build/unit/test_*; do
    [ -x "$t" ] || continue
    echo "== unit: $t"
    "$t" >"$out" 2>&1
    rc=$?
    cat "$out"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{s+=$1} END {print s+0}')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before its summary
    passed=$((passed + p)); failed=$((failed + f))
    [ "$f" -eq 0 ] || failed_names+=("$t")
done

for t in tests/system/*.sh; do
    [ "$(basename "$t")" = lib.sh ] && continue
    echo "== system: $t"
    if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$t"); fi
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
