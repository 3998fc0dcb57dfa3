#!/usr/bin/env bash
# Bochs, 2 CPUs: the operator console driven through COM1's input. Bochs's COM1 is a
# TCP connection (socket-client mode) to tools/com1-session.py, which types
# tests/system/monitor.script at it the way a user at a serial terminal would: input
# before any VM is attached goes nowhere (and Keel says so), Ctrl-A c opens the
# monitor, then help, list, pause and resume of a CPU-bound VM (its guest time does not
# move while paused), stats, json and reset of a VM's statistics, an unknown command
# and an unknown VM, attach (the typed line reaches the echo guest through its UART),
# stop of a running VM, close, and the line that ends the echo guest.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
make_iso "$WORK/monitor.iso" "$ROOT/tests/system/configs/monitor-2cpu.cfg" "$G/echo.elf" "$G/spinner.elf" "$G/hello.elf"
log=$WORK/monitor.log
timeout 300 python3 "$ROOT/tools/com1-session.py" --iso "$WORK/monitor.iso" --cpus 2 --log "$log" --timeout 240 \
    "$ROOT/tests/system/monitor.script" || fail "the monitor session did not go as scripted (above)"
[ -f "$log" ] || : > "$log"
# The two lists taken 2 s apart while spin was paused show the same guest time.
paused=$(sed -n 's/.*MONITOR: vm 1 spin: paused, .* guest \([0-9]*\) us.*/\1/p' "$log" | sort -u)
if [ "$(sed -n 's/.*MONITOR: vm 1 spin: paused, .* guest \([0-9]*\) us.*/\1/p' "$log" | wc -l)" -ge 2 ] &&
   [ "$(wc -l <<<"$paused")" -eq 1 ]; then
    echo "  ok: paused, spin's guest time stays at $paused us"
else
    fail "spin's guest time moved while it was paused: $(tr '\n' ' ' <<<"$paused")"
fi
expect "$log" "MONITOR: vm 1 spin: running" "spin runs before the pause"
expect "$log" "KEEL-STATS .*\"why\":\"monitor\"" "json: the statistics dump is marked as the monitor's"
expect "$log" "VM spin: report: " "the stopped VM gets its report"
expect "$log" "VM echo: exit code 1 \(0x1\)" "the echo guest ends at the typed 'quit'"
expect "$log" "Keel: all 3 VMs have stopped" "every VM stopped"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
