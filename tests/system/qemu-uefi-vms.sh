#!/usr/bin/env bash
# The five-VM configuration on the UEFI path (QEMU TCG + OVMF, no VMX): the loader reads
# keel.cfg and every guest image from the USB stick, then still ends with the clear
# VT-x error and hands control back to the firmware.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
IMG=$WORK/vms.img
LOG=$WORK/serial.log
TIMEOUT=${KEEL_QEMU_TIMEOUT:-180}
"$ROOT/tools/mkusb.sh" "$IMG" "$BUILD/keel.efi" "$ROOT/tests/system/configs/five-vms.cfg" \
    "$G/hello.elf" "$G/cpuid-msr-io.elf" "$G/spinner.elf" "$G/attacker.elf" > "$WORK/mkusb.out" 2>&1 ||
    { fail "mkusb.sh failed: $(cat "$WORK/mkusb.out")"; finish; }
uefi_boot "$IMG" 4 "$LOG" "$TIMEOUT"
expect "$LOG" 'Keel loader: keel\.cfg read \([0-9]+ bytes, 5 VMs\)' "keel.cfg with 5 VMs read"
for f in "hello-a.*hello.elf" "checker.*cpuid-msr-io.elf" "spinner.*spinner.elf" "attacker.*attacker.elf"; do
    expect "$LOG" "Keel loader: VM '$f" "image loaded from the stick: $f"
done
expect "$LOG" 'Keel: VT-x not available' "the clear VT-x error"
expect "$LOG" 'SMP: 4 of 4 CPUs online' "platform check still brings up 4 CPUs"
expect "$LOG" 'Keel: platform check done; returning to the firmware\.' "Keel returns to the firmware"
expect "$LOG" 'Shell> ' "the firmware is back in control"
reject "$LOG" 'EXCEPTION|PANIC' "no exception or panic"
finish "$LOG"
