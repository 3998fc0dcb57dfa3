#!/bin/bash
# A malformed keel.cfg must stop the UEFI loader before it touches the machine: the
# error names the file and line on the console, the loader returns EFI_LOAD_ERROR and
# the firmware carries on to its next boot option (the UEFI shell). Needs
# build/keel.efi (make usb builds it).
source "$(dirname "$0")/lib.sh"

EFI=${KEEL_EFI:-$BUILD/keel.efi}
IMG=$WORK/badcfg.img
LOG=$WORK/serial.log
TIMEOUT=${KEEL_QEMU_TIMEOUT:-180}

if [ ! -f "$EFI" ]; then
    fail "no loader at $EFI (run 'make usb' first)"
    finish
fi

# Line 3 misspells a key inside a VM section.
cat > "$WORK/keel.cfg" <<'CFG'
# keel.cfg with a typo
[vm typo]
memroy = 16M
image = hello.elf
CFG
if ! "$ROOT/tools/mkusb.sh" "$IMG" "$EFI" "$WORK/keel.cfg" > "$WORK/mkusb.out" 2>&1; then
    fail "mkusb.sh failed: $(cat "$WORK/mkusb.out")"
    finish
fi

uefi_boot "$IMG" 2 "$LOG" "$TIMEOUT"

expect "$LOG" 'Keel loader: started by' "the firmware started the Keel loader"
expect "$LOG" 'Keel: keel\.cfg:3: .*memroy' "the error names keel.cfg, line 3 and the bad key"
expect "$LOG" 'BdsDxe: failed to start .*: Load Error' "the loader returned EFI_LOAD_ERROR"
expect "$LOG" 'Shell> ' "the firmware went on to the UEFI shell"
reject "$LOG" 'Keel loader: core image at' "the core was not loaded"
reject "$LOG" 'exiting boot services|platform check: running' "boot services were left alone"

finish "$LOG"
