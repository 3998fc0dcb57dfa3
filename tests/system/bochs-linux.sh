#!/usr/bin/env bash
# Debian's own kernel (linux-image-amd64, unmodified) with a busybox initramfs in a
# 1-vCPU Keel VM in Bochs, half of its RAM at 4 GiB: the kernel boots by the Linux boot
# protocol, takes both parts of its RAM, reaches its
# /init, which prints a marker and the CPU count, loads Debian's virtio modules, reads
# the virtio-blk disk, writes to the virtio console and powers off through ACPI S5. The
# VM's exit profile is printed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/linux-lib.sh"
linux_fetch
make_iso "$WORK/linux.iso" "$ROOT/tests/system/configs/linux-1vcpu.cfg" "$LINUX/vmlinuz" "$LINUX/initrd.cpio" \
    "$LINUX/disk.img"
log=$WORK/linux.log
linux_bochs "$log" 1 512 "$WORK/linux.iso" 480 # 2.5 minutes on a quiet machine
cp "$log" "$LINUX/bochs-linux.log" # kept for a look after the run
expect "$log" "VM deb: 256 MiB at .* linux image 'vmlinuz' .*initrd 'initrd.cpio'" "the Linux VM started with its initrd"
expect "$log" "deb: \[ *[0-9.]+\] Linux version $(cat "$LINUX/version")" "Debian's kernel prints its banner"
expect "$log" "deb: \[ *[0-9.]+\] tsc: Detected [0-9.]+ MHz processor" "the kernel knows the TSC rate"
expect "$log" "deb: \[ *[0-9.]+\] BIOS-e820: \[mem 0x0000000100000000-0x0000000107ffffff\] usable" "the kernel's e820 map has the 128 MiB at 4 GiB"
expect "$log" "deb: \[ *[0-9.]+\] Memory: [0-9]+K/26[01][0-9]{3}K available" "the kernel counts all 256 MiB, both parts"
expect "$log" "deb: \[ *[0-9.]+\] Run /init as init process" "the kernel runs /init"
expect "$log" "deb: ${LINUX_SAYS} init reached" "init reached (its markers in the kernel log or on the console)"
expect "$log" "deb: ${LINUX_SAYS} nproc 1$" "init sees 1 CPU"
expect "$log" "deb: KEEL-LINUX: nproc 1$" "init's own output on the console (the 8250 driver's tty)"
expect "$log" "deb: ${LINUX_SAYS} disk /dev/vda 2048 sectors" "virtio_blk found the 1 MiB disk"
expect "$log" "deb: ${LINUX_SAYS} disk says: KEEL-DISK-OK the virtio-blk disk of the Linux test$" "init read the disk's first line"
expect "$log" "deb: KEEL-LINUX: hello from hvc0" "init wrote to the virtio console (hvc0)"
reject "$log" "deb: .*(unchecked MSR access|WARNING: CPU|Kernel panic|BUG:|Oops)" "no kernel warning, MSR error or panic"
expect "$log" "VM deb: stopped: powered off by the guest" "the VM powered off"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
t_start=$(when "$log" "VM deb: 256 MiB")
t_init=$(when "$log" "deb: ${LINUX_SAYS} init reached")
echo "  Bochs start -> VM created ${t_start:-?} s, -> init marker ${t_init:-?} s (wall)"
grep -a -E "VM deb: (report|exits by)" "$log" | sed 's/^ *[0-9.]* /  /'
finish "$log"
