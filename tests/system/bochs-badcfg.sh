#!/usr/bin/env bash
# Bochs, 1 CPU, Multiboot2: configuration errors reach the console. The console
# itself is configured by keel.cfg, so the errors must be printed once it exists, on
# the default COM1, with the file's line number; then Keel says what to do, starts no
# VM and follows on_idle (set on the command line here, so the machine powers off).
# A second boot with a good keel.cfg and a bad command line shows command-line errors.
# The first also asks a CPU the machine does not have for the fault test: reported.
source "$(dirname "$0")/lib.sh"
G=$BUILD/guests

# Line 4 misspells a key inside a VM section.
cat > "$WORK/bad.cfg" <<'CFG'
# keel.cfg with a typo
on_idle = halt
[vm typo]
memroy = 16M
image = hello.elf
CFG
make_iso_cmdline "$WORK/badfile.iso" "$WORK/bad.cfg" "on_idle=poweroff fault_test_cpu=3" "$G/hello.elf"
bochs_boot 1 "$WORK/badfile.iso" "$WORK/badfile.e9" 120
log=$WORK/badfile.log
com1_log "$log"
expect "$log" "Keel .*: started by .* via Multiboot2" "file: the core started and COM1 works"
expect "$log" "CONFIG: keel\.cfg:4: unknown key 'memroy'" "file: the error names keel.cfg, line 4 and the key, on COM1"
expect "$log" "CONFIG: keel\.cfg rejected as a whole: no VM will start; fix it and boot again" "file: says what to do"
expect_count "$log" "CONFIG: keel\.cfg:4: " 2 "file: the error is repeated after the boot log"
expect "$log" "Keel: not starting guests: the configuration has errors" "file: no guest started"
reject "$log" "VM typo" "file: the VM of the rejected file was not created"
expect "$log" "nothing left to run; powering off" "file: on_idle from the command line is followed"
expect "$log" "CONFIG: fault_test_cpu = 3 names no CPU of this machine \(1 CPU online\): no CPU runs the fault test" "fault_test_cpu beyond the online CPUs is reported"
reject "$log" "EXCEPTION|PANIC" "file: no exception or panic"
[ $FAILED -eq 0 ] || finish "$log"

cat > "$WORK/good.cfg" <<'CFG'
on_idle = poweroff
[vm hello]
memory = 4M
image = hello.elf
CFG
make_iso_cmdline "$WORK/badcmd.iso" "$WORK/good.cfg" "slice_ms=0" "$G/hello.elf"
bochs_boot 1 "$WORK/badcmd.iso" "$WORK/badcmd.e9" 120
log=$WORK/badcmd.log
com1_log "$log"
expect "$log" "CONFIG: cmdline: slice_ms '0' is out of range \(1\.\.1000\)" "cmdline: the error names the option, on COM1"
expect "$log" "CONFIG: the command line rejected as a whole: no VM will start; fix it and boot again" "cmdline: says what to do"
expect "$log" "Keel: not starting guests: the configuration has errors" "cmdline: no guest started"
expect "$log" "nothing left to run; powering off" "cmdline: on_idle from keel.cfg is followed"
reject "$log" "EXCEPTION|PANIC" "cmdline: no exception or panic"
finish "$log"
