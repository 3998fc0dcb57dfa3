#!/usr/bin/env bash
# gate.sh RESULTS BASELINE [TOLERANCE_PCT]: the benchmark gate. RESULTS has one
# "key ticks" line per figure (tests/system/bochs-bench-vmexit.sh makes it from the
# vmexit guest's output); BASELINE is a flat JSON object of the same keys
# (tests/bench/baseline.json), one "key": value per line. Prints a table of the figures
# beside the baseline and issue 11's KVM-in-Bochs anchor, then the verdict:
#   - a figure more than TOLERANCE_PCT (default 2) percent above its baseline fails;
#   - a baseline figure that was not measured fails (a test went missing);
#   - a figure more than TOLERANCE_PCT below is reported as better;
#   - a figure the baseline lacks is reported as new.
# Exit status: 0 pass, 1 fail, 2 bad arguments or files.
set -uo pipefail
results=${1:-} baseline=${2:-} tolerance=${3:-2}
if [ -z "$results" ] || [ -z "$baseline" ]; then
    echo "usage: gate.sh RESULTS BASELINE [TOLERANCE_PCT]" >&2
    exit 2
fi
[ -r "$results" ] || { echo "gate.sh: cannot read results '$results'" >&2; exit 2; }
[ -r "$baseline" ] || { echo "gate.sh: cannot read baseline '$baseline'" >&2; exit 2; }
if ! grep -q -E '^[a-z0-9_.]+ [0-9]+$' "$results"; then
    echo "gate.sh: no 'key ticks' lines in '$results'" >&2
    exit 2
fi
if ! grep -q -E '^ *"[a-z0-9_.]+": [0-9]+,?$' "$baseline"; then
    echo "gate.sh: '$baseline' has no \"key\": value lines" >&2
    exit 2
fi

base_of() { sed -n "s/^ *\"$1\": \([0-9]*\),\{0,1\}$/\1/p" "$baseline" | head -1; }

# KVM 6.1 with kvm_intel inside Bochs on the same CPU model, mitigations=off (issue 11).
declare -A KVM=([cpuid]=979 [vmcall]=965 [inl_from_kernel]=1290 [rdmsr_efer]=1041)

failed=0 worse=0 better=0
printf '%-32s %10s %10s %8s %10s\n' "test (Bochs ticks)" "Keel" "baseline" "change" "KVM"
while read -r key val; do
    [[ $key =~ ^[a-z0-9_.]+$ && $val =~ ^[0-9]+$ ]] || continue
    base=$(base_of "$key") change=new
    if [ -n "$base" ]; then
        change=$(awk -v a="$val" -v b="$base" 'BEGIN { printf "%+.1f%%", b ? (a - b) * 100 / b : 0 }')
    fi
    printf '%-32s %10s %10s %8s %10s\n' "$key" "$val" "${base:--}" "$change" "${KVM[$key]:--}"
done < "$results"
echo

while read -r key val; do
    [[ $key =~ ^[a-z0-9_.]+$ && $val =~ ^[0-9]+$ ]] || continue
    base=$(base_of "$key")
    if [ -z "$base" ]; then
        echo "  new: $key: $val ticks (not in the baseline)"
    elif awk -v a="$val" -v b="$base" -v t="$tolerance" 'BEGIN { exit !(a > b * (1 + t / 100)) }'; then
        echo "FAIL: $key got worse: $val ticks, baseline $base (more than ${tolerance}% above)"
        worse=$((worse + 1))
    elif awk -v a="$val" -v b="$base" -v t="$tolerance" 'BEGIN { exit !(a < b * (1 - t / 100)) }'; then
        echo "  better: $key: $val ticks, baseline $base"
        better=$((better + 1))
    fi
done < "$results"
for key in $(sed -n 's/^ *"\([a-z0-9_.]*\)": [0-9]*,\{0,1\}$/\1/p' "$baseline"); do
    if ! grep -q "^$key " "$results"; then
        echo "FAIL: baseline figure $key was not measured"
        failed=1
    fi
done
[ $worse -gt 0 ] && failed=1
if [ $worse -gt 0 ] || [ $better -gt 0 ]; then
    echo "  Bochs ticks are exact, so a change to the exit path moves these figures. When the"
    echo "  change is meant, refresh the baseline and commit it with the change:"
    echo "      make bench-baseline && git add tests/bench/baseline.json"
fi
if [ $failed -eq 0 ]; then
    echo "gate: pass: no figure more than ${tolerance}% worse than the baseline ($better better)"
else
    echo "gate: FAIL: $worse figure(s) more than ${tolerance}% worse than the baseline, or missing"
fi
exit $failed
