#!/usr/bin/env bash
# The virtual PC under Keel: the platform guest, unmodified (it runs the same checks
# under plain QEMU, tests/system/qemu-platform-native.sh), in a 2-vCPU and a 4-vCPU VM
# side by side on 2 CPUs. It finds the ACPI tables by the RSDP scan, the CPU count and
# RAM through fw_cfg, starts its APs with INIT-SIPI-SIPI from a real-mode trampoline,
# sends IPIs between vCPUs, takes LAPIC timer interrupts in all three modes, reads the
# RTC and the PM timer, takes PIT IRQ 0 through the IOAPIC and then the 8259, and
# accesses the LAPIC and IOAPIC by MMIO (decoded by Keel); the 2-vCPU VM has testdev = on
# and raises an interrupt through pc-testdev's line port. With every check passed it
# powers off through ACPI S5.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/platform.iso" "$ROOT/tests/system/configs/platform-2cpu.cfg" "$G/platform.elf"
log=$WORK/platform.log
bochs_boot 2 "$WORK/platform.iso" "$log" 420
expect "$log" "VMM: 2 of 2 configured VMs started" "both VMs started"
for vm in pc2 pc4; do
    for check in tsc-calibration rsdp rsdt xsdt madt madt-ioapic madt-irq0 fadt dsdt s5 fwcfg fwcfg-cpus \
        fwcfg-ram lapic pm-timer smp-start ipi-self ipi-bsp-ap ipi-ap-bsp nmi uart-irq lapic-timer-oneshot \
        lapic-timer-periodic tsc-deadline irq0-ioapic irq0-pic rtc rtc-advance acpi-mode; do
        expect "$log" "$vm: platform: ok $check: " "$vm: $check"
    done
done
expect "$log" "pc2: platform: ok madt: .*, 2 enabled processors of 2," "the 2-vCPU VM's MADT lists 2 CPUs"
expect "$log" "pc4: platform: ok madt: .*, 4 enabled processors of 4," "the 4-vCPU VM's MADT lists 4 CPUs"
expect "$log" "pc2: platform: ok fwcfg-cpus: 2, as in the MADT" "fw_cfg agrees: 2 CPUs"
expect "$log" "pc4: platform: ok fwcfg-cpus: 4, as in the MADT" "fw_cfg agrees: 4 CPUs"
expect "$log" "pc2: platform: ok smp-start: 1 of 1 APs " "the 2-vCPU VM's AP started"
expect "$log" "pc4: platform: ok smp-start: 3 of 3 APs " "all 3 APs of the 4-vCPU VM started on 2 CPUs"
expect "$log" "pc4: platform: ok ipi-ap-ap: " "an AP reaches another AP"
expect "$log" "pc2: platform: ok testdev: .* arrived as vector 0x44 through IOAPIC pin 10" "testdev = on: pc-testdev's line 10 interrupts through the IOAPIC"
expect "$log" "pc4: platform: skip testdev: no pc-testdev \\(port 0xe0 reads 0xffffffff\\)" "without testdev = on its ports are unclaimed"
expect "$log" "pc4: platform: this line went out a byte per THR-empty interrupt" "COM1 output driven by its THRE interrupt reaches the console"
reject "$log" "platform: FAIL " "no check fails"
for vm in pc2 pc4; do
    expect "$log" "$vm: platform: summary: [0-9]+ ok, 0 failed, " "$vm: every check passed"
    expect "$log" "VM $vm: stopped: powered off by the guest \\(ACPI sleep state S5" "$vm: powered off through ACPI S5"
done
expect "$log" "Keel: all 2 VMs have stopped" "all VMs stopped"
# The scheduler's figure for an IPI to a vCPU waiting on another CPU: from the kick to
# the woken vCPU loaded there (vmm/sched.c).
wake=$(sed -n 's/.*SCHED: CPU \([0-9]*\): .* \([0-9]*\) IPI wake-ups (min \([0-9]*\), avg \([0-9]*\), max \([0-9]*\) ticks).*/CPU \1: \2 wake-ups, min \3, avg \4, max \5/p' "$log" | paste -sd';' -)
[ -n "$wake" ] && echo "SCHED-COST: IPI wake-up to the woken vCPU loaded, Bochs ticks: $wake" || fail "no IPI wake-up figures"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
