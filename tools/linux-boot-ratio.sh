#!/usr/bin/env bash
# linux-boot-ratio.sh: in one run, the wall time from Bochs's power-on to the Linux
# test's init marker, for Debian's kernel and initramfs under plain Bochs (GRUB boots
# the kernel directly) and under Keel in Bochs (the same kernel, initramfs and command
# line in a 1-vCPU VM); prints both, their ratio and the Keel VM's exit profile. Both
# runs: 1 CPU, the kernel given 256 MiB. Run it through /work/bin/emu (or alone on the
# machine): the two Bochs runs go one after the other.
source "$(dirname "$0")/../tests/system/lib.sh"
source "$ROOT/tests/system/linux-lib.sh"
linux_fetch
linux_plain_iso "$WORK/plain.iso"
make_iso "$WORK/keel.iso" "$ROOT/tests/system/configs/linux-1vcpu.cfg" "$LINUX/vmlinuz" "$LINUX/initrd.cpio" "$LINUX/disk.img"
linux_bochs "$WORK/plain.log" 1 256 "$WORK/plain.iso" 300 "$WORK/plain-com1.txt"
plain=$(cat "$WORK/plain.log.marker" 2>/dev/null)
linux_bochs "$WORK/keel.log" 1 512 "$WORK/keel.iso" 300
keel=$(when "$WORK/keel.log" "deb: ${LINUX_SAYS} init reached")
cp "$WORK/keel.log" "$LINUX/ratio-keel.log"
tr -d '\r' < "$WORK/plain-com1.txt" > "$LINUX/ratio-plain-com1.log"
echo "plain Bochs: power-on to init marker ${plain:-never} s (first kernel line at $(cat "$WORK/plain.log.first" 2>/dev/null) s)"
echo "Keel in Bochs: power-on to init marker ${keel:-never} s (VM created at $(when "$WORK/keel.log" "VM deb: 256 MiB") s, first kernel line at $(when "$WORK/keel.log" "deb: \[") s)"
if [ -n "$plain" ] && [ -n "$keel" ]; then
    awk -v k="$keel" -v p="$plain" 'BEGIN{printf "ratio Keel/plain: %.2f\n", k / p}'
else
    fail "a run did not reach the init marker"
fi
grep -a -E "VM deb: (report|exits by)" "$WORK/keel.log" | sed 's/^ *[0-9.]* /  /'
finish "$WORK/keel.log"
