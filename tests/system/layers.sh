#!/usr/bin/env bash
# No emulator: the include graph keeps to the layers of tools/layers.txt (vmm/lib <
# arch < drivers < vmm; boot on arch): no include goes up a layer, none forms a cycle,
# every include resolves. Lower layers reach upper ones only through hooks the upper
# layer registers (the AP idle loop, the console platform).
source "$(dirname "$0")/lib.sh"
out=$WORK/layers.txt
if bash "$ROOT/tools/check-layers.sh" > "$out" 2>&1; then
    echo "  ok: $(tail -n 1 "$out")"
    grep -E "^Files:" "$out" | sed 's/^/  /'
else
    sed 's/^/  /' "$out" | tail -n 40
    fail "the include graph breaks the layering"
fi
finish
