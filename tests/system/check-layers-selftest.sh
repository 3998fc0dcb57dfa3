#!/usr/bin/env bash
# No emulator: checks tools/check-layers.sh's verdicts and exit codes on small fake trees
# (clean, with include cycles, with upward includes, with bad input), and that the real
# tree's layer table still claims every source file and resolves every include. The gate
# on the real tree's layering comes with the layout move of issue 7; today's tree has
# upward includes.
source "$(dirname "$0")/lib.sh"
CHECK=$ROOT/tools/check-layers.sh

# src DIR FILE [INCLUDED...]: writes DIR/FILE with one #include (or nasm %include) each.
src() {
    local dir=$1 f=$2; shift 2
    mkdir -p "$dir/$(dirname "$f")"
    : > "$dir/$f"
    for inc in "$@"; do
        case $f in
            *.asm|*.inc) printf '%%include "%s"\n' "$inc" >> "$dir/$f" ;;
            *) printf '#include "%s"\n' "$inc" >> "$dir/$f" ;;
        esac
    done
}

# The issue's layers, written for the fake trees (the real table's interim lines name
# files these trees do not have). vmm/types.h is an interim-style file line.
table() {
    mkdir -p "$1/tools"
    cat > "$1/tools/layers.txt" <<'EOF'
# fake tree
layer vmm/lib
layer arch      on vmm/lib
layer drivers   on arch
layer vmm       on drivers
layer boot      on arch
path vmm/lib/   vmm/lib
path arch/      arch
path drivers/   drivers
path vmm/       vmm
path boot/      boot
path boot/bootinfo.h  vmm/lib
path vmm/types.h      vmm/lib
generated offsets.gen.inc  arch/x86/offsets.c
EOF
}

# A layered tree: each include goes down a layer or stays in one. lapic and timer use
# each other (a unit cycle inside drivers, which is allowed).
clean_tree() {
    local d=$1
    table "$d"
    src "$d" vmm/lib/string.h  vmm/types.h
    src "$d" vmm/lib/string.c  vmm/lib/string.h
    src "$d" vmm/types.h
    src "$d" boot/bootinfo.h   vmm/types.h
    src "$d" arch/x86/cpu.h    vmm/types.h
    src "$d" arch/x86/paging.h boot/bootinfo.h arch/x86/cpu.h
    src "$d" arch/x86/vmx/vmcs.h ../cpu.h
    src "$d" arch/x86/entry.asm  offsets.inc offsets.gen.inc
    src "$d" arch/x86/offsets.inc
    src "$d" arch/x86/offsets.c  arch/x86/vmx/vmcs.h
    src "$d" drivers/lapic.h   arch/x86/cpu.h
    src "$d" drivers/lapic.c   lapic.h drivers/timer.h
    src "$d" drivers/timer.h   vmm/lib/string.h
    src "$d" drivers/timer.c   drivers/timer.h drivers/lapic.h
    src "$d" vmm/vm.h          arch/x86/vmx/vmcs.h drivers/lapic.h
    src "$d" vmm/vm.c          vmm/vm.h vmm/vm.h vmm/lib/string.h
    src "$d" boot/uefi/loader.c boot/bootinfo.h arch/x86/paging.h vmm/lib/string.h
}

# check DIR LOG [ARGS...]: runs the checker on DIR; its exit status goes to LOG.rc.
check() {
    local dir=$1 log=$2; shift 2
    "$CHECK" --root "$dir" "$@" > "$log" 2>&1
    echo $? > "$log.rc"
}
expect_rc() {
    local got; got=$(cat "$1.rc")
    if [ "$got" -eq "$2" ]; then echo "  ok: $3 (exit $got)"; else fail "$3: exit status $got, expected $2"; fi
}

echo "clean tree"
clean_tree "$WORK/clean"
check "$WORK/clean" "$WORK/clean.log"
expect_rc "$WORK/clean.log" 0 "a layered tree passes"
expect "$WORK/clean.log" '^Files: 17   include edges: 23   unresolved includes: 0$' \
    "17 files; 23 edges: the repeated include counts once, quotes resolve beside the file and at the root"
expect "$WORK/clean.log" '^Include cycles: 0$' "no include cycle"
expect "$WORK/clean.log" '^Upward includes: 0$' "no upward include"
expect "$WORK/clean.log" '^  arch +-> arch +5$' \
    "the .asm includes (one generated from arch/x86/offsets.c) and ../cpu.h count as arch -> arch"
expect "$WORK/clean.log" '^  arch +-> vmm/lib +2$' "boot/bootinfo.h and the interim vmm/types.h count as vmm/lib"
expect "$WORK/clean.log" '^Unit cycles .*: 1   units in the largest: 2$' "lapic <-> timer is reported as a unit cycle"
expect "$WORK/clean.log" '^check-layers: ok$' "the verdict is ok"

