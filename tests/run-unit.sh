#!/usr/bin/env bash
# Runs host unit test binaries; prints per-binary results. Exit 1 if any failed.
fail=0
for t in "$@"; do
    echo "== $t"
    if "$t"; then echo "RESULT $(basename "$t"): PASS"; else echo "RESULT $(basename "$t"): FAIL"; fail=1; fi
done
exit $fail
