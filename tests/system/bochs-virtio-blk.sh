#!/usr/bin/env bash
# virtio over PCI under Keel: the virtio-blk guest, which uses no hypercall, finds the
# function through 0xCF8/0xCFC, sizes and moves BAR 0, negotiates VERSION_1, reads the
# disk the test wrote (byte i of sector s = (s * 31 + i) & 0xff) with INTx through the
# IOAPIC and with MSI-X through its local APIC, writes (or, read-only, is refused),
# flushes, reads the ID, makes a looping chain (DEVICE_NEEDS_RESET, logged once by Keel)
# and recovers by a reset; the writable VM also prints a line through virtio-console.
# Two VMs share one disk image: the read-only one must not see the other's write.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests
python3 -c '
import sys
sys.stdout.buffer.write(bytes(((s * 31 + i) & 0xff) for s in range(64) for i in range(512)))
' > "$WORK/disk.img" || fail "could not write the disk image"
make_iso "$WORK/virtio.iso" "$ROOT/tests/system/configs/virtio-blk.cfg" "$G/virtio-blk.elf" "$WORK/disk.img"
log=$WORK/virtio.log
bochs_boot 2 "$WORK/virtio.iso" "$log" 240
expect "$log" "VMM: 2 of 2 configured VMs started" "both VMs started"
for vm in vblk vblk-ro; do
    for check in find bar caps capacity read-intx read-msix write flush-id needs-reset after-reset; do
        expect "$log" "$vm: virtio-blk: ok $check: " "$vm: $check"
    done
    expect "$log" "$vm: virtio-blk: all [0-9]+ checks passed" "$vm: every check passed"
    expect "$log" "VM $vm: virtio-blk 00:01.0: queue 0: chain 0 is longer than the queue size 8 \\(a loop\\); the device needs a reset" "$vm: Keel logs the malformed chain"
    expect_count "$log" "VM $vm: virtio-blk 00:01.0: queue 0: " 1 "$vm: logged once"
done
expect "$log" "vblk: virtio-blk: ok find: virtio-blk at 00:01.0, IRQ 11, virtio-console too" "vblk: disk at 00:01.0 on IRQ 11 and a console"
expect "$log" "vblk-ro: virtio-blk: ok find: virtio-blk at 00:01.0, IRQ 11$" "vblk-ro: no console"
expect "$log" "vblk: virtio-blk: ok write: sector 2 written and read back" "the writable disk takes writes"
expect "$log" "vblk-ro: virtio-blk: ok write: refused with IOERR on the read-only disk, sector 2 unchanged" "the read-only disk refuses them and keeps its data"
expect "$log" "vblk: virtio-blk: ok flush-id: flush done, id 'keel-vblk'" "GET_ID gives the VM's name"
expect "$log" "^(\\[cpu[0-9]+\\] )?vblk: hello through virtio-console$" "virtio-console output is the VM's console line"
reject "$log" "virtio-blk: FAIL " "no check fails"
for vm in vblk vblk-ro; do
    expect "$log" "VM $vm: exit code 1 \\(0x1\\)" "$vm: exits with code (0<<1)|1"
done
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
grep -a -E "virtio-blk: note: |VM vblk(-ro)?: (report|exits by reason)" "$log" | sed 's/^\[cpu[0-9]*\] /  /'
finish "$log"
