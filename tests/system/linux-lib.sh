# Helpers for the Linux guest tests (sourced after lib.sh): Debian's kernel, busybox
# initramfs and test disk from tools/linux-fetch.sh (cached in build/linux), ISOs that
# carry them, and a Bochs run whose output lines are timestamped.
LINUX=$BUILD/linux
LINUX_CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 reboot=k tsc=reliable no_timer_check"
LINUX_MARKER="KEEL-LINUX: init reached"
# How a line from /init shows in a VM's log: through the kernel log (timestamped) or the tty.
LINUX_SAYS="(\\[ *[0-9.]+\\] )?KEEL-LINUX:"

linux_fetch() {
    "$ROOT/tools/linux-fetch.sh" "$LINUX" || { fail "could not fetch Debian's kernel and busybox"; finish; }
}

# linux_plain_iso OUT.iso: GRUB boots the same kernel, initramfs and command line
# directly, without Keel (the baseline).
linux_plain_iso() {
    local dir=$WORK/plain-iso
    mkdir -p "$dir/boot/grub"
    cp "$LINUX/vmlinuz" "$LINUX/initrd.cpio" "$dir/boot/"
    printf 'set timeout=0\nset default=0\nmenuentry Linux {\n  linux /boot/vmlinuz %s\n  initrd /boot/initrd.cpio\n  boot\n}\n' \
        "$LINUX_CMDLINE" > "$dir/boot/grub/grub.cfg"
    grub-mkrescue -o "$1" --install-modules="linux normal iso9660 biosdisk configfile" \
        --locales= --fonts= --themes= --compress=no "$dir" >/dev/null 2>&1 || fail "could not build $1"
}

# linux_bochs LOG CPUS MEM_MIB ISO TIMEOUT [SERIAL]: Bochs with every line of its output
# (Keel's console on port 0xE9) prefixed by the seconds since Bochs started
# ("  12.34 line"). With SERIAL, COM1 goes to that file, and LOG.first and LOG.marker
# get the times at which the kernel's banner and LINUX_MARKER first appeared in it
# (polled every 0.2 s).
linux_bochs() {
    local log=$1 cpus=$2 mem=$3 iso=$4 timeout_s=$5 serial=${6:-$WORK/com1.txt}
    local t0 poller=""
    : > "$serial"
    rm -f "$log.marker" "$log.first" "$WORK/bochs-done"
    t0=$(date +%s.%N)
    if [ -n "${6:-}" ]; then
        (   while [ ! -e "$WORK/bochs-done" ]; do
                if [ ! -e "$log.first" ] && grep -a -q "Linux version" "$serial"; then
                    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f\n", b-a}' > "$log.first"
                fi
                if grep -a -q "$LINUX_MARKER" "$serial"; then
                    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f\n", b-a}' > "$log.marker"
                    break
                fi
                sleep 0.2
            done ) &
        poller=$!
    fi
    "$ROOT/tools/run-bochs.sh" --cpus "$cpus" --mem "$mem" --iso "$iso" --serial "$serial" \
        --timeout "$timeout_s" 2>&1 | stamp "$t0" > "$log"
    [ "${PIPESTATUS[0]}" -eq 124 ] && echo "  note: Bochs ran into its ${timeout_s}s timeout"
    touch "$WORK/bochs-done"
    [ -n "$poller" ] && wait "$poller"
    return 0
}

# stamp T0: prefixes each line of stdin with the seconds since T0.
stamp() {
    while IFS= read -r line; do
        printf '%s %s\n' "$(awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%7.2f", b-a}')" "$line"
    done
}

# when LOG REGEX: the timestamp of the first matching line, or "" when none matches.
when() { grep -a -m1 -E "$2" "$1" 2>/dev/null | awk '{print $1}'; }
