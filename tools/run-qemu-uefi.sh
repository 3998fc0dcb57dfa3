#!/bin/bash
# Boots a Keel USB image (tools/mkusb.sh) in QEMU with OVMF, as a USB stick on an
# xHCI controller of a q35 machine.
#
#   tools/run-qemu-uefi.sh [--image IMG] [--smp N] [--mem SIZE] [--kvm]
#                          [--serial FILE [--until REGEX]] [--timeout S]
#                          [-- extra qemu args]
#
# TCG by default (no VMX there: Keel runs its platform check and returns to the
# firmware). --kvm uses the host CPU, which on an Intel host with nested VMX lets
# Keel really start. Serial output goes to stdout unless --serial names a file.
# With --timeout, QEMU is stopped after S seconds (exit status 124). With --until,
# QEMU is stopped as soon as the serial log has a line matching REGEX (grep -E),
# exit status 0; if QEMU ends or times out first, its own status.
set -euo pipefail

image=build/keel-usb.img
smp=4
mem=1G
kvm=0
serial=
timeout_s=
until_re=
extra=()

usage() {
    sed -n '4,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --image) image=$2; shift 2 ;;
    --smp) smp=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --kvm) kvm=1; shift ;;
    --serial) serial=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --until) until_re=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) usage ;;
    *) echo "run-qemu-uefi: unknown option '$1'" >&2; usage ;;
    esac
done

die() { echo "run-qemu-uefi: $*" >&2; exit 1; }

[ -f "$image" ] || die "no image '$image' (run 'make usb' first)"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 is missing (package qemu-system-x86)"

code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars_template=/usr/share/OVMF/OVMF_VARS_4M.fd
[ -f "$code" ] && [ -f "$vars_template" ] || die "OVMF is missing (package ovmf)"

# Each run starts from pristine firmware variables (boot order, etc.).
vars=$(mktemp --tmpdir keel-ovmf-vars.XXXXXX.fd)
trap 'rm -f "$vars"' EXIT
cp "$vars_template" "$vars"

if [ "$kvm" = 1 ]; then
    [ -w /dev/kvm ] || die "--kvm needs write access to /dev/kvm"
    accel=(-enable-kvm -cpu host)
else
    accel=(-accel tcg -cpu max)
fi

if [ -n "$serial" ]; then
    serial_args=(-serial "file:$serial")
else
    serial_args=(-serial stdio)
fi

cmd=(qemu-system-x86_64
    -machine q35 "${accel[@]}" -m "$mem" -smp "$smp"
    -drive if=pflash,format=raw,unit=0,readonly=on,file="$code"
    -drive if=pflash,format=raw,unit=1,file="$vars"
    -device qemu-xhci,id=xhci
    -drive if=none,id=stick,format=raw,file="$image"
    -device usb-storage,bus=xhci.0,drive=stick,removable=on,bootindex=1
    "${serial_args[@]}"
    -display none -monitor none -no-reboot -net none
    "${extra[@]}")

# Not exec below: the trap above must still remove the variables file.
if [ -n "$until_re" ]; then
    [ -n "$serial" ] || die "--until needs --serial FILE"
    : > "$serial"
    timeout -k 5 "${timeout_s:-600}" "${cmd[@]}" < /dev/null &
    qemu_pid=$!
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if grep -a -q -E "$until_re" "$serial"; then
            kill "$qemu_pid" 2>/dev/null
            wait "$qemu_pid" 2>/dev/null
            exit 0
        fi
        sleep 0.2
    done
    wait "$qemu_pid"
    rc=$?
    # QEMU may have printed the awaited line just before it ended.
    grep -a -q -E "$until_re" "$serial" && exit 0
    exit $rc
elif [ -n "$timeout_s" ]; then
    # --foreground: with -serial stdio QEMU reads the terminal.
    timeout --foreground -k 5 "$timeout_s" "${cmd[@]}"
else
    "${cmd[@]}"
fi
