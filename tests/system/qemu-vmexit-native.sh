#!/usr/bin/env bash
# The benchmark family (tests/guests/vmexit/) under plain QEMU (TCG, no hypervisor): the
# same image Keel runs is a real Multiboot kernel. Every test prints its figure, or a
# skip line where it needs what TCG lacks (VMCALL, the TSC-deadline timer, x2APIC), or a second
# CPU with -smp 1; a selection on the command line runs only those tests; an unknown
# test name is refused with the list of names.
# QEMU's exit status: (code << 1) | 1 for a debug-exit write, 124 for our timeout.
source "$(dirname "$0")/lib.sh"

make -C "$ROOT" -s "$BUILD/guests/vmexit.elf" || { fail "the vmexit guest does not build"; finish; }
ELF=$BUILD/guests/vmexit.elf
names=$(sed -n 's/^ *X(\([a-z0-9_]*\),.*/\1/p' "$ROOT/tests/guests/vmexit/tests.c")

# run LOG CMDLINE ARGS...: boots the guest with COM1 to LOG; sets RC.
run() {
    local log=$1 cmdline=$2; shift 2
    timeout 60 qemu-system-x86_64 -display none -no-reboot -m 128 -monitor none \
        -serial "file:$log" -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -kernel "$ELF" -append "$cmdline" "$@" >"$log.qemu" 2>&1 </dev/null
    RC=$?
    [ $RC -eq 124 ] && fail "QEMU $* did not end within 60 s (hang?)"
}

# Small batches: TCG's TSC runs at the host's rate, and the figures are not checked.
for cpus in 2 1; do
    echo "vmexit, $cpus CPU(s)"
    log=$WORK/vmexit-$cpus.txt
    before=$FAILED
    run "$log" "n=64 goal=4000000" -smp "$cpus"
    skipped="vmcall tscdeadline_immed tscdeadline $(echo "$names" | grep '^x2apic_' | tr '\n' ' ')"
    [ "$cpus" -eq 1 ] && skipped="$skipped ipi ipi_halt"
    for n in $names; do
        if [[ " $skipped " == *" $n "* ]]; then
            expect "$log" "^$n \(skipped\)$" "$n skipped"
        else
            expect "$log" "^$n [0-9]+$" "$n measured"
        fi
    done
    expect "$log" '^vmexit: note: vmcall: VMCALL needs Keel or KVM' "the skip says why"
    expect "$log" "^vmexit: n=64 goal=4000000 hypervisor=none tsc-deadline=no x2apic=no cpus=$cpus pm-timer=0x608 " \
        "no hypervisor, TSC deadline or x2APIC, $cpus CPU(s), the PM timer from the FADT"
    [ "$cpus" -eq 2 ] && expect "$log" '^vmexit: AP with APIC ID 1 started' "the AP started by INIT-SIPI"
    expect "$log" '^  eoi self_ipi_sti_nop [0-9]+$' "the EOI figure"
    expect "$log" '^vmexit: done$' "the run completed"
    reject "$log" 'unexpected exception|spurious|interrupts for' "every interrupt arrived once; no unexpected exception or spurious interrupt"
    [ "$RC" -eq 1 ] && echo "  ok: debug-exit code 0 (status 1)" || fail "QEMU status $RC, want 1 (debug-exit code 0)"
    [ $FAILED -ne $before ] && log_tail "$log"
done

echo "vmexit, a selection of tests"
log=$WORK/vmexit-some.txt
run "$log" "n=64 goal=0 mov_dr cpuid" -smp 2
expect_count "$log" '^[a-z0-9_]+ ([0-9]+|\(skipped\))$' 2 "exactly two tests ran"
expect "$log" '^cpuid [0-9]+$' "cpuid ran"
expect "$log" '^mov_dr [0-9]+$' "mov_dr ran"
[ "$RC" -eq 1 ] && echo "  ok: debug-exit code 0" || fail "QEMU status $RC, want 1"

echo "vmexit, an unknown test name"
log=$WORK/vmexit-bad.txt
run "$log" "cpuid no_such_test" -smp 1
expect "$log" "^vmexit: unknown test 'no_such_test'$" "the unknown name is named"
expect "$log" '^vmexit: tests: cpuid vmcall ' "the valid names are listed"
reject "$log" '^cpuid [0-9]+$' "nothing ran"
[ "$RC" -eq 3 ] && echo "  ok: debug-exit code 1 (status 3)" || fail "QEMU status $RC, want 3 (debug-exit code 1)"

finish
