#!/usr/bin/env bash
# Bochs, 1 CPU: keel.cfg's com1_baud reaches the UART. Keel reads the divisor latch
# back after programming it; at 19200 baud it must hold 6 (115200 / 19200), and the
# whole boot must still arrive on COM1 at that rate.
source "$(dirname "$0")/lib.sh"
cat > "$WORK/keel.cfg" <<'CFG'
console = com1
com1_baud = 19200
on_idle = poweroff
CFG
make_iso "$WORK/baud.iso" "$WORK/keel.cfg"
bochs_boot 1 "$WORK/baud.iso" "$WORK/baud.e9" 120
log=$WORK/baud.log
com1_log "$log"
expect "$log" "CONSOLE: COM1 at port 0x3f8, 19200 baud \(divisor latch 6\)" "the UART was programmed for 19200 baud"
expect "$log" "Keel: boot complete" "the boot log arrived on COM1"
expect "$log" "nothing left to run; powering off" "the last line arrived on COM1"
reject "$log" "EXCEPTION|PANIC" "no exception or panic"
finish "$log"