echo "include cycles"
clean_tree "$WORK/cycle"
# Two loops sharing vmm/a.h and vmm/b.h: one component of four files, which a tool that
# reports loops one at a time would split. vmm/e.h only hangs off it.
src "$WORK/cycle" vmm/a.h vmm/b.h
src "$WORK/cycle" vmm/b.h vmm/c.h vmm/a.h
src "$WORK/cycle" vmm/c.h vmm/d.h
src "$WORK/cycle" vmm/d.h vmm/a.h
src "$WORK/cycle" vmm/e.h vmm/a.h
src "$WORK/cycle" drivers/self.h self.h
check "$WORK/cycle" "$WORK/cycle.log"
expect_rc "$WORK/cycle.log" 1 "a tree with include cycles fails"
expect "$WORK/cycle.log" '^Include cycles: 2   files in the largest: 4$' "two cycles, the largest of four files"
expect "$WORK/cycle.log" '^  cycle 1, 4 files:$' "the largest is listed first"
sed -n '/^  cycle 1, 4 files:/,/include.* inside it/p' "$WORK/cycle.log" > "$WORK/cycle1.txt"
for f in vmm/a.h vmm/b.h vmm/c.h vmm/d.h; do expect "$WORK/cycle1.txt" "^    $f " "cycle 1 lists $f"; done
reject "$WORK/cycle1.txt" 'vmm/e\.h' "cycle 1 leaves out vmm/e.h, which only includes into it"
expect "$WORK/cycle1.txt" '^    5 includes inside it:$' "all five includes inside the cycle are listed"
expect "$WORK/cycle.log" '^  cycle 2, 1 file \(includes itself\):$' "a file including itself is a cycle"
expect "$WORK/cycle.log" '^Upward includes: 0$' "cycles within a layer are not upward includes"
check "$WORK/cycle" "$WORK/cycle-report.log" --report
expect_rc "$WORK/cycle-report.log" 0 "--report exits 0 on the same tree"
expect "$WORK/cycle-report.log" '^check-layers: report: 2 include cycles, 0 upward includes' "--report gives the same counts"

echo "upward includes"
clean_tree "$WORK/up"
src "$WORK/up" arch/x86/idt.c   vmm/types.h drivers/lapic.h
src "$WORK/up" vmm/lib/printf.c vmm/lib/string.h arch/x86/cpu.h
src "$WORK/up" boot/uefi/mem.c  vmm/lib/string.h drivers/timer.h
src "$WORK/up" drivers/acpi.c   boot/uefi/mem.h
src "$WORK/up" boot/uefi/mem.h
check "$WORK/up" "$WORK/up.log"
expect_rc "$WORK/up.log" 1 "a tree with upward includes fails"
expect "$WORK/up.log" '^Upward includes: 4$' "four upward includes"
expect "$WORK/up.log" '^  arch +-> drivers +1 +1 UPWARD$' "arch -> drivers counted"
expect "$WORK/up.log" '^  vmm/lib +-> arch +1 +1 UPWARD$' "vmm/lib -> arch counted"
expect "$WORK/up.log" '^  boot +-> drivers +1 +1 UPWARD$' "boot -> drivers (beside, not below) counted"
expect "$WORK/up.log" '^  drivers +-> boot +1 +1 UPWARD$' "drivers -> boot counted"
expect "$WORK/up.log" '^  arch/x86/idt\.c:2 -> drivers/lapic\.h +\(arch -> drivers\)$' "the edge is listed with its line"
reject "$WORK/up.log" 'idt\.c:1 ' "the interim vmm/types.h is not upward from arch"
expect "$WORK/up.log" '^Include cycles: 0$' "no cycle"

echo "bad input"
clean_tree "$WORK/unres"
src "$WORK/unres" vmm/vm.c vmm/vm.h missing.h ../../vmm/vm.h
check "$WORK/unres" "$WORK/unres.log"
expect_rc "$WORK/unres.log" 1 "an include of a missing file fails"
expect "$WORK/unres.log" '^  vmm/vm\.c:2: "missing\.h"$' "the unresolved include is named"
expect "$WORK/unres.log" '^  vmm/vm\.c:3: "\.\./\.\./vmm/vm\.h"$' "a path climbing out of the tree does not resolve"

clean_tree "$WORK/noclaim"
sed -i '/^path boot\/ /d' "$WORK/noclaim/tools/layers.txt"
check "$WORK/noclaim" "$WORK/noclaim.log" --report
expect_rc "$WORK/noclaim.log" 2 "a file no layer claims is an error, even with --report"
expect "$WORK/noclaim.log" 'no path in tools/layers.txt claims boot/uefi/loader\.c' "the file is named"

clean_tree "$WORK/loop"
sed -i 's/^layer vmm\/lib$/layer vmm\/lib on vmm/' "$WORK/loop/tools/layers.txt"
check "$WORK/loop" "$WORK/loop.log" --report
expect_rc "$WORK/loop.log" 2 "a layer table with a loop is an error"
expect "$WORK/loop.log" 'layer vmm/lib sits on itself' "the loop is named"

clean_tree "$WORK/typo"
echo "path vmm/dev/ vmm/devs" >> "$WORK/typo/tools/layers.txt"
check "$WORK/typo" "$WORK/typo.log" --report
expect_rc "$WORK/typo.log" 2 "a path in an undeclared layer is an error"
expect "$WORK/typo.log" 'tools/layers.txt:[0-9]+: path vmm/dev/ is in layer vmm/devs, which is not declared' \
    "the table line is named"

echo "the real tree"
check "$ROOT" "$WORK/real.log" --report
expect_rc "$WORK/real.log" 0 "tools/layers.txt parses and claims every source file"
expect "$WORK/real.log" '^Files: [1-9][0-9]+ .*   unresolved includes: 0$' \
    "every include of the real tree resolves (a new generated one needs its table line)"
finish "$WORK/real.log"
