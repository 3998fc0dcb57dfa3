#!/usr/bin/env bash
# Bochs, 2 CPUs, two runs of the scheduler (vmm/sched.c) with CPU-bound fpu-isolation
# guests that spin with a pattern in their vector registers (spin=) for a fixed span of
# TSC ticks (ticks=) and count the rounds they get done:
#  1. three equal VMs free to move: equal shares (Jain's index over rounds >= 0.99, all
#     within 5 %), which only migration gives; each is migrated many times and keeps
#     its vector registers;
#  2. weights 512:256 on CPU 0 give 2:1 of it; a VM with cpus = 1 never runs on CPU 0
#     (the guest checks VM_INFO's host CPU every round); CPU 1 then idles halted.
# Prints the scheduler's figures from the same runs: a vCPU switch on one CPU, a
# migration (VMCLEAR on the old CPU and the load on the new one), in Bochs ticks.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
keep() { [ -n "${KEEL_KEEP_LOGS:-}" ] && cp "$1" "$KEEL_KEEP_LOGS/" ; return 0; }

# rate LOG VM: the rounds the VM's guest got done per million TSC ticks of its run (its
# last round may end a little after its span, waiting for a CPU: the rate counts that).
rate() {
    sed -n "s/^\[cpu[0-9]*\] $2: fpu-isolation: spun \([0-9]*\) rounds in \([0-9]*\) ticks.*/\1 \2/p" "$1" |
        head -1 | awk '{ printf "%.4f", $1 * 1000000 / $2 }'
}

make_iso "$WORK/fair.iso" "$ROOT/tests/system/configs/sched-fair-2cpu.cfg" "$G/fpu-isolation.elf"
log=$WORK/fair.log
bochs_boot 2 "$WORK/fair.iso" "$log" 150
keep "$log"
expect "$log" "VMM: 3 of 3 configured VMs started" "the three VMs started"
ra=$(rate "$log" fair-a); rb=$(rate "$log" fair-b); rc=$(rate "$log" fair-c)
if [ -z "$ra" ] || [ -z "$rb" ] || [ -z "$rc" ]; then
    fail "missing round counts (fair-a '$ra', fair-b '$rb', fair-c '$rc')"
else
    verdict=$(awk -v a="$ra" -v b="$rb" -v c="$rc" 'BEGIN {
        s = a + b + c; j = s * s / (3 * (a*a + b*b + c*c));
        lo = a; if (b < lo) lo = b; if (c < lo) lo = c;
        hi = a; if (b > hi) hi = b; if (c > hi) hi = c;
        printf "%.4f %.1f %s", j, 100 * (hi - lo) / hi, (j >= 0.99 && (hi - lo) <= 0.05 * hi) ? "ok" : "bad" }')
    echo "SCHED-FAIR: 3 VMs on 2 CPUs: rounds per million ticks $ra $rb $rc, Jain ${verdict%% *}, spread $(echo "$verdict" | cut -d' ' -f2) %"
    [ "${verdict##* }" = ok ] && echo "  ok: equal shares (Jain >= 0.99, within 5 %)" ||
        fail "unequal shares: rounds per million ticks $ra $rb $rc (Jain, spread %: ${verdict% *})"
fi
# Fairness needs moves, not necessarily of every VM: count how often each one moved
# (Keel's report) and how often its guest found itself on another CPU (VM_INFO).
total_moves=0; well_moved=0
for vm in fair-a fair-b fair-c; do
    expect "$log" "^\[cpu[0-9]\] $vm: fpu-isolation: seed [0-9]+: [0-9]+ rounds, XMM0-7 intact" "$vm kept its vector registers"
    moves=$(sed -n "s/^\[cpu[0-9]*\] VM $vm: vCPU 0: .* \([0-9]*\) migrations.*/\1/p" "$log" | head -1)
    seen=$(sed -n "s/^\[cpu[0-9]*\] $vm: fpu-isolation: spun .* host CPUs 0x[0-9a-f]*, \([0-9]*\) changes of CPU.*/\1/p" "$log" | head -1)
    echo "  $vm: $moves migrations, its guest saw $seen changes of host CPU"
    total_moves=$((total_moves + ${moves:-0}))
    [ "${moves:-0}" -ge 10 ] && [ "${seen:-0}" -ge 10 ] && well_moved=$((well_moved + 1))
