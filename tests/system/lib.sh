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
bochs_boot() {
    "$ROOT/tools/run-bochs.sh" --quiet --cpus "$1" --iso "$2" --serial "$WORK/com1.txt" \
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

# uefi_boot IMG CPUS LOG [TIMEOUT]: boots a USB image under QEMU + OVMF until the UEFI
# shell prompt (the firmware is back in control after Keel returned) and writes the
# serial output, without OVMF's terminal escape sequences, to LOG.
uefi_boot() {
    local img=$1 cpus=$2 log=$3 timeout_s=${4:-${KEEL_QEMU_TIMEOUT:-240}}
    "$ROOT/tools/run-qemu-uefi.sh" --image "$img" --smp "$cpus" --serial "$log.raw" --timeout "$timeout_s" \
        --until 'Shell> ' > "$WORK/qemu.out" 2>&1
    local rc=$?
    [ $rc -eq 124 ] && fail "the firmware did not reach the UEFI shell within ${timeout_s}s (hang?)"
    [ $rc -ne 0 ] && [ $rc -ne 124 ] && fail "QEMU failed (status $rc): $(head -c 300 "$WORK/qemu.out")"
    sed 's/\x1b\[[0-9;?=]*[A-Za-z]//g; s/\r//g' "$log.raw" > "$log" 2>/dev/null || : > "$log"
}
