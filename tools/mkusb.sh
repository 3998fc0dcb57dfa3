#!/bin/bash
# Builds a GPT disk image with one EFI System Partition holding Keel, ready to be
# written to a USB stick (dd if=OUT.img of=/dev/sdX bs=4M conv=fsync).
# Needs no root and no loop devices: the FAT file system is made in a separate
# file with mtools and copied into the partition's place.
#
#   tools/mkusb.sh OUT.img keel.efi keel.cfg [extra files...]
#
# Extra files (guest images) land in the root of the partition under their own names.
set -euo pipefail

usage() { echo "usage: $0 OUT.img keel.efi keel.cfg [extra files...]" >&2; exit 2; }
die() { echo "mkusb: $*" >&2; exit 1; }

[ $# -ge 3 ] || usage
out=$1 efi=$2 cfg=$3
shift 3

for tool in sgdisk mformat mmd mcopy; do
    command -v "$tool" >/dev/null || die "'$tool' is missing (packages gdisk and mtools; see tools/install-deps.sh)"
done
for f in "$efi" "$cfg" "$@"; do
    [ -f "$f" ] || die "no such file: $f"
done

# Partition at 1 MiB; the size grows with the payload so guest images fit.
payload_kib=$(du -kc "$efi" "$cfg" "$@" | tail -1 | cut -f1)
part_mib=$(( (payload_kib * 11 / 10) / 1024 + 48 ))
[ "$part_mib" -ge 62 ] || part_mib=62
disk_mib=$(( part_mib + 2 ))          # 1 MiB in front, the backup GPT at the end
part_start=2048                       # sectors of 512 bytes
part_sectors=$(( part_mib * 2048 ))

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fat=$tmp/esp.fat

# FAT32 wants at least 65525 clusters: with 512-byte clusters (-c 1) that is
# about 33 MiB, so every partition size used here qualifies.
truncate -s $(( part_sectors * 512 )) "$fat"
mformat -i "$fat" -F -c 1 -h 64 -s 32 -H "$part_start" -T "$part_sectors" -v KEEL ::
mmd -i "$fat" ::/EFI ::/EFI/BOOT
mcopy -i "$fat" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$fat" "$cfg" ::/keel.cfg
for f in "$@"; do
    mcopy -i "$fat" "$f" "::/$(basename "$f")"
done

rm -f "$out"
truncate -s $(( disk_mib * 1024 * 1024 )) "$out"
sgdisk --clear \
    --new=1:${part_start}:+${part_sectors} --typecode=1:EF00 --change-name=1:"EFI System" \
    "$out" >/dev/null
dd if="$fat" of="$out" bs=1M seek=1 conv=notrunc status=none

echo "mkusb: $out: ${disk_mib} MiB, ESP (FAT32) at 1 MiB with EFI/BOOT/BOOTX64.EFI, keel.cfg$([ $# -gt 0 ] && printf ', %s' "$(for f in "$@"; do basename "$f"; done | paste -sd' ')")"
