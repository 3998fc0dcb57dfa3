#!/usr/bin/env bash
# The UEFI hand-over end to end, without VT-x (QEMU TCG + OVMF): with handover_test = yes
# keel.efi exits boot services (some runs with stale map keys forced, so the retry path
# runs against the real firmware), enters the core on its hand-over page tables, and
# the core boots to its summary line and powers the machine off through ACPI. 1 and 4
# CPUs, 256 MiB and 3 GiB (q35 puts 1 GiB of that above 4 GiB).
source "$(dirname "$0")/lib.sh"
[ -f "$BUILD/keel.efi" ] || { fail "no $BUILD/keel.efi (run 'make' first)"; finish; }
TIMEOUT=${KEEL_QEMU_TIMEOUT:-120}
handover_case 1 256M 0 "$TIMEOUT"
handover_case 4 256M 1 "$TIMEOUT"
handover_case 1 3G 2 "$TIMEOUT"
handover_case 4 3G 0 "$TIMEOUT"
expect "$WORK/1cpu-3G/serial.log" 'MEM: +0x0000000100000000-0x000000013fffffff usable' \
    "[1cpu-3G] the GiB above 4 GiB is in the core's map"
finish
