#!/usr/bin/env bash
# Runs the platform guest directly under QEMU (TCG, no hypervisor) with 1, 2 and 4 CPUs:
# the reference run for the virtual platform Keel is to present (issue 8). Every check
# of the guest must pass here, and the run must end in an ACPI S5 power-off, which QEMU
# reports as a guest shutdown; with 3.5 GiB too. Runs without a PIT and without ACPI
# tables show that the failures are reported and end through the debug-exit port
# instead of hanging.
# QEMU's exit status: 0 after a power-off, (code << 1) | 1 for a debug-exit write, 124
# for our timeout.
source "$(dirname "$0")/lib.sh"

make -C "$ROOT" -s "$BUILD/guests/platform.elf" || { fail "the platform guest does not build"; finish; }
ELF=$BUILD/guests/platform.elf

# run LOG ARGS...: boots the guest with COM1 to LOG; sets RC and SHUTDOWN (QEMU's reason
# for ending: guest-shutdown for an ACPI power-off, guest-reset, none, ...).
run() {
    local log=$1 reason; shift
    timeout 30 qemu-system-x86_64 -display none -no-reboot -m 128 -monitor none \
        -serial "file:$log" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -trace "qemu_system_shutdown_request,file=$log.trace" -kernel "$ELF" "$@" \
        >"$log.qemu" 2>&1 </dev/null
    RC=$?
    [ $RC -eq 124 ] && fail "QEMU $* did not end within 30 s (hang?)"
    # QEMU's ShutdownCause numbers (qapi/run-state.json, QEMU 6.0 and later).
    reason=$(sed -n 's/.*qemu_system_shutdown_request reason=\([0-9]*\).*/\1/p' "$log.trace" 2>/dev/null | head -1)
    case $reason in
    6) SHUTDOWN=guest-shutdown ;;
    7) SHUTDOWN=guest-reset ;;
    '') SHUTDOWN=none ;;
    *) SHUTDOWN=other-$reason ;;
    esac
}

# Checks every configuration must pass, by the name the guest prints.
ALWAYS="tsc-calibration rsdp rsdt madt madt-ioapic madt-irq0 fadt dsdt s5 fwcfg fwcfg-cpus
    fwcfg-ram lapic pm-timer smp-start ipi-self nmi uart-irq lapic-timer-oneshot lapic-timer-periodic
    irq0-ioapic irq0-pic rtc rtc-advance acpi-mode"

for cpus in 1 2 4; do
    echo "platform, $cpus CPU(s), 128 MiB"
    log=$WORK/platform-$cpus.txt
    t0=$(date +%s.%N)
    # QEMU's pc-testdev on the 2-CPU run: its line arrives through the IOAPIC.
    testdev=()
    [ "$cpus" -eq 2 ] && testdev=(-device pc-testdev)
    run "$log" -smp "$cpus" "${testdev[@]}"
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    before=$FAILED
    want=$ALWAYS
    [ "$cpus" -ge 2 ] && want="$want ipi-bsp-ap ipi-ap-bsp"
    [ "$cpus" -ge 3 ] && want="$want ipi-ap-ap"
    for check in $want; do
        expect "$log" "^platform: ok $check: " "$check"
    done
    reject "$log" '^platform: FAIL ' "no check failed"
    reject "$log" 'unexpected exception' "no unexpected exception"
    # QEMU's TCG has no XSDT in its RSDP 1.0 and no TSC-deadline timer; either may pass.
    expect "$log" '^platform: (ok|skip) xsdt' "XSDT checked or absent"
    expect "$log" '^platform: (ok|skip) tsc-deadline' "TSC-deadline timer checked or absent"
    expect "$log" "^platform: ok madt: .*, $cpus enabled processors of $cpus," "the MADT lists $cpus CPUs"
    expect "$log" "^platform: ok fwcfg-cpus: $cpus, as in the MADT" "fw_cfg agrees: $cpus CPUs"
    expect "$log" '^platform: ok fwcfg-ram: 128 MiB;' "fw_cfg says 128 MiB"
    expect "$log" '^platform: ok madt-irq0: IRQ0 -> GSI 2,' "IRQ0 is overridden to GSI 2"
    expect "$log" '^platform: ok irq0-ioapic: .* on IOAPIC pin 2 ' "IRQ0 arrives on IOAPIC pin 2"
    if [ "$cpus" -eq 2 ]; then
        expect "$log" '^platform: ok testdev: .* arrived as vector 0x44 through IOAPIC pin 10' "pc-testdev's line 10 interrupts"
    else
        expect "$log" '^platform: skip testdev: no pc-testdev' "no pc-testdev, no check"
    fi
    if [ "$cpus" -gt 1 ]; then
        expect "$log" "^platform: ok smp-start: $((cpus - 1)) of $((cpus - 1)) APs " "all $((cpus - 1)) APs started"
    else
        expect "$log" '^platform: ok smp-start: the MADT has 1 CPU' "no AP to start"
    fi
    expect "$log" '^platform: summary: [0-9]+ ok, 0 failed, [0-9]+ skipped$' "summary: nothing failed"
    expect "$log" '^platform: all checks passed; powering off through ACPI S5$' "the guest powers off"
    if [ "$RC" -eq 0 ] && [ "$SHUTDOWN" = guest-shutdown ]; then
        echo "  ok: QEMU ended by the guest's ACPI power-off (status 0) after ${secs}s"
    else
        fail "QEMU status $RC, ended by '$SHUTDOWN': want status 0 and a guest shutdown"
    fi
    [ $FAILED -ne $before ] && log_tail "$log"