done
if [ "$total_moves" -ge 20 ] && [ "$well_moved" -ge 1 ]; then
    echo "  ok: $total_moves migrations in all; $well_moved VMs moved 10 times or more and kept their registers"
else
    fail "too few migrations to show anything ($total_moves in all, $well_moved VMs moved 10 times or more)"
fi
expect "$log" "VM fair-a: exit code 1 \(0x1\)" "fair-a completes"
mig=$(sed -n 's/.*SCHED: CPU [0-9]*: .* \([0-9]*\) migrations in (min \([0-9]*\), avg \([0-9]*\) ticks).*/\1 \2 \3/p' "$log")
reject "$log" "FAIL|EXCEPTION|PANIC|KEEL BUG" "no failure, exception, panic or Keel bug"

make_iso "$WORK/weights.iso" "$ROOT/tests/system/configs/sched-weights-2cpu.cfg" "$G/fpu-isolation.elf"
log2=$WORK/weights.log
bochs_boot 2 "$WORK/weights.iso" "$log2" 150
keep "$log2"
expect "$log2" "VMM: 3 of 3 configured VMs started" "the three VMs started"
expect "$log2" "VM heavy: .*, weight 512, on CPU 0$" "heavy has weight 512, on CPU 0"
expect "$log2" "VM pinned1: .* on CPU 1$" "pinned1 on CPU 1"
rh=$(rate "$log2" heavy); rl=$(rate "$log2" light)
if [ -z "$rh" ] || [ -z "$rl" ] || [ "$rl" = 0.0000 ]; then
    fail "missing round counts (heavy '$rh', light '$rl')"
else
    ratio=$(awk -v h="$rh" -v l="$rl" 'BEGIN { printf "%.3f", h / l }')
    echo "SCHED-WEIGHTS: weights 512:256 on CPU 0: rounds per million ticks $rh : $rl = $ratio"
    awk -v r="$ratio" 'BEGIN { exit !(r >= 1.9 && r <= 2.1) }' && echo "  ok: 2:1 within 5 %" ||
        fail "weights 512:256 gave $ratio:1, not 2:1"
fi
expect "$log2" "^\[cpu1\] pinned1: fpu-isolation: spun 40 rounds .* on host CPUs 0x2, 0 changes" "pinned1 found itself on CPU 1 only (VM_INFO, every round)"
reject "$log2" "^\[cpu0\] pinned1: " "pinned1 never printed from CPU 0"
expect "$log2" "VM pinned1: vCPU 0: .* 0 migrations" "pinned1 never migrated"
for vm in heavy light; do
    expect "$log2" "VM $vm: vCPU 0: .* 0 migrations, weight" "$vm stayed on CPU 0"
done
# After pinned1, CPU 1 has nothing to do: it waits halted, not polling. It still wakes
# to feed the other VMs' console output into the UART's FIFO (vmm/lib/console.c drains
# from idle CPUs, when the FIFO will have room), so the test bounds the mean halt, not
# the number of waits: a polling CPU would halt for a few hundred ticks at a time.
idle=$(sed -n 's/.*SCHED: CPU 1: [0-9]* runs, busy \([0-9]*\) ticks, idle \([0-9]*\) ticks halted in \([0-9]*\) waits.*/\1 \2 \3/p' "$log2")
set -- $idle
if [ $# -eq 3 ] && [ "$2" -gt "$1" ] && [ "$3" -ge 1 ] && [ $(($2 / $3)) -ge 50000 ]; then
    echo "  ok: CPU 1 idled halted: busy $1 ticks, halted $2 ticks in $3 waits ($(($2 / $3)) ticks each)"
else
    fail "CPU 1 did not idle halted (busy, halted ticks, waits: '$idle')"
fi
sw=$(sed -n 's/.*SCHED: CPU 0: \([0-9]*\) vCPU switches (min \([0-9]*\), avg \([0-9]*\) ticks).*/\1 \2 \3/p' "$log2")
reject "$log2" "FAIL|EXCEPTION|PANIC|KEEL BUG" "no failure, exception, panic or Keel bug"
set -- $sw
[ $# -eq 3 ] && echo "SCHED-COST: vCPU switch on one CPU: min $2, avg $3 Bochs ticks ($1 switches)" || fail "no switch figures"
set -- $mig
[ $# -ge 3 ] && echo "SCHED-COST: migration (VMCLEAR there, load here): min $2, avg $3 Bochs ticks ($1 on CPU 0)" || fail "no migration figures"
finish "$log2"
