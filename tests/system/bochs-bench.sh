#!/usr/bin/env bash
# Exit-path cost, measured in Bochs TSC ticks (one tick per emulated instruction, so the
# figures are exact and repeatable). Fails when a CPUID round trip (guest loop included)
# costs more than BENCH_CPUID_MAX ticks, or a VMCALL one more than BENCH_VMCALL_MAX or
# more than the CPUID one plus 10 (the figures with the per-exit statistics on). `make bench` prints the same figures.
# Then the same guest with exit_split on, whose parts must add up (see below).
source "$(dirname "$0")/lib.sh"
CPUID_MAX=${BENCH_CPUID_MAX:-100}
VMCALL_MAX=${BENCH_VMCALL_MAX:-110}
make_iso "$WORK/bench.iso" "$ROOT/tests/system/configs/bench.cfg" "$BUILD/guests/bench.elf"
log=$WORK/bench.log
bochs_boot 1 "$WORK/bench.iso" "$log" 180
cpuid=$(sed -n 's/.*bench: cpuid N=[0-9]* total=[0-9]* per_exit=\([0-9]*\).*/\1/p' "$log")
vmcall=$(sed -n 's/.*bench: vmcall N=[0-9]* total=[0-9]* per_exit=\([0-9]*\).*/\1/p' "$log")
if [ -z "$cpuid" ] || [ -z "$vmcall" ]; then
    fail "bench guest printed no figures"
else
    echo "BENCH: CPUID exit round trip: $cpuid Bochs ticks (limit $CPUID_MAX)"
    echo "BENCH: VMCALL exit round trip: $vmcall Bochs ticks (limit $VMCALL_MAX, and CPUID + 10)"
    for io in in-uart out-uart in-unclaimed; do
        t=$(sed -n "s/.*bench: $io N=[0-9]* total=[0-9]* per_exit=\([0-9]*\).*/\1/p" "$log")
        [ -n "$t" ] && echo "BENCH: $io exit round trip: $t Bochs ticks" || fail "bench guest printed no $io figure"
    done
    [ "$cpuid" -le "$CPUID_MAX" ] && echo "  ok: CPUID round trip within $CPUID_MAX ticks" ||
        fail "CPUID round trip costs $cpuid ticks, more than $CPUID_MAX"
    [ "$vmcall" -le "$VMCALL_MAX" ] && echo "  ok: VMCALL round trip within $VMCALL_MAX ticks" ||
        fail "VMCALL round trip costs $vmcall ticks, more than $VMCALL_MAX"
    [ "$vmcall" -le $((cpuid + 10)) ] && echo "  ok: VMCALL round trip within CPUID's + 10 ticks" ||
        fail "VMCALL round trip costs $vmcall ticks, more than CPUID's $cpuid + 10"
fi
expect "$log" "VM bench: exit code 1 \(0x1\)" "bench guest completes"
# Keel's own statistics of the run (the KEEL-STATS dump at the VM's stop, vmm/stats.h),
# read back by tools/keel-stats: every timed exit of the guest's batches is there.
if /usr/bin/python3 "$ROOT/tools/keel-stats" "$log" --quiet --json "$WORK/stats.json"; then
    if out=$(/usr/bin/python3 - "$WORK/stats.json" <<'EOF'
import json, sys
vm = next(v for v in json.load(open(sys.argv[1]))["vms"] if v["name"] == "bench")
rows = {r["reason"]: r for r in vm["merged"]}
want = {"CPUID": 10000, "VMCALL": 10000, "IO_INSTRUCTION": 30000}
# A STATS=0 build counts exits without timing them.
key = "timed" if vm["durations"] else "count"
bad = [r for r, n in want.items() if r not in rows or rows[r][key] < n]
if bad:
    sys.exit("statistics lack %s: %s" % (", ".join(bad), rows))
if not vm["durations"]:
    sys.exit(0)
print("CPUID p50 %d, VMCALL p50 %d, IO p50 %d ticks in Keel" %
      (rows["CPUID"]["p50"], rows["VMCALL"]["p50"], rows["IO_INSTRUCTION"]["p50"]))
EOF
    ); then
        echo "  ok: Keel's exit statistics cover the batches${out:+ ($out)}"
    else
        fail "Keel's exit statistics of the bench VM: $out"
    fi
else
    fail "tools/keel-stats could not read the bench VM's KEEL-STATS dump"
fi

# exit_split (tests/system/configs/bench-split.cfg): the same guest with each exit's
# round trip split at the TSC the CPU stores as it exits, checked against the run above
# (tests/system/check-exit-split.py), and what the split costs per round trip printed.
make_iso "$WORK/split.iso" "$ROOT/tests/system/configs/bench-split.cfg" "$BUILD/guests/bench.elf"
slog=$WORK/bench-split.log
bochs_boot 1 "$WORK/split.iso" "$slog" 180
expect "$slog" "VM bench: exit code 1 \(0x1\)" "bench guest completes with exit_split on"
if /usr/bin/python3 "$ROOT/tools/keel-stats" "$slog" --quiet --json "$WORK/split.json" &&
    out=$(/usr/bin/python3 "$ROOT/tests/system/check-exit-split.py" bench "$WORK/split.json" "$WORK/stats.json" "$slog"); then
    echo "  ok: exit_split's parts add up to the round trip ($out)"
    scpuid=$(sed -n 's/.*bench: cpuid N=[0-9]* total=[0-9]* per_exit=\([0-9]*\).*/\1/p' "$slog")
    echo "BENCH: exit_split: CPUID round trip $scpuid Bochs ticks with the split recorded, ${cpuid:-?} without"
else
    fail "exit_split figures of the bench VM: ${out:-keel-stats could not read the dump}"
fi
finish "$log"
