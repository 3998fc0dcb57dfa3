#!/usr/bin/env bash
# The boot matrix of the machines users boot Keel on, under QEMU TCG + OVMF (no VT-x):
# the platform check (firmware alive) and the hand-over test mode (boot services ended,
# ACPI power-off) with 1, 4, 64 and 128 CPUs and 256 MiB and 8 GiB. TCG runs every
# vCPU as a host thread, so the 64- and 128-CPU boots take minutes: this is
# `make test-matrix`, not part of `make test` (which runs the small cases in
# tests/system/qemu-uefi-handover.sh). QEMU 7.2's TCG has no x2APIC and refuses APIC IDs
# above 254, so the 128-CPU boots use xAPIC IDs 0-127; x2APIC-only MADTs and IDs above
# 255 are covered by the host tests (tests/unit/test_acpi.c).
#
#   tests/matrix/qemu-uefi-matrix.sh [MODE:CPUS:MEM ...]   e.g. handover:128:8G
#
# Ends with a table of each QEMU run's wall time.
source "$(dirname "$0")/../system/lib.sh"
[ -f "$BUILD/keel.efi" ] || { fail "no $BUILD/keel.efi (run 'make' first)"; finish; }

cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
    for mode in platform handover; do
        for cpus in 1 4 64 128; do
            for mem in 256M 8G; do cases+=("$mode:$cpus:$mem"); done
        done
    done
fi

: > "$WORK/times"
for c in "${cases[@]}"; do
    IFS=: read -r mode cpus mem <<< "$c"
    # About a second per CPU under TCG on a loaded machine, and then some.
    timeout_s=$(( 120 + 3 * cpus ))
    uefi_case "$mode" "$cpus" "$mem" 0 "${KEEL_QEMU_TIMEOUT:-$timeout_s}" | tee "$WORK/case.out"
    grep -q '^FAIL' "$WORK/case.out" && FAILED=1
    sed -n 's/^CASE //p' "$WORK/case.out" >> "$WORK/times"
done
echo "wall time per QEMU run:"
column -t "$WORK/times" | sed 's/^/  /'
finish
