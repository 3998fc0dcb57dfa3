#!/usr/bin/env bash
# The platform guest (see bochs-platform.sh) in a 4-vCPU VM on 4 CPUs: every check of
# the virtual PC passes when the vCPUs run side by side, not only when they share CPUs,
# and the VM's vCPUs spread over the CPUs.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/platform4.iso" "$ROOT/tests/system/configs/platform-4cpu.cfg" "$G/platform.elf"
log=$WORK/platform4.log
bochs_boot 4 "$WORK/platform4.iso" "$log" 420
expect "$log" "SMP: 4 of 4 CPUs online" "4 CPUs online"
for check in tsc-calibration rsdp rsdt xsdt madt madt-ioapic madt-irq0 fadt dsdt s5 fwcfg fwcfg-cpus \
    fwcfg-ram lapic pm-timer smp-start ipi-self ipi-bsp-ap ipi-ap-bsp ipi-ap-ap nmi uart-irq \
    lapic-timer-oneshot lapic-timer-periodic tsc-deadline irq0-ioapic irq0-pic rtc rtc-advance acpi-mode; do
    expect "$log" "pc4: platform: ok $check: " "$check"
done
expect "$log" "pc4: platform: ok madt: .*, 4 enabled processors of 4," "the MADT lists 4 CPUs"
expect "$log" "pc4: platform: ok fwcfg-cpus: 4, as in the MADT" "fw_cfg agrees: 4 CPUs"
expect "$log" "pc4: platform: ok smp-start: 3 of 3 APs " "all 3 APs started"
reject "$log" "platform: FAIL " "no check fails"
expect "$log" "pc4: platform: summary: [0-9]+ ok, 0 failed, " "every check passed"
expect "$log" "VM pc4: stopped: powered off by the guest \\(ACPI sleep state S5" "powered off through ACPI S5"
# The only VM's vCPUs ran on every CPU: the scheduler's per-CPU report counts runs.
for c in 0 1 2 3; do
    expect "$log" "SCHED: CPU $c: [1-9][0-9]* runs," "CPU $c ran some of pc4's vCPUs"
done
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
