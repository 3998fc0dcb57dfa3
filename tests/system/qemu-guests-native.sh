#!/usr/bin/env bash
# Runs the test guests directly under QEMU (TCG, no hypervisor), one QEMU at a time.
# This proves they are real Multiboot kernels (and a real boot sector) that print,
# catch faults and exit through the debug-exit port; the Keel-specific checks are
# expected to fail here, and the test asserts that they fail cleanly rather than hang.
# QEMU's exit status is (code << 1) | 1 for a debug-exit write, 0 for a reset with
# -no-reboot, 124 for our timeout.
source "$(dirname "$0")/lib.sh"

make -C "$ROOT" -s guests || { fail "the guests do not build"; finish; }
G=$BUILD/guests

# run LOG ARGS...: boots QEMU with COM1 to LOG; sets RC.
run() {
    local log=$1; shift
    timeout 30 qemu-system-x86_64 -display none -no-reboot -m 64 -monitor none \
        -serial "file:$log" -device isa-debug-exit,iobase=0xf4,iosize=0x04 "$@" \
        >"$log.qemu" 2>&1
    RC=$?
}
# status LOG WANT DESCRIPTION
status() {
    if [ "$RC" -eq "$2" ]; then echo "  ok: $3 (status $RC)"
    else fail "$3: QEMU status $RC, want $2"; log_tail "$1"; fi
}

echo "hello"
run "$WORK/hello.txt" -kernel "$G/hello.elf" -append "world"
status "$WORK/hello.txt" 1 "hello exits with code 0"
expect "$WORK/hello.txt" '^hello: Hello from world$' "hello greets the command line"
expect "$WORK/hello.txt" '^hello: mem_lower=[0-9]+ KiB mem_upper=6[0-9]{4} KiB$' "hello prints mem_upper"
expect "$WORK/hello.txt" '^hello: mmap 0x00100000-0x[0-9a-f]+ type 1$' "hello prints the memory map"

echo "real (as a BIOS boot sector)"
run "$WORK/real.txt" -drive "format=raw,file=$G/real.bin,if=floppy"
status "$WORK/real.txt" 1 "real exits with code 0"
expect "$WORK/real.txt" '^real: Hello from real mode$' "real prints its line"

echo "spinner"
run "$WORK/spinner.txt" -kernel "$G/spinner.elf" -append "n=5000000 reports=5"
status "$WORK/spinner.txt" 1 "spinner exits with code 0"
expect_count "$WORK/spinner.txt" '^spinner: [0-9]+/5000000 iterations' 5 "spinner reports progress 5 times"
expect "$WORK/spinner.txt" '^spinner: done after [0-9]+ ticks$' "spinner finishes"

echo "spinner with a malformed option"
run "$WORK/spinner-bad.txt" -kernel "$G/spinner.elf" -append "n=12x reports=2"
expect "$WORK/spinner-bad.txt" "^spinner: option n: bad value '12x'" "bad n is reported"

echo "bench (VMCALL raises #UD outside Keel)"
run "$WORK/bench.txt" -kernel "$G/bench.elf" -append "n=1000"
status "$WORK/bench.txt" 3 "bench fails with code 1"
expect "$WORK/bench.txt" '^bench: cpuid N=1000 total=[0-9]+ per_exit=[0-9]+$' "bench times CPUID"
expect "$WORK/bench.txt" '^bench: FAIL: VMCALL raised #UD' "bench catches the #UD"

echo "cpuid-msr-io (not under Keel: fails cleanly)"
run "$WORK/cpuid.txt" -kernel "$G/cpuid-msr-io.elf"
status "$WORK/cpuid.txt" 3 "cpuid-msr-io fails with code 1"
expect "$WORK/cpuid.txt" '^cpuid-msr-io: ok: IN byte from port 0x2f0 reads 0xff' "unclaimed port reads 0xff"
expect "$WORK/cpuid.txt" '^cpuid-msr-io: [0-9]+ of [0-9]+ checks FAILED$' "summary line"

echo "storm (not under Keel: stops before its first exit that would fault)"
run "$WORK/storm.txt" -kernel "$G/storm.elf" -append "n=10 mix=cv"
status "$WORK/storm.txt" 3 "storm fails with code 1"
expect "$WORK/storm.txt" '^storm: FAIL: CPUID 0x40000000 has no Keel signature' "storm finds no Keel signature"

echo "attacker (QEMU behaves like bare hardware: the reset port really resets)"
run "$WORK/attacker.txt" -kernel "$G/attacker.elf"
status "$WORK/attacker.txt" 0 "QEMU reset through 0xCF9 and quit (-no-reboot)"
expect "$WORK/attacker.txt" '^attacker: blocked: VMXON raised #UD$' "VMXON raises #UD"
reject "$WORK/attacker.txt" 'attacker: unexpected exception' "no unexpected exception"

for attack in ram-end-read ram-end-write host-read lapic-write; do
    echo "attacker attack=$attack up to the fatal step"
    run "$WORK/attacker-$attack.txt" -kernel "$G/attacker.elf" \
        -append "cf9=skip lenient=1 attack=$attack"
    status "$WORK/attacker-$attack.txt" 255 "attacker exits with 0x7f"
    expect "$WORK/attacker-$attack.txt" "^attacker: fatal attempt: $attack, " "fatal attempt announced"
    expect "$WORK/attacker-$attack.txt" "^attacker: NOT BLOCKED: $attack: " "and reported as not blocked"
done

finish
