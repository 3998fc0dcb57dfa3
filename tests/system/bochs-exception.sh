#!/usr/bin/env bash
# A CPU exception in Keel itself (CPU 1 executes UD2, asked for with fault_test_cpu=1 on
# the command line) prints the vector, error code, all registers, CR2/CR3 and a stack
# trace, stops only that CPU, and the rest of Keel carries on to a clean power-off.
source "$(dirname "$0")/lib.sh"
"$ROOT/tools/mkiso.sh" "$WORK/fault.iso" "$BUILD/keel.elf" "$ROOT/tools/keel.cfg" \
    "console=com1,e9 fault_test_cpu=1" || fail "could not build the ISO"
log=$WORK/fault.log
bochs_boot 2 "$WORK/fault.iso" "$log" 120
expect "$log" "^\[cpu1\] FAULT TEST: CPU 1 executes UD2" "CPU 1 announces the fault test"
expect "$log" "^\[cpu1\] EXCEPTION: #UD invalid opcode \(vector 6\) error code 0x0 on CPU 1" "vector, name and error code"
expect "$log" "^\[cpu1\]   rip 0xffffffff8[0-9a-f]{7} cs 0x8 rflags 0x[0-9a-f]+ rsp 0x[0-9a-f]{16} ss 0x10" "RIP, CS, RFLAGS, RSP, SS"
expect "$log" "^\[cpu1\]   rax 0x[0-9a-f]{16} rbx 0x[0-9a-f]{16} rcx 0x[0-9a-f]{16} rdx 0x[0-9a-f]{16}" "general registers"
expect "$log" "^\[cpu1\]   r12 0x[0-9a-f]{16} r13 0x[0-9a-f]{16} r14 0x[0-9a-f]{16} r15 0x[0-9a-f]{16}" "r8-r15"
expect "$log" "^\[cpu1\]   cr0 0x[0-9a-f]+ cr2 0x[0-9a-f]{16} cr3 0x[0-9a-f]{16} cr4 0x[0-9a-f]+" "control registers with CR2 and CR3"
expect "$log" "^\[cpu1\]   stack trace: 0xffffffff8" "a stack trace"
# The trace must resolve to the real call chain: the faulting function, then its callers.
trace=$(sed -n 's/^\[cpu1\] *\(stack trace: \)\{0,1\}\(0xffffffff8[0-9a-f]\{7\}\)$/\2/p' "$log")
names=$(addr2line -f -e "$BUILD/keel.elf" $trace 2>/dev/null | awk 'NR % 2 == 1' | tr '\n' ' ')
case "$names" in
    "cpu_fault_test_point ap_main "*) echo "  ok: the trace resolves to cpu_fault_test_point <- ap_main <- ..." ;;
    *) fail "stack trace resolves to '$names', want cpu_fault_test_point, ap_main, ..." ;;
esac
expect "$log" "^\[cpu1\] EXCEPTION: CPU 1 stopped" "only CPU 1 stops"
expect "$log" "^\[cpu0\] Keel: boot complete" "the boot CPU carries on"
expect "$log" "powering off" "Keel still powers off by itself"
finish "$log"
