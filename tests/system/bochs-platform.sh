#!/usr/bin/env bash
# The virtual PC under Keel: the platform guest, unmodified (it runs the same checks
# under plain QEMU, tests/system/qemu-platform-native.sh), in a 2-vCPU and a 4-vCPU VM
# side by side on 2 CPUs. It finds the ACPI tables by the RSDP scan, the CPU count and
# RAM through fw_cfg, starts its APs with INIT-SIPI-SIPI from a real-mode trampoline,
# sends IPIs between vCPUs, takes LAPIC timer interrupts in all three modes, reads the
# RTC and the PM timer, and accesses the LAPIC and IOAPIC by MMIO (decoded by Keel).
#
# Known gap, checked as such so a fix shows: PIT IRQ 0 does not reach the guest after
# the guest has used the PIT for its own timing (irq0-ioapic and irq0-pic fail), so the
# guest ends through debug-exit with code 1 (Keel reports 3, QEMU's encoding) instead of its
# S5 power-off.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/platform.iso" "$ROOT/tests/system/configs/platform-2cpu.cfg" "$G/platform.elf"
log=$WORK/platform.log
bochs_boot 2 "$WORK/platform.iso" "$log" 420
expect "$log" "VMM: 2 of 2 configured VMs started" "both VMs started"
for vm in pc2 pc4; do
    for check in tsc-calibration rsdp rsdt xsdt madt madt-ioapic madt-irq0 fadt dsdt s5 fwcfg fwcfg-cpus \
        fwcfg-ram lapic pm-timer smp-start ipi-self ipi-bsp-ap ipi-ap-bsp lapic-timer-oneshot \
        lapic-timer-periodic tsc-deadline rtc rtc-advance acpi-mode; do
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
expect_count "$log" "platform: FAIL irq0-(ioapic|pic): " 4 "the known PIT IRQ 0 gap, and nothing else, fails"
expect_count "$log" "platform: FAIL " 4 "no other check fails"
expect "$log" "VM pc2: exit code 3 " "the 2-vCPU VM finishes"
expect "$log" "VM pc4: exit code 3 " "the 4-vCPU VM finishes"
expect "$log" "Keel: all 2 VMs have stopped" "all VMs stopped"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
