#!/usr/bin/env bash
# No emulator: every tag Keel's sources start a console line with ("ACPI:", "VM %s:",
# "KEEL BUG:") is in vmm/lib/console_tags.h, the list of names no VM may take. A tag added
# without listing it would let a VM of that name forge Keel's lines again.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
list=$(grep -o 'X("[A-Za-z]*")' vmm/lib/console_tags.h | sed 's/X("\(.*\)")/\1/' | sort -u)
[ -n "$list" ] || fail "no tags found in vmm/lib/console_tags.h"
used=$(grep -rhoE 'kprintf\("[A-Za-z][A-Za-z0-9]*[ :]' arch drivers vmm boot/multiboot2 |
       sed -E 's/^[a-z]+\("([A-Za-z0-9]*).*/\1/' | sort -u)
n=0
for tag in $used; do
    n=$((n + 1))
    if ! grep -qix -- "$tag" <<<"$list"; then
        fail "the sources print console lines tagged '$tag', which vmm/lib/console_tags.h does not reserve"
    fi
done
[ "$n" -gt 10 ] && echo "  ok: all $n console tags the sources use are reserved VM names" ||
    fail "found only $n tags in the sources: the scan is broken"
finish
