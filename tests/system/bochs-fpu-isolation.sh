#!/usr/bin/env bash
# Bochs, 1 CPU, 3 VMs: vector-register isolation. Three fpu-isolation guests with
# different seeds share CPU 0 and yield to each other every round; each must find its
# XMM0-7 (and, with AVX, the YMM upper halves) exactly as it left them. A Keel that
# skipped the XSAVE/XRSTOR swap would hand one guest's registers to the next.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/fpu.iso" "$ROOT/tests/system/configs/fpu-1cpu.cfg" "$G/fpu-isolation.elf"
log=$WORK/fpu.log
bochs_boot 1 "$WORK/fpu.iso" "$log" 120
expect "$log" "VMM: 3 of 3 configured VMs started" "the three VMs started"
for vm in fpu-a fpu-b fpu-c; do
    expect "$log" "VM $vm: .* on CPU 0" "$vm on CPU 0"
done
expect_count "$log" "VM fpu-[abc]: exits by reason: .*VMCALL 200([^0-9]|$)" 3 "each guest yielded 200 times"
# All three must have loaded their registers before any finished, or the yields had
# nobody to switch to.
first_done=$(line_of "$log" "fpu-isolation: seed [0-9]+: 200 rounds")
last_start=0
for seed in 1 2 3735928559; do
    n=$(line_of "$log" "fpu-isolation: seed $seed, 200 rounds")
    [ "$n" -gt "$last_start" ] && last_start=$n
done
if [ "$first_done" -gt 0 ] && [ "$last_start" -gt 0 ] && [ "$last_start" -lt "$first_done" ]; then
    echo "  ok: the three guests ran interleaved (all started by line $last_start, first done at $first_done)"
else
    fail "the guests did not run interleaved (last start at line $last_start, first done at $first_done)"
fi
# The seeds come from keel.cfg: each line names its own, so a guest that reported for
# another (or twice) shows up here.
for seed in 1 2 3735928559; do
    expect_count "$log" "fpu-isolation: seed $seed: 200 rounds, XMM0-7 intact" 1 "seed $seed: XMM0-7 intact after 200 yields"
done
if grep -a -q "fpu-isolation: AVX not offered" "$log"; then
    echo "  note: AVX not offered to the guests; only XMM0-7 were checked"
    grep -a -m1 "fpu-isolation: AVX not offered" "$log" | sed 's/^/    /'
else
    expect_count "$log" "fpu-isolation: seed [0-9]+: 200 rounds, XMM0-7 intact, YMM upper halves intact" 3 "YMM upper halves intact in all three"
fi
for vm in fpu-a fpu-b fpu-c; do
    expect "$log" "VM $vm: exit code 1 \(0x1\)" "$vm exits with code 0"
done
expect "$log" "Keel: all 3 VMs have stopped" "all VMs stopped"
reject "$log" "fpu-isolation: FAIL" "no register lost its pattern"
reject "$log" "unexpected exception" "no unexpected exception in a guest"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
