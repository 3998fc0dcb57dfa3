#!/usr/bin/env bash
# Every fatal attack the attacker guest knows (read and write past the end of its RAM,
# read where Keel lives on the host, write to the MMIO hole beside the local APIC) stops only that VM,
# with an EPT-violation report naming the address and access; a reset through 0xCF9
# stops a VM with on_reset = stop and restarts one with the default (a 2-vCPU VM whose
# second boot finds the mark its first left in CMOS RAM); an innocent VM on the same
# CPUs completes, and Keel itself keeps running to a clean power-off. Each attacker also
# abuses its virtual PC (IPI and INIT-SIPI floods to missing APIC IDs, the LAPIC timer at
# its fastest, the APIC base onto RAM and past the address width, an IOAPIC pin to a
# missing vCPU, an unknown fw_cfg key, sleep state S1): each is handled and logged once
# per VM (and boot), and the bystander on the same two CPUs still finishes.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/attacks.iso" "$ROOT/tests/system/configs/attacks-2cpu.cfg" "$G/attacker.elf" "$G/cpuid-msr-io.elf"
log=$WORK/attacks.log
bochs_boot 2 "$WORK/attacks.iso" "$log" 240
expect "$log" "VMM: 7 of 7 configured VMs started" "all VMs started"
expect "$log" "VM ram-write: stopped: EPT violation: write at guest-physical 0x400000 \(outside its RAM" "write past RAM stopped"
expect "$log" "VM ram-read: stopped: EPT violation: read at guest-physical 0x200000 \(outside its RAM" "read past a 2 MiB RAM stopped"
expect "$log" "VM host-read: stopped: EPT violation: read at guest-physical 0x[0-9a-f]+ \(outside its RAM" "read of host memory stopped"
expect "$log" "attacker: blocked: local APIC TPR write of 0xff reads back 0xff from the VM's own LAPIC" "a local APIC TPR write reaches only the VM's virtual LAPIC"
expect "$log" "VM lapic-write: stopped: EPT violation: write at guest-physical 0xfed00000 \(outside its RAM" "a write to the MMIO hole stopped"
expect_count "$log" "attacker: ([0-9]+) of \1 attempts blocked, 0 skipped" 7 "each attacker had every non-fatal attempt blocked"
reject "$log" "NOT BLOCKED" "no attack got through"
# XSETBV 0x23 once passed Keel's check and faulted in root mode, stopping the CPU.
expect_count "$log" "attacker: blocked: XSETBV XCR0=0x23 raised #GP" 7 "XSETBV with the AVX-512 opmask alone is #GP in every attacker"
expect_count "$log" "attacker: blocked: XSETBV XCR0=0x" 49 "all seven invalid XCR0 values are #GP in every attacker (and boot)"
expect "$log" "attacker: blocked: setting CR4\.[A-Z0-9 ]+ \(bit [0-9]+, not offered\) raised #GP" "CR4 bits the CPU lacks are #GP"
expect "$log" "VM reset: stopped: reset by the guest \(reset control register \(port 0xCF9\)\); on_reset = stop" "on_reset = stop: a hard reset through 0xCF9 ends only that VM's run"
expect "$log" "VM restart: reset by the guest \(reset control register \(port 0xCF9\)\); restarting from its image \(restart 1\)" "on_reset = restart: the reset restarts the VM"
expect "$log" "restart: attacker: restarted: second boot after the reset found its CMOS mark" "the second boot runs from the image and sees the CMOS RAM kept"
expect "$log" "VM restart: exit code 1 \(0x1\)" "the restarted VM completes"
expect "$log" "VM restart: restarted 1 time \(last: reset control register \(port 0xCF9\)\)" "its report counts the restart"
# The virtual PC abused, each twice per boot: handled, and logged once per VM and boot.
for vm in ram-write host-read lapic-write ram-read reset restart; do
    boots=1; vcpus=1
    [ $vm = restart ] && boots=2 && vcpus=2
    expect_count "$log" "VM $vm: IPI from vCPU 0 to APIC ID destination 0x7f reaches nobody: the VM has $vcpus vCPUs \\(logged once\\)" $boots "$vm: IPIs to a missing APIC ID, logged once"
    expect_count "$log" "VM $vm: vCPU 0's periodic APIC timer \\(1 ticks, divide 1\\) is faster than one interrupt per [0-9]+ ns: it fires at that rate \\(logged once\\)" $boots "$vm: the fastest LAPIC timer is slowed, logged once"
    expect_count "$log" "VM $vm: vCPU 0 moved its xAPIC base onto RAM at 0x100000: refused" $boots "$vm: APIC base onto RAM refused, logged once"
    expect_count "$log" "VM $vm: IOAPIC pin 2 is redirected to APIC ID 0x7f, which the VM does not have: dropped \\(logged once\\)" $boots "$vm: IOAPIC redirection to a missing vCPU dropped, logged once"
    expect_count "$log" "VM $vm: fw_cfg: unknown key 0x1234 selected; it reads as zeros \\(logged once\\)" $boots "$vm: unknown fw_cfg key, logged once"
    expect_count "$log" "VM $vm: ACPI PM: sleep type 1 refused: only S5 \\(type [0-9]+\\) is supported; the VM keeps running \\(logged once\\)" $boots "$vm: unsupported sleep state refused, logged once"
done
expect_count "$log" "attacker: blocked: [0-9]+ INIT-SIPI pairs to APIC IDs 1 and 0x7f: this vCPU still runs" 7 "INIT-SIPI floods leave the sender running"
expect "$log" "bystander: cpuid-msr-io: all [0-9]+ checks passed" "the bystander VM is unharmed"
expect "$log" "VM bystander: exit code 1 \(0x1\)" "the bystander completes"
expect "$log" "Keel: all 7 VMs have stopped" "all VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
