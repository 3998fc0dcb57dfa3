#!/usr/bin/env bash
# Installs the Debian packages Keel's build, run and test targets need, when missing.
set -euo pipefail
# clang and libclang-rt-14-dev: the libFuzzer harnesses (tests/fuzz/).
# bochs-term satisfies bochs's "some GUI" dependency without pulling in wxWidgets.
# acpica-tools: iasl, which tests/unit/test_guest_acpi.c uses to decode the guest ACPI tables.
# python3-matplotlib: the plots of tools/keel-stats.
# cpio: the Linux tests' initramfs (tools/linux-fetch.sh; dpkg-deb and apt-get are in every Debian).
pkgs=(build-essential nasm cpio gnu-efi libcmocka-dev qemu-system-x86 ovmf seabios bochs bochsbios vgabios
      grub-pc-bin grub-common xorriso mtools dosfstools gdisk bochs-term clang libclang-rt-14-dev acpica-tools
      python3-matplotlib)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
