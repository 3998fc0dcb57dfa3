#!/usr/bin/env bash
# Bochs, 2 CPUs, 5 VMs: two hellos, the CPUID/MSR/IO checker, a spinner and an
# attacker. Every VM's output and exit code must appear; the attacker must be stopped
# by an EPT violation after every non-fatal attack was blocked, while the others finish;
# Keel powers off once all VMs have stopped.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/five.iso" "$ROOT/tests/system/configs/five-vms.cfg" \
    "$G/hello.elf" "$G/cpuid-msr-io.elf" "$G/spinner.elf" "$G/attacker.elf"
log=$WORK/five.log
bochs_boot 2 "$WORK/five.iso" "$log" 240
expect "$log" "VMM: 5 of 5 configured VMs started" "all five VMs created"
for vm in hello-a hello-b; do
    expect "$log" "^\[cpu[0-9]\] $vm: hello: Hello from $vm\$" "$vm prints its greeting with its command line"
    expect "$log" "VM $vm: exit code 1 \(0x1\)" "$vm exits with code (0<<1)|1"
done
expect "$log" "checker: cpuid-msr-io: all [0-9]+ checks passed" "cpuid-msr-io: every check passes"
expect "$log" "VM checker: exit code 1 \(0x1\)" "cpuid-msr-io exits with success"
expect "$log" "spinner: spinner: done after" "spinner finishes"
expect "$log" "VM spinner: exit code 1 \(0x1\)" "spinner exits with success"
expect "$log" "attacker: attacker: ([0-9]+) of \1 attempts blocked, 0 skipped" "attacker: every non-fatal attempt blocked"
expect "$log" "VM attacker: stopped: EPT violation: read at guest-physical 0x400000 \(outside its RAM" "attacker stopped with an EPT-violation report"
expect "$log" "VM attacker: report: [0-9]+ exits" "attacker's report printed"
reject "$log" "NOT BLOCKED" "no attack got through"
reject "$log" "VM attacker: exit code" "attacker did not exit by itself"
expect "$log" "VM hello-a: report: [0-9]+ exits, guest time [0-9]+ TSC ticks, time in Keel [0-9]+ TSC ticks" "per-VM report with times"
expect "$log" "VM checker: exits by reason: CPUID [0-9]+, VMCALL [0-9]+, IO_INSTRUCTION [0-9]+, RDMSR [0-9]+, WRMSR [0-9]+" "exit counts by reason"
expect "$log" "Keel: all 5 VMs have stopped" "all VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
