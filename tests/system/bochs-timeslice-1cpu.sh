#!/usr/bin/env bash
# Bochs, 1 CPU, 3 VMs: time slicing by the VMX-preemption timer. The spinner runs with
# interrupts off and no exits of its own, yet both hellos finish before it; configs that
# do not fit (more RAM than the machine has, a missing image) are reported and skipped.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/slice.iso" "$ROOT/tests/system/configs/timeslice-1cpu.cfg" "$G/hello.elf" "$G/spinner.elf"
log=$WORK/slice.log
bochs_boot 1 "$WORK/slice.iso" "$log" 240
expect "$log" "VM too-big: not started: needs 3072 MiB of RAM, only [0-9]+ MiB free" "too-big VM rejected with a clear error"
expect "$log" "VM no-image: not started: image 'missing.elf' was not loaded" "VM with a missing image rejected"
expect "$log" "VMM: 3 of 5 configured VMs started" "the three VMs that fit started"
expect "$log" "VM spinner: .* on CPU 0" "spinner on CPU 0"
expect "$log" "VM hello-a: .* on CPU 0" "hello-a on CPU 0"
expect "$log" "VM hello-b: .* on CPU 0" "hello-b on CPU 0"
a=$(line_of "$log" "VM hello-a: stopped"); b=$(line_of "$log" "VM hello-b: stopped"); s=$(line_of "$log" "VM spinner: stopped")
if [ "$a" -gt 0 ] && [ "$b" -gt 0 ] && [ "$s" -gt "$a" ] && [ "$s" -gt "$b" ]; then
    echo "  ok: both hellos stopped before the spinner (lines $a, $b < $s)"
else
    fail "hellos did not finish before the spinner (lines hello-a $a, hello-b $b, spinner $s)"
fi
expect "$log" "VM spinner: exits by reason: .*PREEMPTION_TIMER [0-9]+" "the spinner was preempted by the timer"
expect "$log" "VM spinner: exit code 1 \(0x1\)" "spinner completes"
expect "$log" "VM hello-a: exit code 1 \(0x1\)" "hello-a completes"
expect "$log" "Keel: all 3 VMs have stopped" "all VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
