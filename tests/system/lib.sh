# Shared helpers for system tests (sourced). Every emulator run goes through
# `timeout`; a failing check prints the tail of the log so CI output explains itself.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build
TEST_NAME=$(basename "$0" .sh)
WORK=$(mktemp -d "/tmp/keel-$TEST_NAME.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
FAILED=0
START_TIME=$(date +%s.%N)

log_tail() { echo "--- last 40 lines of $1 ---"; tail -n 40 "$1" | sed 's/\x1b\[[0-9;?]*[A-Za-z]//g'; echo "---"; }

fail() { echo "FAIL [$TEST_NAME]: $*"; FAILED=1; }

# expect LOG REGEX DESCRIPTION: the log must contain a line matching REGEX (grep -E).
expect() {
    if grep -a -q -E "$2" "$1"; then echo "  ok: $3"; else fail "$3 (no line matching /$2/)"; fi
}
# expect_count LOG REGEX N DESCRIPTION: exactly N matching lines.
expect_count() {
    local n; n=$(grep -a -c -E "$2" "$1" || true)
    if [ "$n" -eq "$3" ]; then echo "  ok: $4"; else fail "$4 (expected $3 lines matching /$2/, got $n)"; fi
}
# reject LOG REGEX DESCRIPTION: no line may match.
reject() {
    if grep -a -q -E "$2" "$1"; then fail "$3 (found: $(grep -a -m1 -E "$2" "$1"))"; else echo "  ok: $3"; fi
}

# finish LOG: prints the verdict and the wall time, with the log tail on failure.
finish() {
    local secs; secs=$(awk -v a="$START_TIME" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    if [ $FAILED -ne 0 ]; then
        [ -n "${1:-}" ] && [ -f "$1" ] && log_tail "$1"
        echo "RESULT $TEST_NAME: FAIL (${secs}s)"
        exit 1
    fi
    echo "RESULT $TEST_NAME: PASS (${secs}s)"
    exit 0
}

# bochs_boot CPUS ISO LOG [TIMEOUT]: boots the ISO in Bochs; port 0xE9 output to LOG.
# BOCHS_MEM (MiB) sets the machine's memory (default: run-bochs.sh's).
bochs_boot() {
    "$ROOT/tools/run-bochs.sh" --quiet --cpus "$1" --iso "$2" --serial "$WORK/com1.txt" ${BOCHS_MEM:+--mem "$BOCHS_MEM"} \
        --timeout "${4:-120}" > "$3" 2>&1
    local rc=$?
    [ $rc -eq 124 ] && fail "Bochs did not finish within ${4:-120}s (hang?)"
    return 0
}

# make_iso OUT.iso CONFIG [guest images...]: a Multiboot2 ISO with that keel.cfg.
make_iso() {
    local out=$1 cfg=$2
    shift 2
    "$ROOT/tools/mkiso.sh" "$out" "$BUILD/keel.elf" "$cfg" "" "$@" || fail "could not build $out"
}

# make_iso_cmdline OUT.iso CONFIG CMDLINE [guest images...]: the same with a Keel
# command line.
make_iso_cmdline() {
    local out=$1 cfg=$2 cmdline=$3
    shift 3
    "$ROOT/tools/mkiso.sh" "$out" "$BUILD/keel.elf" "$cfg" "$cmdline" "$@" || fail "could not build $out"
}

# com1_log LOG: COM1's output of the last bochs_boot, without carriage returns, to LOG.
com1_log() { tr -d '\r' < "$WORK/com1.txt" > "$1" 2>/dev/null || : > "$1"; }

# line_of LOG REGEX: number of the first matching line (0 if none).
line_of() { grep -a -n -m1 -E "$2" "$1" | cut -d: -f1 | grep . || echo 0; }

# uefi_boot IMG CPUS LOG [TIMEOUT [MEM]]: boots a USB image under QEMU + OVMF until the
# UEFI shell prompt (the firmware is back in control after Keel returned) and writes the
# serial output, without OVMF's terminal escape sequences, to LOG. Sets QEMU_SECS.
uefi_boot() {
    local img=$1 cpus=$2 log=$3 timeout_s=${4:-${KEEL_QEMU_TIMEOUT:-240}} mem=${5:-1G} t0
    t0=$(date +%s.%N)
    "$ROOT/tools/run-qemu-uefi.sh" --image "$img" --smp "$cpus" --mem "$mem" --serial "$log.raw" \
        --timeout "$timeout_s" --until 'Shell> ' > "$WORK/qemu.out" 2>&1
    local rc=$?
    QEMU_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    [ $rc -eq 124 ] && fail "the firmware did not reach the UEFI shell within ${timeout_s}s (hang?)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && fail "QEMU failed (status $rc): $(head -c 300 "$WORK/qemu.out")"
    sed 's/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\r//g' "$log.raw" > "$log" 2>/dev/null || : > "$log"
}

# uefi_poweroff_boot IMG CPUS MEM LOG [TIMEOUT]: boots a USB image under QEMU + OVMF
# until QEMU ends by itself, and writes the cleaned serial output to LOG. Sets
# QEMU_SHUTDOWN to QEMU's reason for the shutdown ("guest-shutdown" when the guest
# powered the machine off through ACPI, "guest-reset", ... or "none") and QEMU_SECS to
# the run's wall time.
uefi_poweroff_boot() {
    local img=$1 cpus=$2 mem=$3 log=$4 timeout_s=${5:-${KEEL_QEMU_TIMEOUT:-240}}
    local trace=$log.trace t0 reason
    t0=$(date +%s.%N)
    "$ROOT/tools/run-qemu-uefi.sh" --image "$img" --smp "$cpus" --mem "$mem" --serial "$log.raw" \
        --timeout "$timeout_s" -- -trace "qemu_system_shutdown_request,file=$trace" \
        > "$log.qemu" 2>&1 < /dev/null
    local rc=$?
    QEMU_SECS=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    [ $rc -eq 124 ] && fail "QEMU ($cpus CPUs, $mem) did not end within ${timeout_s}s (hang?)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && fail "QEMU failed (status $rc): $(head -c 300 "$log.qemu")"
    sed 's/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\r//g' "$log.raw" > "$log" 2>/dev/null || : > "$log"
    # QEMU's ShutdownCause numbers (qapi/run-state.json, QEMU 6.0 and later).
    reason=$(sed -n 's/.*qemu_system_shutdown_request reason=\([0-9]*\).*/\1/p' "$trace" 2>/dev/null | head -1)
    case $reason in
    6) QEMU_SHUTDOWN=guest-shutdown ;;
    7) QEMU_SHUTDOWN=guest-reset ;;
    8) QEMU_SHUTDOWN=guest-panic ;;
    '') QEMU_SHUTDOWN=none ;;
    *) QEMU_SHUTDOWN=host-$reason ;;
    esac
}

