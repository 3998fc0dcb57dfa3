#!/bin/bash
# Boots the Keel USB image (make usb -> build/keel-usb.img) in QEMU (TCG, q35, 4 CPUs)
# with OVMF. TCG has no VT-x, so the loader must say so, run the core's platform check
# with the firmware alive (all 4 CPUs up, ACPI tables and PCI devices reported), and
# hand control back to the firmware, which then boots its next option: the UEFI shell.
# QEMU is stopped as soon as the shell prompt appears.
source "$(dirname "$0")/lib.sh"

IMG=${KEEL_USB_IMG:-$BUILD/keel-usb.img}
LOG=$WORK/serial.log
TIMEOUT=${KEEL_QEMU_TIMEOUT:-240}

if [ ! -f "$IMG" ]; then
    fail "no USB image at $IMG (run 'make usb' first)"
    finish
fi

uefi_boot "$IMG" 4 "$LOG" "$TIMEOUT"

expect "$LOG" 'Keel loader: started by' "the firmware started the Keel loader from the USB stick"
expect "$LOG" 'Keel loader: keel\.cfg read' "the loader read keel.cfg"
expect "$LOG" 'Keel loader: ACPI RSDP at 0x' "the loader found the RSDP"
expect "$LOG" 'Keel: VT-x not available' "the loader reports that VT-x is missing"
expect "$LOG" 'Keel loader: platform check: running the core' "the loader runs the platform check"
expect "$LOG" 'SMP: 4 of 4 CPUs online' "the core brought up all 4 CPUs"
expect "$LOG" 'ACPI: MADT' "the core parsed the MADT"
expect "$LOG" 'ACPI: HPET' "the core found the HPET"
expect "$LOG" 'ACPI: MCFG' "the core found the MCFG"
expect "$LOG" 'PCI: [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] [0-9a-f]{4}:[0-9a-f]{4}' "the core listed PCI devices"
expect "$LOG" 'Keel: platform check done; returning to the firmware\.' "the loader returned to the firmware"
expect "$LOG" 'BdsDxe: failed to start .*: Unsupported' "the boot manager saw Keel's EFI_UNSUPPORTED"
expect "$LOG" 'Shell> ' "the firmware went on to the UEFI shell (timers and console alive)"
reject "$LOG" '[Pp][Aa][Nn][Ii][Cc]' "no panic"
reject "$LOG" '!!!! .*Exception' "no CPU exception in the firmware"

finish "$LOG"
