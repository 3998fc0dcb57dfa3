#!/usr/bin/env bash
# Bochs, 2 CPUs: the most VMs Keel supports, each with its own image file. GRUB hands
# over seventeen modules (sixteen images and keel.cfg); every one must arrive, so all
# sixteen VMs start and finish, and no VM reports a missing image.
source "$(dirname "$0")/lib.sh"
cfg=$WORK/keel.cfg
images=()
{
    echo "console = com1, e9"
    echo "on_idle = poweroff"
    for i in $(seq 0 15); do
        cp "$BUILD/guests/hello.elf" "$WORK/hello$i.elf"
        images+=("$WORK/hello$i.elf")
        printf '[vm v%d]\nmemory = 2M\nimage = hello%d.elf\ncmdline = v%d\n' "$i" "$i" "$i"
    done
} > "$cfg"
make_iso "$WORK/16vms.iso" "$cfg" "${images[@]}"
log=$WORK/16vms.log
bochs_boot 2 "$WORK/16vms.iso" "$log" 240
expect "$log" "BOOT: 17 modules from " "all seventeen modules arrived"
reject "$log" "BOOT: .* left out" "no module was left out"
reject "$log" "not loaded" "no VM lost its image"
expect "$log" "VMM: 16 of 16 configured VMs started" "all sixteen VMs started"
expect_count "$log" "VM v[0-9]+: exit code 1 \(0x1\)" 16 "all sixteen VMs finished"
expect "$log" "Keel: all 16 VMs have stopped" "all VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"
finish "$log"
