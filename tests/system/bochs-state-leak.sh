#!/usr/bin/env bash
# Bochs, 1 CPU, 3 VMs: the guest-state audit of vmm/guest-state.md. Three state-leak
# guests share CPU 0; each checks every piece of state the VMCS does not switch (vector
# registers, MXCSR, x87 control word, XCR0, CR2, CR8, DR0-3, DR6, DR7, the syscall MSRs,
# KERNEL_GS_BASE, TSC_AUX, PKRU where offered) at its start and after each of 100 yields.
# A guest that never runs XSETBV sits next to one that enables AVX: the case in which
# XMM registers and MXCSR used to pass from one VM to the next.
source "$(dirname "$0")/lib.sh"
make_iso "$WORK/leak.iso" "$ROOT/tests/system/configs/state-leak-1cpu.cfg" "$BUILD/guests/state-leak.elf"
log=$WORK/leak.log
bochs_boot 1 "$WORK/leak.iso" "$log" 120
expect "$log" "VMM: 3 of 3 configured VMs started" "the three VMs started"
for seed in 1 2 3; do
    expect_count "$log" "state-leak: seed $seed, xsave=[01] .*: [0-9]+ items at their power-on values$" 1 \
        "seed $seed starts from power-on state (nothing left by an earlier VM)"
    expect_count "$log" "state-leak: seed $seed: 100 rounds, [0-9]+ items intact after every yield$" 1 \
        "seed $seed: every item intact after 100 yields"
done
expect "$log" "state-leak: seed 2, xsave=1 \(AVX yes" "the xsave=1 guest has AVX, so YMM upper halves are checked"
expect_count "$log" "state-leak: seed 2: XCR0 0x7: [0-9]+ items at their initial values$" 1 \
    "seed 2: YMM upper halves zero when AVX is enabled"
# The later guests start after the first has loaded its patterns: their start checks are
# what catches state a new VM inherits.
first_pattern=$(line_of "$log" "state-leak: seed 1, xsave")
last_start=$(line_of "$log" "state-leak: seed 3, xsave")
first_done=$(line_of "$log" "state-leak: seed [0-9]: 100 rounds")
if [ "$first_pattern" -gt 0 ] && [ "$last_start" -gt "$first_pattern" ] && [ "$last_start" -lt "$first_done" ]; then
    echo "  ok: the guests ran interleaved"
else
    fail "the guests did not run interleaved (lines $first_pattern, $last_start, $first_done)"
fi
expect_count "$log" "VM leak-[abc]: exits by reason: .*VMCALL 100([^0-9]|$)" 3 "each guest yielded 100 times"
for vm in leak-a leak-b leak-c; do
    expect "$log" "VM $vm: exit code 1 \(0x1\)" "$vm exits with code 0"
done
reject "$log" "state-leak: FAIL" "no item changed"
reject "$log" "triple fault|EXCEPTION|PANIC|KEEL BUG" "no fault, exception, panic or Keel bug"
finish "$log"
