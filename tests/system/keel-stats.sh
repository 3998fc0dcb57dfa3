#!/usr/bin/env bash
# No emulator: tools/keel-stats on serial logs recorded from real Bochs runs
# (tests/tools/test_keel_stats.py, data in tests/tools/data/).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if /usr/bin/python3 -m unittest tests/tools/test_keel_stats.py > "$WORK/out.txt" 2>&1; then
    echo "  ok: $(grep -o 'Ran [0-9]* tests' "$WORK/out.txt")"
else
    cat "$WORK/out.txt"
    fail "tools/keel-stats tests failed"
fi
finish