done

echo "platform, 2 CPUs, 3.5 GiB (RAM above 4 GiB: mem_upper ends at the PCI hole)"
log=$WORK/platform-3584.txt
run "$log" -smp 2 -m 3584
expect "$log" '^platform: ok fwcfg-ram: 3584 MiB; mem_upper ends at 31[0-9]{5} KiB' "fw_cfg's 3584 MiB agree with the memory map"
expect "$log" '^platform: summary: [0-9]+ ok, 0 failed, ' "summary: nothing failed"
[ "$RC" -eq 0 ] && [ "$SHUTDOWN" = guest-shutdown ] && echo "  ok: ACPI power-off" ||
    { fail "QEMU status $RC, ended by '$SHUTDOWN' with 3.5 GiB"; log_tail "$log"; }

echo "platform without a PIT (every wait is bounded: failures, no hang)"
log=$WORK/platform-nopit.txt
run "$log" -smp 2 -machine pc,pit=off
expect "$log" '^platform: FAIL tsc-calibration: ' "calibration fails"
expect "$log" '^platform: FAIL irq0-ioapic: 0 interrupts' "no IRQ0 through the IOAPIC"
expect "$log" '^platform: FAIL irq0-pic: 0 interrupts' "no IRQ0 through the PIC"
expect "$log" '^platform: ok smp-start: 1 of 1 APs' "the APs still start"
expect "$log" '^platform: ok lapic-timer-periodic: ' "the LAPIC timer still works"
if [ "$RC" -eq 3 ]; then echo "  ok: debug-exit code 1 (status 3)"
else fail "QEMU status $RC without a PIT, want 3 (debug-exit code 1)"; log_tail "$log"; fi

echo "platform without ACPI tables (fails cleanly)"
log=$WORK/platform-noacpi.txt
run "$log" -smp 2 -machine pc,acpi=off
expect "$log" '^platform: FAIL rsdp: no "RSD PTR "' "the missing RSDP is a failed check"
expect "$log" '^platform: ok fwcfg: ' "the checks that need no ACPI still run"
expect "$log" '^platform: summary: [0-9]+ ok, [1-9][0-9]* failed, ' "summary counts the failures"
expect "$log" '^platform: [0-9]+ checks failed; debug-exit with code 1$' "the guest says it exits with 1"
if [ "$RC" -eq 3 ]; then echo "  ok: debug-exit code 1 (status 3)"
else fail "QEMU status $RC without ACPI, want 3 (debug-exit code 1)"; log_tail "$log"; fi

finish
