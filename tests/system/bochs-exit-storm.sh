#!/usr/bin/env bash
# Bochs, 4 CPUs, 8 VMs: the exit storm. Every VM runs storm.elf, which makes a known mix
# of CPUID, port I/O, RDMSR/WRMSR, VMCALL and HLT (interrupts on) exits, 10 million in
# all, and prints how many of each it made, start-up and console output included. For
# every VM, Keel's report at stop must give exactly those numbers for those kinds; the
# exits the guest cannot choose (preemption timer, external interrupts) are only bounded;
# any other kind fails. The mix part of each guest's count must also equal n times the
# mix in keel.cfg, so a guest that miscounted itself cannot agree with a Keel that
# miscounted the same way. Prints the wall time, the exits and the Bochs ticks they took.
#
# Measured on the 2-core development machine (Bochs 2.7): 10,002,300 exits, 169 Bochs
# ticks per exit in guests and in Keel, 434 million ticks on the busiest CPU, 343-390 s
# of wall time. Bochs spends about 26 us of host CPU per exit (about 6.5 million emulated
# instructions per second in this storm against about 29 million in a guest that does
# not exit), so the run cannot get much shorter without fewer exits.
#
# STORM_N=<n> runs every VM with n iterations instead (a quick run while developing);
# STORM_TIMEOUT=<s> changes the hang timeout (default 900 s); STORM_LOG=<file> keeps
# Keel's console log there.
source "$(dirname "$0")/lib.sh"
CFG=$ROOT/tests/system/configs/exit-storm-4cpu.cfg
TIMEOUT=${STORM_TIMEOUT:-900}
cfg=$WORK/keel.cfg
if [ -n "${STORM_N:-}" ]; then
    sed -E "s/(^cmdline = .*)n=[0-9]+/\1n=$STORM_N/" "$CFG" > "$cfg"
else
    cp "$CFG" "$cfg"
fi
make_iso "$WORK/storm.iso" "$cfg" "$BUILD/guests/storm.elf"
log=$WORK/storm.log
t0=$(date +%s.%N)
bochs_boot 4 "$WORK/storm.iso" "$log" "$TIMEOUT"
wall=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')