# mib SIZE: 256M, 3G, ... in MiB.
mib() { echo $(( $(numfmt --from=iec "$1") >> 20 )); }

# q35_high_mib MEM_MIB: RAM QEMU's q35 puts above 4 GiB (below it at most 2 GiB when the
# RAM exceeds 2.75 GiB, all of it otherwise).
q35_high_mib() { if [ "$1" -gt 2816 ]; then echo $(( $1 - 2048 )); else echo 0; fi; }

# uefi_case MODE CPUS MEM [STALE [TIMEOUT]]: one QEMU+OVMF boot of keel.efi without VT-x
# and its checks; MODE is
#   handover  handover_test = yes (stale_map_keys = STALE): ExitBootServices succeeded
#             after exactly STALE stale keys, the core booted with CPUS CPUs and all the
#             RAM (above 4 GiB too, written and read back), ACPI S5 ended the machine;
#   platform  the platform check with the firmware alive: the core saw CPUS CPUs and
#             returned, and the firmware went on to its shell.
# Logs go to $WORK/MODE-CPUScpu-MEM/; one summary line "CASE ... s" per run for timings.
uefi_case() {
    local mode=$1 cpus=$2 mem=$3 stale=${4:-0} timeout_s=${5:-${KEEL_QEMU_TIMEOUT:-240}}
    local tag="$mode-${cpus}cpu-$mem" dir="$WORK/$mode-${cpus}cpu-$mem" before=$FAILED
    mkdir -p "$dir"
    local log=$dir/serial.log
    # TCG runs one host thread per vCPU on a shared machine: an AP can take seconds.
    {
        echo 'console = com1'
        echo 'ap_timeout_ms = 10000'
        [ "$mode" = handover ] && printf 'handover_test = yes\nstale_map_keys = %s\n' "$stale"
    } > "$dir/keel.cfg"
    if ! "$ROOT/tools/mkusb.sh" "$dir/usb.img" "$BUILD/keel.efi" "$dir/keel.cfg" > "$dir/mkusb.out" 2>&1; then
        fail "[$tag] mkusb.sh failed: $(cat "$dir/mkusb.out")"
        return 0
    fi
    FAILED=0
    if [ "$mode" = handover ]; then
        uefi_poweroff_boot "$dir/usb.img" "$cpus" "$mem" "$log" "$timeout_s"
    else
        uefi_boot "$dir/usb.img" "$cpus" "$log" "$timeout_s" "$mem"
        QEMU_SHUTDOWN=n/a
    fi
    rm -f "$dir/usb.img"
    echo "  [$tag] QEMU ran ${QEMU_SECS}s, ended by: $QEMU_SHUTDOWN"

    local total=$(mib "$mem") high free
    high=$(q35_high_mib "$total")
    expect "$log" 'Keel: VT-x not available' "[$tag] the loader found no VT-x"
    expect "$log" "ACPI: MADT: $cpus CPUs \($cpus enabled" "[$tag] the MADT lists $cpus CPUs"
    expect "$log" 'TIMER: TSC [0-9]+ MHz' "[$tag] timers calibrated"
    expect "$log" "SMP: $cpus of $cpus CPUs online" "[$tag] all $cpus CPUs online"
    reject "$log" 'left out|did not come up|beyond the limit' "[$tag] no CPU left out"
    expect "$log" 'PCI: [0-9]+ devices' "[$tag] PCI enumerated"
    expect "$log" "Keel: boot complete: $cpus CPUs online, 0 with VMX" "[$tag] boot complete with $cpus CPUs"
    reject "$log" '[Pp][Aa][Nn][Ii][Cc]|EXCEPTION|!!!! ' "[$tag] no panic or exception"
    free=$(sed -n 's/.*Keel: boot complete: .* \([0-9]*\) MiB free.*/\1/p' "$log" | head -1)

    if [ "$mode" = handover ]; then
        expect "$log" 'Keel loader: handover_test = yes: exiting boot services' "[$tag] the loader hands over anyway"
        expect "$log" "UEFI: ExitBootServices succeeded on call $((stale + 1)) \\($stale retries after a stale map key\\)" \
            "[$tag] ExitBootServices succeeded after $stale stale map keys"
        expect "$log" 'started by the Keel UEFI loader via UEFI in hand-over test mode' "[$tag] the core runs after the firmware"
        # Firmware, ACPI tables and Keel's own pages take some; RAM over it does not exist.
        if [ -n "$free" ] && [ "$free" -le "$total" ] && [ "$free" -ge $((total - 40 - total / 32)) ]; then
            echo "  ok: [$tag] $free MiB free of $total MiB"
        else
            fail "[$tag] free memory '${free:-none}' MiB is not plausible for $total MiB of RAM"
        fi
        if [ "$high" -gt 0 ]; then
            expect "$log" "MEM: above 4 GiB: $high MiB free in 1 ranges" "[$tag] all $high MiB above 4 GiB free for guests"
            expect "$log" 'MEM: probe above 4 GiB: [0-9]+ locations up to 0x[0-9a-f]+ written and read back' \
                "[$tag] memory above 4 GiB written and read back"
        else
            expect "$log" 'MEM: no free memory above 4 GiB' "[$tag] no memory above 4 GiB, and Keel says so"
        fi
        # Firmware's AP loops may spin (OVMF's MWAIT loop does under TCG) until Keel sends
        # them INIT; one AP after the other, that took ~300 ms per CPU.
        local smp_ms
        smp_ms=$(sed -n 's/.*SMP: [0-9]* of [0-9]* CPUs online (start-up took \([0-9]*\) ms).*/\1/p' "$log" | head -1)
        if [ -n "$smp_ms" ] && [ "$smp_ms" -le $(( 1000 + 60 * cpus )) ]; then
            echo "  ok: [$tag] AP start-up took $smp_ms ms"
        else
            fail "[$tag] AP start-up took '${smp_ms:-?}' ms, more than $(( 1000 + 60 * cpus )) ms for $cpus CPUs"
        fi
        expect "$log" 'Keel: hand-over test complete; powering off through ACPI' "[$tag] the core powers off"
        expect "$log" 'POWER: trying ACPI S5' "[$tag] ACPI S5 tried"
        reject "$log" 'ACPI S5 did not power off|shutdown port|power-off failed' "[$tag] ACPI S5 alone ended the machine"
        reject "$log" 'Shell> |platform check' "[$tag] the firmware never regained control"
        if [ "$QEMU_SHUTDOWN" = guest-shutdown ]; then
            echo "  ok: [$tag] QEMU ended because the guest powered off (ACPI)"
        else
            fail "[$tag] QEMU ended by '$QEMU_SHUTDOWN', not by a guest power-off"
        fi
    else
        expect "$log" 'Keel loader: platform check: running the core' "[$tag] the loader runs the platform check"
        # Only the loader's private pool is the core's while the firmware lives; it
        # grows with the CPU count the firmware reports.
        expect "$log" "platform check: running the core .* pool at 0x[0-9a-f]+ for $cpus CPUs" \
            "[$tag] the pool is sized for the firmware's $cpus CPUs"
        local pool
        pool=$(sed -n 's/.*platform check: running the core .*(\([0-9]*\) MiB pool.*/\1/p' "$log" | head -1)
        if [ -n "$free" ] && [ -n "$pool" ] && [ "$free" -lt "$pool" ]; then
            echo "  ok: [$tag] the core used only the loader's $pool MiB pool ($free MiB left of it)"
        else
            fail "[$tag] free memory '${free:-none}' MiB: the core must see only the '${pool:-?}' MiB pool"
        fi
        expect "$log" 'Keel: platform check done; returning to the firmware\.' "[$tag] the loader returned to the firmware"
        expect "$log" 'Shell> ' "[$tag] the firmware went on to the UEFI shell"
    fi
    echo "CASE $tag ${QEMU_SECS}s"
    [ $FAILED -ne 0 ] && log_tail "$log"
    [ $before -ne 0 ] && FAILED=1
    return 0
}
