#!/usr/bin/env bash
# Bochs, 1 CPU: host time spent for a VM counts against its slice. Two chatty guests
# write 8 blocks of 2 KiB each to the console (one through the console hypercall, one
# byte by byte through the UART); their guest time is tiny, Keel's time on their
# behalf (copying into the VM's console queue, the 16550's emulation; the physical
# UART is drained off their time, vmm/lib/console_buffer.h) is not. The spinner beside
# them times every chunk of its loop: its slowest chunk is the longest time it was
# kept off the CPU. With the host time charged, that is about one chatty block plus a
# slice; without it, a chatty VM kept the CPU for all of its blocks in one slice.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/noisy.iso" "$ROOT/tests/system/configs/noisy-1cpu.cfg" "$G/spinner.elf" "$G/chatty.elf"
log=$WORK/noisy.log
bochs_boot 1 "$WORK/noisy.iso" "$log" 240
expect "$log" "VMM: 3 of 3 configured VMs started" "the three VMs started"
for vm in spinner chatty-hc chatty-uart; do
    expect "$log" "VM $vm: exit code 1 \(0x1\)" "$vm completes"
done
slice=$(sed -n 's/.*SCHED: .* slices (\([0-9]*\) TSC ticks).*/\1/p' "$log" | head -1)
# The hypercall chatty's fastest block is one console hypercall that nothing preempted.
block=$(sed -n 's/.*chatty-hc: chatty: done: fastest block \([0-9]*\) ticks.*/\1/p' "$log")
gap=$(sed -n 's/.*spinner: chunk of [0-9]* iterations: fastest [0-9]* ticks, slowest \([0-9]*\) ticks.*/\1/p' "$log")
if [ -z "$slice" ] || [ -z "$block" ] || [ -z "$gap" ]; then
    fail "missing figures (slice '$slice', one console hypercall '$block', spinner's slowest chunk '$gap')"
else
    # Between two of its chunks the spinner may wait for each chatty VM once: up to one
    # hypercall (which Keel cannot split) plus a slice each.
    limit=$((2 * (block + 2 * slice)))
    echo "NOISY: slice $slice ticks, one console hypercall $block ticks, spinner kept off the CPU for at most $gap ticks (limit $limit)"
    [ "$gap" -le "$limit" ] && echo "  ok: the spinner waited at most two blocks and slices" ||
        fail "the spinner was kept off the CPU for $gap ticks, more than $limit: host time is not charged to the chatty VMs"
fi
expect_count "$log" "chatty-hc: [a-z]{63}$" 256 "every line of the hypercall chatty arrived"
expect_count "$log" "chatty-uart: [a-z]{63}$" 256 "every line of the UART chatty arrived"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
