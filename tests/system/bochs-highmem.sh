#!/usr/bin/env bash
# RAM above 4 GiB (tests/system/configs/highmem.cfg): the VM's memory
# map and boot page tables show it at 4 GiB, the guest's writes across it read back, a
# hypercall buffer there works, and its first access past the end stops that VM with a
# report while the small VM beside it finishes.
source "$(dirname "$0")/lib.sh"
make_iso "$WORK/highmem.iso" "$ROOT/tests/system/configs/highmem.cfg" "$BUILD/guests/hello64.elf"
log=$WORK/highmem.log
BOCHS_MEM=512 bochs_boot 2 "$WORK/highmem.iso" "$log" 180
expect "$log" "VM big: 129 MiB at 0x[0-9a-f]+ \(65 MiB at 4 GiB: 0x[0-9a-f]+\)" "the big VM's RAM is in two blocks, 65 MiB of it at 4 GiB"
expect "$log" "big: hello64: ok: RAM above 4 GiB: 66560 KiB at 0x100000000" "the guest's memory map has the RAM at 4 GiB"
expect "$log" "big: hello64: ok: [0-9]+ words written across it, every 2 MiB and its last 8 bytes, read back \(0 wrong\)" "writes across the RAM at 4 GiB read back"
expect "$log" "big: hello64: ok: VM_INFO with its buffer at 0x100100000 returned 0, memory 129 MiB" "a hypercall buffer at 4 GiB works"
expect "$log" "VM big: stopped: EPT violation: read at guest-physical 0x104100000 \(outside its RAM, RAM is 0x4000000 bytes and 0x4100000 at 4 GiB\)" "reading past the end of RAM stops the VM with a report"
reject "$log" "big: hello64: FAIL" "no check of the big VM failed"
expect "$log" "small: hello64: no RAM above 4 GiB" "the small VM has none"
expect "$log" "small: hello64: done" "the small VM passes its checks"
expect "$log" "VM small: exit code 1 \(0x1\)" "the small VM finishes (debug-exit code 0)"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
