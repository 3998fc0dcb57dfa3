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

# System tests run KEEL_TEST_JOBS at a time (default 2, one per core of the reference
# machine): each one is an emulator that keeps one host CPU busy, and their checks count
# emulated ticks, not wall time, so running two side by side changes no verdict. The
# slowest tests start first, so the pair ends close together. Each test's output is
# printed whole when it ends.
jobs=${KEEL_TEST_JOBS:-2}
logs=$(mktemp -d)
trap 'rm -f "$out"; rm -rf "$logs"' EXIT
slow_first=(tests/system/bochs-exit-storm.sh tests/system/bochs-linux*.sh)
system_tests=()
for t in "${slow_first[@]}" tests/system/*.sh; do
    [ -f "$t" ] || continue
    case "$(basename "$t")" in lib.sh | *-lib.sh) continue ;; esac   # sourced helpers, not tests
    case " ${system_tests[*]} " in *" $t "*) continue ;; esac
    system_tests+=("$t")
done
report() {   # report INDEX: prints test INDEX's output and counts its verdict
    local t=${system_tests[$1]} l=$logs/$1
    echo "== system: $t"
    cat "$l.out"
    if [ "$(cat "$l.rc")" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failed_names+=("$t"); fi
}
next_report=0 reported=()
for i in "${!system_tests[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    ( bash "${system_tests[$i]}" > "$logs/$i.out" 2>&1; echo $? > "$logs/$i.rc.tmp"; mv "$logs/$i.rc.tmp" "$logs/$i.rc" ) &
    for j in "${!system_tests[@]}"; do
        [ -f "$logs/$j.rc" ] && [ -z "${reported[$j]:-}" ] && { report "$j"; reported[$j]=1; }
    done
done
wait
for j in "${!system_tests[@]}"; do
    [ -z "${reported[$j]:-}" ] && report "$j"
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed: ${failed_names[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
