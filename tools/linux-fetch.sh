#!/usr/bin/env bash
# linux-fetch.sh [OUTDIR]: Debian's own kernel and busybox, made into what the Linux
# tests boot. Fetches linux-image-amd64 (the metapackage, then the image package it
# names) and busybox-static with `apt-get download` (no root needed), and writes to
# OUTDIR (default build/linux):
#   vmlinuz       the distribution's bzImage, unmodified
#   initrd.cpio   busybox and the virtio modules (dependencies resolved from each
#                 module's .modinfo, since the .deb carries no modules.dep), with an
#                 /init that prints markers, the CPU count, loads the modules, reads
#                 the virtio disk and powers off
#   disk.img      a 1 MiB raw disk whose first sector starts with a known line
#   version       the kernel package's version
# The .debs are cached in OUTDIR/debs; a rerun with them present needs no network.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$ROOT/build/linux}
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)
debs=$out/debs

# fetch PKG: its .deb into the cache (unless a version of it is there already).
fetch() {
    local f
    f=$(ls "$debs/$1"_*.deb 2>/dev/null | head -1 || true)
    if [ -z "$f" ]; then
        (cd "$debs" && apt-get download -q "$1" >/dev/null 2>"$debs/apt-$1.err") || {
            echo "linux-fetch: apt-get download $1 failed:" >&2
            cat "$debs/apt-$1.err" >&2
            exit 1
        }
        f=$(ls "$debs/$1"_*.deb | head -1)
    fi
    echo "$f"
}

meta=$(fetch linux-image-amd64)
image_pkg=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | sed -n 's/^ *\(linux-image-[0-9][^ ]*\).*/\1/p' | head -1)
[ -n "$image_pkg" ] || { echo "linux-fetch: $meta names no linux-image package" >&2; exit 1; }
kdeb=$(fetch "$image_pkg")
bdeb=$(fetch busybox-static)

stamp="$(basename "$kdeb") $(basename "$bdeb") $(sha1sum "$0" | cut -c1-12)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/initrd.cpio" ]; then
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$kdeb" "$tmp/k"
dpkg-deb -x "$bdeb" "$tmp/b"
vmlinuz=$(ls "$tmp"/k/boot/vmlinuz-* | head -1)
kver=${vmlinuz##*/vmlinuz-}
mods=$tmp/k/lib/modules/$kver/kernel
[ -d "$mods" ] || mods=$tmp/k/usr/lib/modules/$kver/kernel

# Module name -> file; load order with dependencies first.
declare -A path seen
while IFS= read -r f; do
    n=$(basename "$f" .ko)
    path[${n//-/_}]=$f
done < <(find "$mods" -name '*.ko')
order=()
add() {
    local m=${1//-/_} d
    [ -n "${seen[$m]:-}" ] && return
    seen[$m]=1
    [ -n "${path[$m]:-}" ] || { echo "linux-fetch: module $m is not in $image_pkg" >&2; exit 1; }
    objcopy -O binary --only-section=.modinfo "${path[$m]}" "$tmp/modinfo"
    for d in $(tr '\0' '\n' < "$tmp/modinfo" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add "$d"
    done
    order+=("$m")
}
for m in virtio_pci virtio_blk virtio_console; do add "$m"; done

r=$tmp/root
mkdir -p "$r/bin" "$r/dev" "$r/proc" "$r/sys" "$r/lib/modules"
cp "$tmp/b/bin/busybox" "$r/bin/busybox"
for m in "${order[@]}"; do cp "${path[$m]}" "$r/lib/modules/$m.ko"; done
# No /dev/console node (making one needs root): /init mounts devtmpfs first and only
# then opens the console. The markers are what the tests look for; each goes to the
# console and to the kernel log (/dev/kmsg), whose console output is polled, so it is
# seen even where the serial driver's interrupts do not work.
cat > "$r/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox --install -s /bin
export PATH=/bin
say() { echo "KEEL-LINUX: \$*" > /dev/kmsg; echo "KEEL-LINUX: \$*"; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
say "init reached, kernel \$(uname -r)"
say "nproc \$(nproc)"
for m in ${order[*]}; do
    insmod /lib/modules/\$m.ko || say "insmod \$m failed"
done
say "modules loaded"
n=0
while [ ! -b /dev/vda ] && [ \$n -lt 20 ]; do sleep 0.1; n=\$((n + 1)); done
if [ -b /dev/vda ]; then
    say "disk /dev/vda \$(cat /sys/block/vda/size) sectors"
    say "disk says: \$(head -c 64 /dev/vda | head -n 1)"
else
    say "no virtio disk"
fi
[ -e /dev/hvc0 ] && echo "KEEL-LINUX: hello from hvc0" > /dev/hvc0
say "powering off"
poweroff -f
INIT
chmod 755 "$r/init"
(cd "$r" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) > "$out/initrd.cpio"
cp "$vmlinuz" "$out/vmlinuz"

# The disk: a known first line, then a pattern to the end of 1 MiB.
{
    printf 'KEEL-DISK-OK the virtio-blk disk of the Linux test\n'
    head -c 1048576 /dev/zero | tr '\0' 'k'
} | head -c 1048576 > "$out/disk.img"
echo "$kver" > "$out/version"
echo "${order[*]}" > "$out/modules"
echo "$stamp" > "$out/stamp"
echo "linux-fetch: kernel $kver ($(stat -c %s "$out/vmlinuz") bytes), initrd $(stat -c %s "$out/initrd.cpio") bytes, modules: ${order[*]}"
