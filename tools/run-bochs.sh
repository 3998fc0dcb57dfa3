#!/usr/bin/env bash
# run-bochs.sh --iso ISO [--cpus N] [--mem MIB] [--serial FILE | --com1-socket HOST:PORT]
#               [--timeout S] [--model M] [--quiet]
# Boots a Keel ISO in Bochs (BIOS + GRUB + Multiboot2). The console (port 0xE9) goes to
# stdout; COM1 to --serial FILE, or both ways through a TCP connection Bochs opens to
# HOST:PORT at start-up (--com1-socket: Bochs's socket-client mode; whoever listens
# there reads COM1's output and types its input). No GUI: the display is a VNC server
# nobody connects to.
set -euo pipefail
iso="" cpus=2 mem=256 serial="" com1_socket="" timeout_s=0 model=corei7_skylake_x quiet=0
while [ $# -gt 0 ]; do
    case $1 in
    --iso) iso=$2; shift 2 ;;
    --cpus) cpus=$2; shift 2 ;;
    --mem) mem=$2; shift 2 ;;
    --serial) serial=$2; shift 2 ;;
    --com1-socket) com1_socket=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --quiet) quiet=1; shift ;;
    *) echo "run-bochs: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$iso" ] || { echo "run-bochs: --iso is required" >&2; exit 2; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
[ -n "$serial" ] || serial=$dir/serial.txt
com1="mode=file, dev=$(realpath -m "$serial")"
[ -n "$com1_socket" ] && com1="mode=socket-client, dev=$com1_socket"
# Bochs keeps at most 2048 MiB of guest RAM in host memory (host=); a larger guest is
# backed beyond that by its own swap file.
host_mem=$(( mem < 2048 ? mem : 2048 ))
cat > "$dir/bochsrc" <<RC
cpu: model=$model, count=$cpus, ips=100000000, reset_on_triple_fault=0
memory: guest=$mem, host=$host_mem
romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
display_library: rfb, options="timeout=0"   # concurrent runs take the next free port
ata0-master: type=cdrom, path=$(realpath "$iso"), status=inserted
boot: cdrom
port_e9_hack: enabled=1
com1: enabled=1, $com1
sound: driver=dummy
speaker: enabled=0
log: $dir/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
RC
echo c > "$dir/rc"
cmd=(bochs -q -f "$dir/bochsrc" -rc "$dir/rc")
[ "$timeout_s" -gt 0 ] && cmd=(timeout --kill-after=5 "$timeout_s" "${cmd[@]}")
status=0
# Bochs prints its banner and start-up log lines on stdout before its log file opens.
noise='^([0-9]{11}[a-zA-Z]\[|=+$|\s+(Bochs x86|Built from|Timestamp:)|\([0-9]+\)\.\[[0-9]+\]|Bochs is exiting|Next at t=|\([0-9]+\) \[0x|\s*$)'
if [ $quiet -eq 1 ]; then
    "${cmd[@]}" </dev/null >"$dir/stdout" 2>&1 || status=$?
    grep -a -v -E "$noise" "$dir/stdout" || true
else
    "${cmd[@]}" </dev/null 2>&1 | grep -a --line-buffered -v -E "$noise" || status=${PIPESTATUS[0]}
fi
# Bochs exits with status 1 when Keel writes "Shutdown" to port 0x8900: judge by output.
[ $status -eq 124 ] && { echo "run-bochs: timed out after ${timeout_s}s" >&2; exit 124; }
exit 0
