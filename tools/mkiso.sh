#!/usr/bin/env bash
# mkiso.sh OUT.iso keel.elf keel.cfg [cmdline] [module...]
# A GRUB (BIOS) ISO that loads Keel through Multiboot2, with keel.cfg as a module.
# Trimmed to the modules Keel needs: a small ISO boots much faster under Bochs.
set -euo pipefail
out=$1 elf=$2 cfg=$3 cmdline=${4:-}
shift 3; [ $# -gt 0 ] && shift
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/boot/grub"
cp "$elf" "$dir/boot/keel.elf"
cp "$cfg" "$dir/boot/keel.cfg"
{
    echo "set timeout=0"
    echo "set default=0"
    echo "menuentry Keel {"
    echo "  multiboot2 /boot/keel.elf $cmdline"
    echo "  module2 /boot/keel.cfg keel.cfg"
    for m in "$@"; do
        cp "$m" "$dir/boot/"
        echo "  module2 /boot/$(basename "$m") $(basename "$m")"
    done
    echo "  boot"
    echo "}"
} > "$dir/boot/grub/grub.cfg"
grub-mkrescue -o "$out" --install-modules="multiboot2 normal iso9660 biosdisk configfile" \
    --locales= --fonts= --themes= --compress=no "$dir" >/dev/null 2>&1 || {
    echo "mkiso: grub-mkrescue failed" >&2
    grub-mkrescue -o "$out" --install-modules="multiboot2 normal iso9660 biosdisk configfile" \
        --locales= --fonts= --themes= --compress=no "$dir"
    exit 1
}
