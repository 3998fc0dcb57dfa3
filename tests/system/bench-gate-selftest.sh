#!/usr/bin/env bash
# The benchmark gate (tests/bench/gate.sh) on made-up figures, no emulator: equal figures
# pass; a figure more than 2 % worse fails and says how to refresh the baseline; one
# within 2 % passes; a better one passes and is reported; a baseline figure that was
# not measured fails; a new one is reported; bad arguments and files are refused. The
# real baseline parses and carries every test of the vmexit guest.
source "$(dirname "$0")/lib.sh"
GATE=$ROOT/tests/bench/gate.sh

cat > "$WORK/base.json" <<'JSON'
{
  "cpuid": 1000,
  "vmcall": 2000,
  "ipi.ipi": 500
}
JSON
printf 'cpuid 1000\nvmcall 2000\nipi.ipi 500\n' > "$WORK/same.txt"
printf 'cpuid 1020\nvmcall 2000\nipi.ipi 500\n' > "$WORK/within.txt"
printf 'cpuid 1000\nvmcall 2041\nipi.ipi 500\n' > "$WORK/worse.txt"
printf 'cpuid 1000\nvmcall 2000\nipi.ipi 400\n' > "$WORK/better.txt"
printf 'cpuid 1000\nvmcall 2000\n' > "$WORK/missing.txt"
printf 'cpuid 1000\nvmcall 2000\nipi.ipi 500\nnew_test 7\n' > "$WORK/new.txt"

# case NAME RESULTS WANT_STATUS REGEX DESCRIPTION
case_() {
    local out=$WORK/$1.out
    "$GATE" "$2" "$WORK/base.json" > "$out" 2>&1
    local rc=$?
    if [ $rc -eq "$3" ]; then echo "  ok: $1: status $rc"; else fail "$1: status $rc, want $3"; cat "$out"; fi
    expect "$out" "$4" "$5"
}
case_ same "$WORK/same.txt" 0 '^gate: pass: no figure more than 2% worse' "equal figures pass"
case_ within "$WORK/within.txt" 0 '^cpuid +1020 +1000 +\+2\.0%' "exactly 2 % worse passes, its change shown"
case_ worse "$WORK/worse.txt" 1 '^FAIL: vmcall got worse: 2041 ticks, baseline 2000 \(more than 2% above\)' "2.05 % worse fails, named"
expect "$WORK/worse.out" 'make bench-baseline && git add tests/bench/baseline.json' "the failure says how to refresh the baseline"
case_ better "$WORK/better.txt" 0 '^  better: ipi.ipi: 400 ticks, baseline 500' "a better figure is reported"
expect "$WORK/better.out" 'make bench-baseline' "and how to take it into the baseline"
case_ missing "$WORK/missing.txt" 1 '^FAIL: baseline figure ipi.ipi was not measured' "a missing figure fails"
case_ new "$WORK/new.txt" 0 '^  new: new_test: 7 ticks' "a new figure is reported"
expect "$WORK/same.out" '^cpuid +1000 +1000 +\+0\.0% +979$' "the table shows the KVM anchor"

"$GATE" "$WORK/same.txt" > "$WORK/args.out" 2>&1
[ $? -eq 2 ] && echo "  ok: a missing argument is refused (status 2)" || fail "a missing argument: status not 2"
"$GATE" "$WORK/nonexistent" "$WORK/base.json" > "$WORK/file.out" 2>&1
[ $? -eq 2 ] && expect "$WORK/file.out" "cannot read results" "an unreadable results file is named" ||
    fail "an unreadable results file: status not 2"
echo '{}' > "$WORK/empty.json"
"$GATE" "$WORK/same.txt" "$WORK/empty.json" > "$WORK/empty.out" 2>&1
[ $? -eq 2 ] && expect "$WORK/empty.out" 'has no "key": value lines' "an empty baseline is refused" ||
    fail "an empty baseline: status not 2"

# The committed baseline: one figure for every test of the guest's list.
BASE=$ROOT/tests/bench/baseline.json
for n in $(sed -n 's/^ *X(\([a-z0-9_]*\),.*/\1/p' "$ROOT/tests/guests/vmexit/tests.c"); do
    grep -q "^  \"$n\": [0-9]*,\{0,1\}$" "$BASE" || fail "tests/bench/baseline.json has no figure for $n"
done
echo "  ok: tests/bench/baseline.json has a figure for every vmexit test"
finish
