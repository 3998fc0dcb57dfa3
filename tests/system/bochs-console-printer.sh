#!/usr/bin/env bash
# Bochs, 1 CPU: a VM printing without pause (a line every 64 UART writes, far faster
# than COM1 sends) does not slow a CPU-bound spinner on the same CPU. The spinner runs
# once alone and once next to the printer; Bochs's TSC counts instructions, so both
# runs are exact and repeatable. Against the run alone, next to the printer the spinner
#   - gets as much guest time per slice (guest TSC ticks / preemption-timer exits,
#     from Keel's report): at least 95 %;
#   - runs its loop as fast (its fastest 4096-iteration chunk): within 5 %;
#   - gets its half of the CPU: its wall time at most 2 x 1.05 x alone;
# and the printer's exits never wait for COM1 (Keel's time per exit at most 1000 ticks).
# The printer outlasts the spinner, so it printed all the while; what its console
# buffer could not hold is counted in the stream and in its report, and the lines that
# arrived plus those counted as lost are all it wrote. (Before the console queues, each
# of the printer's UART writes waited for COM1: about 13,800 Keel ticks per exit.)
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
CFG=$ROOT/tests/system/configs

# run NAME CONFIG: boots it; the COM1 log in $WORK/NAME.log.
run() {
    make_iso "$WORK/$1.iso" "$CFG/$2" "$G/spinner.elf" "$G/chatty.elf"
    bochs_boot 1 "$WORK/$1.iso" "$WORK/$1.bochs" 180
    com1_log "$WORK/$1.log"
    expect "$WORK/$1.log" "VM spinner: exit code 1 \(0x1\)" "$1: the spinner completes"
}
# figures LOG: "guest_time timer_exits fastest_chunk wall".
figures() {
    local guest timer fastest wall
    guest=$(sed -n 's/.*VM spinner: report: .* guest time \([0-9]*\) TSC ticks.*/\1/p' "$1")
    timer=$(sed -n 's/.*VM spinner: exits by reason: .*PREEMPTION_TIMER \([0-9]*\).*/\1/p' "$1")
    fastest=$(sed -n 's/.*spinner: chunk of 4096 iterations: fastest \([0-9]*\) ticks.*/\1/p' "$1")
    wall=$(sed -n 's/.*spinner: done after \([0-9]*\) ticks.*/\1/p' "$1")
    echo "${guest:-x} ${timer:-x} ${fastest:-x} ${wall:-x}"
}

run alone printer-alone-1cpu.cfg
run shared printer-1cpu.cfg
log=$WORK/shared.log
read -r ag at af aw <<<"$(figures "$WORK/alone.log")"
read -r sg st sf sw <<<"$(figures "$log")"
if [[ "$ag$at$af$aw$sg$st$sf$sw" =~ x ]] || [ "$at" -eq 0 ] || [ "$st" -eq 0 ]; then
    fail "missing figures: alone '$ag $at $af $aw', next to the printer '$sg $st $sf $sw'"
else
    echo "PRINTER: alone: $((ag / at)) guest ticks per slice, fastest chunk $af, wall $aw ticks"
    echo "PRINTER: next to the printer: $((sg / st)) guest ticks per slice, fastest chunk $sf, wall $sw ticks"
    awk -v a="$((ag / at))" -v s="$((sg / st))" 'BEGIN { exit !(s >= 0.95 * a) }' &&
        echo "  ok: guest time per slice $(awk -v a="$((ag / at))" -v s="$((sg / st))" 'BEGIN{printf "%.4f", s/a}') of alone (at least 0.95)" ||
        fail "the spinner got $((sg / st)) guest ticks per slice next to the printer, $((ag / at)) alone"
    awk -v a="$af" -v s="$sf" 'BEGIN { exit !(s <= 1.05 * a) }' &&
        echo "  ok: its loop runs as fast ($sf vs $af ticks per chunk)" ||
        fail "the spinner's loop is slower next to the printer: $sf vs $af ticks per chunk"
    awk -v a="$aw" -v s="$sw" 'BEGIN { exit !(s <= 2 * 1.05 * a) }' &&
        echo "  ok: wall time $(awk -v a="$aw" -v s="$sw" 'BEGIN{printf "%.4f", s/(2*a)}') of twice alone (at most 1.05)" ||
        fail "the spinner took $sw ticks next to the printer, more than 2.1 x $aw alone"
fi
sp=$(line_of "$log" "VM spinner: stopped"); pr=$(line_of "$log" "VM printer: stopped")
[ "$sp" -gt 0 ] && [ "$pr" -gt "$sp" ] && echo "  ok: the printer printed until after the spinner stopped" ||
    fail "the printer stopped before the spinner (lines $pr, $sp): it did not print all the while"
expect "$log" "VM printer: exit code 1 \(0x1\)" "the printer completes"
# Its exits are UART writes: none of them may wait for COM1 (about 6,000 ticks a
# character in Bochs). What they cost is the exit path and the queueing.
per_exit=$(sed -n 's/.*VM printer: report: .* (\([0-9]*\) per exit).*/\1/p' "$log")
if [ -z "$per_exit" ]; then
    fail "no per-exit time in the printer's report"
elif [ "$per_exit" -le 1000 ]; then
    echo "  ok: the printer's exits cost $per_exit Keel ticks each (at most 1000: none waits for the UART)"
else
    fail "the printer's exits cost $per_exit Keel ticks each, more than 1000: they wait for the UART"
fi
# Its 16 x 64 block lines, the line before them and the one after.
written=$((16 * 4096 / 64 + 2))
arrived=$(grep -a -c -E "^\[cpu[0-9]+\] printer: " "$log" || true)
lost_lines=$(sed -n 's/.*VM printer: console: [0-9]* bytes in \([0-9]*\) lines lost.*/\1/p' "$log")
if [ -z "$lost_lines" ]; then
    fail "the printer's report does not count lost lines: it printed faster than COM1 sends, so some must be"
elif [ $((arrived + lost_lines)) -eq "$written" ]; then
    echo "  ok: $arrived lines arrived and $lost_lines were counted as lost: all $written"
else
    fail "$arrived lines arrived and $lost_lines were counted as lost, not the $written written"
fi
expect "$log" "VM printer: console: [0-9]+ bytes lost$" "the loss is announced in the line stream"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
