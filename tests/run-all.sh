#!/usr/bin/env bash
# Runs every host unit test binary and every system test, then prints one closing line
# "N passed, M failed". Counts are per test case for cmocka binaries (from their own
# summaries), per target for the fuzz smoke pass, and per script for system tests.
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

# A short pass of each fuzz target over its seeds (FUZZ_SMOKE_SECONDS, default 5),
# so an input that once crashed a target, kept in its corpus, fails the run again.
for t in build/fuzz/fuzz_*; do
    [ -x "$t" ] || continue
    name=${t#build/fuzz/fuzz_}
    echo "== fuzz: $name"
    if tests/fuzz/run.sh "$name" "${FUZZ_SMOKE_SECONDS:-5}"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failed_names+=("fuzz:$name")
    fi
done

for t in tests/system/*.sh; do
    [ "$(basename "$t")" = lib.sh ] && continue
    echo "== system: $t"
    if bash "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$t"); fi
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