# One line per VM from keel.cfg: name, pinned CPU (- when unpinned), n, mix.
vms=$(awk '
    function flush() { if (name != "") print name, cpu, n, mix }
    /^\[vm / { flush(); name = $2; sub(/\]$/, "", name); cpu = "-"; n = ""; mix = "" }
    /^cpu *=/ { cpu = $3 }
    /^cmdline *=/ {
        for (i = 3; i <= NF; i++) {
            if ($i ~ /^n=/) n = substr($i, 3)
            if ($i ~ /^mix=/) mix = substr($i, 5)
        }
    }
    END { flush() }' "$cfg")
nvms=$(echo "$vms" | wc -l)

expect "$log" "SMP: 4 of 4 CPUs online" "4 CPUs online"
expect "$log" "VMM: $nvms of $nvms configured VMs started" "all $nvms VMs started"

# field LINE KEY: the number after KEY= in LINE (empty when absent).
field() { sed -n "s/.*[ :]$2=\([0-9][0-9]*\).*/\1/p" <<< "$1"; }

KINDS="cpuid io rdmsr wrmsr vmcall hlt"
total_exits=0 total_ticks=0 total_uncontrolled=0
declare -A cpu_ticks=() cpu_vms=()
while read -r vm pin n mix; do
    [ "$pin" = "-" ] && where="placed by Keel" || where="pinned to CPU $pin"
    echo "VM $vm: n=$n mix=$mix, $where"
    # Placement: a pinned VM runs on its CPU, so all its output comes from there; the
    # others start where Keel places them and may move (vmm/sched.c).
    cpu=$(sed -n "s/.*VM $vm: .* on CPU \([0-9]*\)\$/\1/p" "$log" | head -1)
    if [ -z "$cpu" ]; then
        fail "$vm: no placement line"
        continue
    fi
    [ "$pin" = "-" ] || { [ "$cpu" = "$pin" ] && echo "  ok: $vm on its CPU $pin" || fail "$vm on CPU $cpu, pinned to $pin"; }
    if [ "$pin" != "-" ] && grep -a -E "^\[cpu[0-9]+\] $vm: " "$log" | grep -a -q -v -E "^\[cpu$cpu\] "; then
        fail "$vm printed from a CPU other than $cpu"
    fi
    cpu_vms[$cpu]="${cpu_vms[$cpu]:-}$vm "

    # What the mix alone must have made: n times each letter's count.
    declare -A want=()
    for k in $KINDS; do want[$k]=0; done
    for ((i = 0; i < ${#mix}; i++)); do
        case ${mix:i:1} in
        c) want[cpuid]=$((want[cpuid] + n)) ;;
        o | i) want[io]=$((want[io] + n)) ;;
        r) want[rdmsr]=$((want[rdmsr] + n)) ;;
        w) want[wrmsr]=$((want[wrmsr] + n)) ;;
        v) want[vmcall]=$((want[vmcall] + n)) ;;
        h) want[hlt]=$((want[hlt] + n)) ;;
        esac
    done
    mixline=$(grep -a -m1 -E "\] $vm: storm: mix done: " "$log")
    totline=$(grep -a -m1 -E "\] $vm: storm: exits " "$log")
    if [ -z "$mixline" ] || [ -z "$totline" ]; then
        fail "$vm: the guest did not print its counts"
        continue
    fi
    [ "$(field "$mixline" mismatches)" = 0 ] && echo "  ok: $vm: every exit returned the right result" ||
        fail "$vm: $(field "$mixline" mismatches) exits returned a wrong result"
    expect "$log" "VM $vm: exit code 0 \(0x0\)" "$vm exits with code 0"

    # Keel's count per reason: the report may wrap onto several lines.
    declare -A keel=()
    while read -r reason count; do
        keel[$reason]=$count
    done < <(grep -a -E "VM $vm: exits by reason: " "$log" | sed 's/.*exits by reason: //' | tr ',' '\n' |
        awk 'NF == 2 { print $1, $2 }')
    reported=$(sed -n "s/.*VM $vm: report: \([0-9]*\) exits,.*/\1/p" "$log" | head -1)
    guest_ticks=$(sed -n "s/.*VM $vm: report: .* guest time \([0-9]*\) TSC ticks, time in Keel \([0-9]*\) TSC.*/\1 \2/p" "$log" | head -1)
    sum=0
    for r in "${!keel[@]}"; do sum=$((sum + keel[$r])); done
    [ -n "$reported" ] && [ "$reported" -eq "$sum" ] && echo "  ok: $vm: report total $reported is the sum of the reasons" ||
        fail "$vm: report total '${reported:-none}' but the reasons sum to $sum"

    declare -A reason_of=([cpuid]=CPUID [io]=IO_INSTRUCTION [rdmsr]=RDMSR [wrmsr]=WRMSR [vmcall]=VMCALL [hlt]=HLT)
    controlled=0 details="" bad=0
    for k in $KINDS; do
        mixed=$(field "$mixline" "$k") guest=$(field "$totline" "$k") got=${keel[${reason_of[$k]}]:-0}
        if [ -z "$mixed" ] || [ -z "$guest" ]; then
            fail "$vm: the guest printed no $k count"
            bad=1
            continue
        fi
        [ "$mixed" = "${want[$k]}" ] || { fail "$vm: the guest's mix made $k=$mixed, n x mix gives ${want[$k]}"; bad=1; }
        extra=$((guest - mixed))
        { [ "$extra" -ge 0 ] && [ "$extra" -le 1000 ]; } ||
            { fail "$vm: $k: start-up and output account for $extra exits, expected 0..1000"; bad=1; }
        [ "$got" = "$guest" ] || { fail "$vm: Keel counted ${reason_of[$k]} $got, the guest made $guest (mix $mixed + $extra)"; bad=1; }
        controlled=$((controlled + got))
        details+=" $k=$got"
        unset "keel[${reason_of[$k]}]"
    done
    [ $bad -eq 0 ] && echo "  ok: $vm: Keel's counts equal the guest's (mix = n x mix):$details"
    uncontrolled=0 others=""
    for r in "${!keel[@]}"; do
        case $r in
        PREEMPTION_TIMER | EXTERNAL_INTERRUPT) uncontrolled=$((uncontrolled + keel[$r])); others+=" $r=${keel[$r]}" ;;
        *) fail "$vm: Keel counted $r ${keel[$r]}, which the guest never does" ;;
        esac
    done
    # The guest cannot know when it is preempted or interrupted; a storm that made them
    # a sizeable share of its exits would mean Keel is busy with something else.
    [ $((uncontrolled * 100)) -le "$controlled" ] && echo "  ok: $vm: uncontrolled exits bounded:${others:- none}" ||
        fail "$vm: $uncontrolled uncontrolled exits (${others# }) exceed 1% of $controlled"
    [ -n "$guest_ticks" ] && echo "  $vm on CPU $cpu: $sum exits, guest time ${guest_ticks% *} ticks, time in Keel ${guest_ticks#* } ticks," \
        "mix $(field "$mixline" ticks) ticks from start to end"
    total_exits=$((total_exits + sum))
    total_uncontrolled=$((total_uncontrolled + uncontrolled))
    if [ -n "$guest_ticks" ]; then
        t=$(( ${guest_ticks% *} + ${guest_ticks#* } ))
        total_ticks=$((total_ticks + t))
        cpu_ticks[$cpu]=$(( ${cpu_ticks[$cpu]:-0} + t ))
    fi
    unset want keel reason_of
done <<< "$vms"

for c in 0 1 2 3; do
    [ -n "${cpu_vms[$c]:-}" ] && echo "  ok: CPU $c ran ${cpu_vms[$c]}(${cpu_ticks[$c]:-0} ticks in guests and in Keel)" ||
        fail "CPU $c ran no VM"
done
expect "$log" "Keel: all $nvms VMs have stopped" "all $nvms VMs stopped"
expect "$log" "powering off" "Keel powers off by itself"
reject "$log" "storm: FAIL" "no guest check failed"
reject "$log" "unexpected exception" "no unexpected exception in a guest"
reject "$log" "EXCEPTION|PANIC|KEEL BUG" "no exception, panic or Keel bug"

busiest=0
for c in "${!cpu_ticks[@]}"; do [ "${cpu_ticks[$c]}" -gt "$busiest" ] && busiest=${cpu_ticks[$c]}; done
echo "STORM: $total_exits exits in $nvms VMs on 4 CPUs ($total_uncontrolled of them preemption timer or external interrupts), Bochs wall time ${wall}s"
if [ "$total_exits" -gt 0 ]; then
    echo "STORM: $total_ticks Bochs ticks in guests and in Keel over all CPUs, $((total_ticks / total_exits)) per exit;" \
        "busiest CPU $busiest ticks; $(awk -v e="$total_exits" -v w="$wall" 'BEGIN{printf "%.0f", e/w}') exits per wall second"
fi
[ -n "${STORM_LOG:-}" ] && cp "$log" "$STORM_LOG"
finish "$log"
