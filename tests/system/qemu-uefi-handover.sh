#!/usr/bin/env bash
# The UEFI hand-over end to end, without VT-x (QEMU TCG + OVMF): with handover_test = yes
# keel.efi exits boot services (some runs with stale map keys forced, so the retry path
# runs against the real firmware), enters the core on its hand-over page tables, and
# the core boots to its summary line and powers the machine off through ACPI. 1 and 4
# CPUs with 256 MiB and 3 GiB (q35 puts 1 GiB of that above 4 GiB), 4 CPUs with 8 GiB
# (6 GiB above 4 GiB, written and read back), and 72 CPUs: past the old limit of 64 and
# a word of the CPU masks, and with the AP start-up time bounded (firmware's spinning
# AP loops once made it 12 s for 64 CPUs). The rest of the boot matrix is in
# tests/matrix (make test-matrix).
source "$(dirname "$0")/lib.sh"
[ -f "$BUILD/keel.efi" ] || { fail "no $BUILD/keel.efi (run 'make' first)"; finish; }
TIMEOUT=${KEEL_QEMU_TIMEOUT:-120}
uefi_case handover 1 256M 0 "$TIMEOUT"
uefi_case handover 4 256M 1 "$TIMEOUT"
uefi_case handover 1 3G 2 "$TIMEOUT"
uefi_case handover 4 3G 0 "$TIMEOUT"
uefi_case handover 4 8G 0 "$TIMEOUT"
uefi_case handover 72 256M 0 "$((TIMEOUT + 120))"
expect "$WORK/handover-1cpu-3G/serial.log" 'MEM: +0x0000000100000000-0x000000013fffffff usable' \
    "[1cpu-3G] the GiB above 4 GiB is in the core's map"
finish
