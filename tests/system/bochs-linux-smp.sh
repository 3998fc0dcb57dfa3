#!/usr/bin/env bash
# Debian's kernel in a 2-vCPU Keel VM on 2 CPUs, next to a CPU-bound spinner: Linux
# brings up its second CPU by INIT-SIPI-SIPI, /init counts 2 CPUs and the VM powers off;
# the spinner finishes beside it.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/linux-lib.sh"
linux_fetch
make_iso "$WORK/linux.iso" "$ROOT/tests/system/configs/linux-2vcpu.cfg" "$LINUX/vmlinuz" "$LINUX/initrd.cpio" \
    "$BUILD/guests/spinner.elf"
log=$WORK/linux.log
linux_bochs "$log" 2 512 "$WORK/linux.iso" 720 # 2 emulated CPUs: the decompressor alone takes 2-3 minutes; 6 in all next to other emulators
cp "$log" "$LINUX/bochs-linux-smp.log" # kept for a look after the run
expect "$log" "VMM: 2 of 2 configured VMs started" "both VMs started"
expect "$log" "deb2: \[ *[0-9.]+\] smp: Brought up 1 node, 2 CPUs" "Linux brought up its second CPU"
expect "$log" "deb2: ${LINUX_SAYS} init reached" "init reached"
expect "$log" "deb2: ${LINUX_SAYS} nproc 2$" "init sees 2 CPUs"
reject "$log" "deb2: .*(unchecked MSR access|WARNING: CPU|Kernel panic|BUG:|Oops)" "no kernel warning, MSR error or panic"
expect "$log" "VM deb2: stopped: powered off by the guest" "the Linux VM powered off"
expect "$log" "spin: spinner: done after [0-9]+ ticks" "the spinner beside it finished"
expect "$log" "VM spin: exit code 1 \(0x1\)" "the spinner exited with success"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
grep -a -E "VM deb2: (report|exits by)" "$log" | sed 's/^ *[0-9.]* /  /'
finish "$log"
