#!/usr/bin/env bash
# Bochs, 4 CPUs: one VM pinned to each CPU, covering the three entry kinds (Multiboot,
# real mode, ELF64) and the CPUID/MSR/IO checker. Each VM must run on its own CPU.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/pinned.iso" "$ROOT/tests/system/configs/pinned-4cpu.cfg" \
    "$G/hello.elf" "$G/real.bin" "$G/hello64.elf" "$G/cpuid-msr-io.elf"
log=$WORK/pinned.log
bochs_boot 4 "$WORK/pinned.iso" "$log" 240
expect "$log" "SMP: 4 of 4 CPUs online" "4 CPUs online"
expect "$log" "VMM: 4 of 4 configured VMs started" "four VMs started"
cpu=0
for vm in mb0 real1 long2 check3; do
    expect "$log" "VM $vm: .* on CPU $cpu(, [0-9]+ vCPUs)?\$" "$vm placed on CPU $cpu"
    expect "$log" "^\[cpu$cpu\] $vm: " "$vm's output comes from CPU $cpu"
    reject "$log" "^\[cpu[^$cpu]\] $vm: " "$vm never ran elsewhere"
    expect "$log" "VM $vm: exit code 1 \(0x1\)" "$vm exits with success"
    cpu=$((cpu + 1))
done
expect "$log" "mb0: hello: Hello from cpu0" "Multiboot guest greets"
expect "$log" "real1: real: Hello from real mode" "real-mode guest greets"
expect "$log" "long2: hello64: Hello from long mode" "ELF64 guest greets from long mode"
expect "$log" "long2: hello64: ok: AP 1 of 2 started in real mode from INIT-SIPI" "an AP of a 64-bit VM starts in real mode at its SIPI"
expect "$log" "check3: cpuid-msr-io: all [0-9]+ checks passed" "checker passes"
expect "$log" "Keel: all 4 VMs have stopped" "all VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
