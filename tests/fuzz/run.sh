#!/usr/bin/env bash
# Runs one fuzz target for a number of seconds: tests/fuzz/run.sh NAME SECONDS [RUNS]
# (with RUNS, it stops after that many executions instead; SECONDS 0 = no time limit).
# Starts from the committed seeds (tests/fuzz/corpus/NAME, never written) plus what
# earlier runs found (build/fuzz/corpus/NAME, where new inputs go); a crashing input is
# saved under build/fuzz/artifacts/NAME/. Prints one summary line:
#   fuzz NAME: 1234567 executions in 60 s (20576 exec/s), corpus 321, clean
# and exits non-zero when the target found a crash (its report is printed).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
name=$1 seconds=$2 runs=${3:-}
bin=build/fuzz/fuzz_$name
seeds=tests/fuzz/corpus/$name
work=build/fuzz/corpus/$name
artifacts=build/fuzz/artifacts/$name/
[ -x "$bin" ] || { echo "fuzz $name: $bin missing (make fuzz-bins)"; exit 1; }
[ -d "$seeds" ] || { echo "fuzz $name: no seed corpus $seeds"; exit 1; }
mkdir -p "$work" "$artifacts"
log=build/fuzz/$name.log

# -max_len covers the largest seed (guest images); dictionaries are optional.
opts=(-max_total_time="$seconds" -print_final_stats=1 -artifact_prefix="$artifacts" -max_len=65536
      -timeout=10 -rss_limit_mb=2048)
[ -f "tests/fuzz/$name.dict" ] && opts+=(-dict="tests/fuzz/$name.dict")
[ -n "$runs" ] && opts+=(-runs="$runs")
start=$(date +%s)
"$bin" "${opts[@]}" "$work" "$seeds" >"$log" 2>&1
rc=$?
elapsed=$(( $(date +%s) - start ))
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
corpus=$(find "$work" -type f | wc -l)
if [ $rc -eq 0 ]; then
    echo "fuzz $name: ${execs:-0} executions in $elapsed s (${rate:-0} exec/s), corpus $corpus, clean"
    exit 0
fi
grep -v '^#[0-9]' "$log" | tail -60
echo "fuzz $name: FAILED after ${execs:-?} executions (exit $rc); input saved in $artifacts, log $log"
exit 1
