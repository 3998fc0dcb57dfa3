#!/usr/bin/env bash
# Boots the Multiboot2 ISO in Bochs with 1, 2 and 4 CPUs (or the counts given as
# arguments): every CPU must come online with VMX enabled, the VMX capability summary
# must be printed, and Keel must power the machine off by itself.
source "$(dirname "$0")/lib.sh"
ISO=$BUILD/keel.iso
[ -f "$ISO" ] || { fail "$ISO missing (run make iso)"; finish; }
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 2 4)
for n in "${counts[@]}"; do
    log=$WORK/bochs-$n.log
    t0=$(date +%s.%N)
    bochs_boot "$n" "$ISO" "$log" 180
    echo "  Bochs with $n CPU(s): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s wall"
    expect "$log" "Keel .*: started by .* via Multiboot2" "$n CPUs: core started via Multiboot2"
    expect "$log" "SMP: $n of $n CPUs online" "$n CPUs: all online"
    expect_count "$log" "CPU [0-9]+ online \(APIC id [0-9]+\): VMX enabled" "$n" "$n CPUs: each has VMX enabled"
    expect "$log" "VMX: VMCS revision 0x2b \(TRUE controls\), VPID yes, unrestricted guest yes, preemption timer yes" "$n CPUs: capability summary"
    expect "$log" "VMX: EPT 4-level, memory types WB UC, pages 4K/2M/1G" "$n CPUs: EPT summary"
    expect "$log" "VMX: all required features present" "$n CPUs: nothing required is missing"
    expect "$log" "ACPI: MADT: " "$n CPUs: MADT parsed"
    expect "$log" "PCI: [0-9]+ devices" "$n CPUs: PCI enumerated"
    expect "$log" "powering off" "$n CPUs: Keel powers off by itself"
    reject "$log" "EXCEPTION|PANIC" "$n CPUs: no exception or panic"
    [ $FAILED -eq 0 ] || { log_tail "$log"; break; }
done
finish
