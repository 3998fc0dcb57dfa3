/* The operator console (monitor.h): the prefix key, the command line and its commands. */
#include "vmm/monitor.h"
#include "vmm/vm.h"
#include "vmm/vcpu.h"
#include "vmm/sched.h"
#include "vmm/stats.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/histogram.h"
#include "arch/x86/tsc.h"

#define LINE_MAX 80

static struct {
    bool prefix; /* Ctrl-A seen: the next key is the monitor's */
    bool open;   /* typed lines are commands */
    struct vm *attached;
    bool hinted; /* said once that nothing is attached */
    uint64_t dropped; /* bytes the attached VM's FIFO had no room for */
    uint32_t len;
    char line[LINE_MAX];
} mon;

/* A merged latency for the statistics table: one at a time (commands run one at a
 * time), too big for a stack frame. */
static struct latency merged;

static uint64_t us_of(uint64_t ticks)
{
    return tsc_calibrated() ? tsc_to_ns(ticks) / 1000 : 0;
}

static struct vm *find_vm(const char *name)
{
    for (uint32_t i = 0; i < vm_count; i++)
        if (strcmp(vms[i]->name, name) == 0)
            return vms[i];
    /* Or its number, as list shows it. */
    uint32_t id = 0;
    const char *p = name;
    for (; *p >= '0' && *p <= '9' && id < MAX_VMS; p++)
        id = id * 10 + (uint32_t)(*p - '0');
    if (p != name && !*p)
        for (uint32_t i = 0; i < vm_count; i++)
            if (vms[i]->id == id)
                return vms[i];
    return NULL;
}

static const char *vm_state_name(const struct vm *vm)
{
    if (vm->state == VM_STOPPED)
        return "stopped";
    if (vm->paused)
        return "paused";
    return vm->state == VM_RUNNING ? "running" : "created";
}

static const char *vcpu_state_name(const struct vcpu *v)
{
    if (v->vm->state == VM_STOPPED)
        return "stopped";
    if (v->vm->paused)
        return "paused";
    if (v->activity == VCPU_WAIT_SIPI)
        return "waiting for SIPI";
    if (v->halted)
        return "halted";
    return v->arch.loaded_cpu >= 0 ? "running" : "runnable";
}

static uint64_t vcpu_exits(const struct vcpu *v)
{
    uint64_t n = 0;
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        n += v->arch.stats.exits[r];
    return n;
}

static void cmd_help(void)
{
    kprintf("MONITOR: commands (a VM is named as list shows it, or by its number):\n");
    kprintf("MONITOR:   list              VMs and vCPUs: state, CPU, exits, guest and Keel time\n");
    kprintf("MONITOR:   stats VM          the VM's exits by reason: count and Keel ticks per exit\n");
    kprintf("MONITOR:   json VM           its statistics as JSON Lines (KEEL-STATS lines, as at its stop)\n");
    kprintf("MONITOR:   reset VM          starts its exit counts and durations afresh\n");
    kprintf("MONITOR:   pause VM          no vCPU of it runs (from the end of its current slice)\n");
    kprintf("MONITOR:   resume VM         runs it again\n");
    kprintf("MONITOR:   stop VM           stops it for good, with its report\n");
    kprintf("MONITOR:   attach VM         typed input goes to the VM's UART; closes the monitor\n");
    kprintf("MONITOR:   detach            typed input goes nowhere\n");
    kprintf("MONITOR:   close             back to the attached VM (as Ctrl-A c)\n");
}

static void cmd_list(void)
{
    kprintf("MONITOR: %u VMs, %u running; input %s%s (%lu typed bytes dropped: the VM's UART input queue was full)\n",
            vm_count, vms_running(), mon.attached ? "attached to " : "not attached",
            mon.attached ? mon.attached->name : "", mon.dropped);
    for (uint32_t i = 0; i < vm_count; i++) {
        const struct vm *vm = vms[i];
        struct vcpu_stats sum;
        vm_sum_stats(vm, &sum);
        uint64_t exits = 0;
        for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
            exits += sum.exits[r];
        kprintf("MONITOR: vm %u %s: %s, %u vCPU%s, %lu MiB, %lu exits, guest %lu us, Keel %lu us\n", vm->id,
                vm->name, vm_state_name(vm), vm->vcpu_count, vm->vcpu_count == 1 ? "" : "s", vm->ram_size >> 20,
                exits, us_of(sum.guest_tsc), us_of(sum.host_tsc));
        for (uint32_t j = 0; j < vm->vcpu_count; j++) {
            const struct vcpu *v = vm->vcpus[j];
            int32_t cpu = v->arch.loaded_cpu >= 0 ? v->arch.loaded_cpu : v->sched.cpu;
            kprintf("MONITOR:   vcpu %u: %s, CPU %d, %lu exits, guest %lu us, Keel %lu us\n", v->id,
                    vcpu_state_name(v), cpu, vcpu_exits(v), us_of(v->arch.stats.guest_tsc),
                    us_of(v->arch.stats.host_tsc));
        }
    }
}

/* exit_split: the reason's other parts of the round trip, as means over its vCPUs. */
static void stats_split_row(const struct vm *vm, uint32_t r)
{
    uint64_t n = 0, guest = 0, hw_exit = 0;
    for (uint32_t j = 0; j < vm->vcpu_count; j++) {
        const struct vcpu_exit_split *s = vm->vcpus[j]->arch.split;
        if (!s)
            return;
        n += hist_count(&s->guest[r].hist);
        guest += s->guest[r].total;
        hw_exit += s->hw_exit[r].total;
    }
    if (n)
        kprintf("MONITOR: %s: %-24s %10lu   split per exit: guest (entry and guest) %lu, hw_exit %lu ticks\n",
                vm->name, "", n, guest / n, hw_exit / n);
}

static void cmd_stats(struct vm *vm)
{
    struct vcpu_stats sum;
    vm_sum_stats(vm, &sum);
    kprintf("MONITOR: %s: %-24s %10s %12s %8s %8s %8s %8s %8s\n", vm->name, "exit reason", "count", "ticks",
            "mean", "min", "p50", "p99", "max");
    uint64_t total = 0;
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++) {
        if (!sum.exits[r])
            continue;
        total += sum.exits[r];
        latency_clear(&merged);
        for (uint32_t j = 0; j < vm->vcpu_count; j++)
            latency_merge(&merged, &vm->vcpus[j]->arch.latency.exit[r]);
        uint64_t timed = hist_count(&merged.hist);
        if (!timed) {
            /* Counted but not timed (statistics built out, or reset since). */
            kprintf("MONITOR: %s: %-24s %10lu %12s %8s %8s %8s %8s %8s\n", vm->name, vcpu_backend->exit_reason_name(r),
                    sum.exits[r], "-", "-", "-", "-", "-", "-");
            continue;
        }
        kprintf("MONITOR: %s: %-24s %10lu %12lu %8lu %8u %8u %8u %8u\n", vm->name, vcpu_backend->exit_reason_name(r),
                sum.exits[r], merged.total, merged.total / timed, merged.min, latency_percentile(&merged, 5000),
                latency_percentile(&merged, 9900), merged.max);
        stats_split_row(vm, r);
    }
    kprintf("MONITOR: %s: %lu exits, guest %lu TSC ticks, Keel %lu TSC ticks, %u vCPU%s\n", vm->name, total,
            sum.guest_tsc, sum.host_tsc, vm->vcpu_count, vm->vcpu_count == 1 ? "" : "s");
}

/* A vCPU in guest mode elsewhere leaves it at once and finds its VM paused (or, after
 * a resume, an idle CPU looks at its queue again). */
static void kick_vcpus(const struct vm *vm)
{
    for (uint32_t j = 0; j < vm->vcpu_count; j++) {
        const struct vcpu *v = vm->vcpus[j];
        int32_t cpu = v->arch.loaded_cpu >= 0 ? v->arch.loaded_cpu : v->sched.cpu;
        if (cpu >= 0)
            sched_kick_cpu((uint32_t)cpu);
    }
}

static void cmd_pause(struct vm *vm, bool pause)
{
    if (vm->state == VM_STOPPED) {
        kprintf("MONITOR: %s has stopped: %s\n", vm->name, vm->stop_reason);
        return;
    }
    if (vm->paused == pause) {
        kprintf("MONITOR: %s is %s already\n", vm->name, pause ? "paused" : "running");
        return;
    }
    __atomic_store_n(&vm->paused, pause, __ATOMIC_RELEASE);
    kick_vcpus(vm);
    kprintf("MONITOR: %s %s\n", vm->name, pause ? "paused" : "resumed");
}

static void cmd_attach(struct vm *vm)
{
    mon.attached = vm;
    mon.hinted = false;
    mon.open = false;
    kprintf("MONITOR: input goes to %s's UART now; Ctrl-A c opens the monitor again\n", vm->name);
}

static void run_command(char *line)
{
    char *cmd = line;
    while (*cmd == ' ')
        cmd++;
    char *arg = cmd;
    while (*arg && *arg != ' ')
        arg++;
    if (*arg)
        *arg++ = 0;
    while (*arg == ' ')
        arg++;
    char *end = arg + strlen(arg);
    while (end > arg && end[-1] == ' ')
        *--end = 0;
    if (!*cmd)
        return;
    kprintf("MONITOR: > %s%s%s\n", cmd, *arg ? " " : "", arg);

    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "?") == 0) {
        cmd_help();
        return;
    }
    if (strcmp(cmd, "list") == 0) {
        cmd_list();
        return;
    }
    if (strcmp(cmd, "detach") == 0) {
        mon.attached = NULL;
        kprintf("MONITOR: input is not attached to any VM\n");
        return;
    }
    if (strcmp(cmd, "close") == 0) {
        mon.open = false;
        kprintf("MONITOR: closed; input goes to %s\n", mon.attached ? mon.attached->name : "no VM");
        return;
    }
    bool needs_vm = strcmp(cmd, "stats") == 0 || strcmp(cmd, "json") == 0 || strcmp(cmd, "reset") == 0 || strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0 ||
                    strcmp(cmd, "stop") == 0 || strcmp(cmd, "attach") == 0;
    if (!needs_vm) {
        kprintf("MONITOR: unknown command '%s' ('help' lists them)\n", cmd);
        return;
    }
    if (!*arg) {
        kprintf("MONITOR: %s needs a VM: its name or number\n", cmd);
        return;
    }
    struct vm *vm = find_vm(arg);
    if (!vm) {
        kprintf("MONITOR: no VM '%s' ('list' shows them)\n", arg);
        return;
    }
    if (strcmp(cmd, "stats") == 0) {
        cmd_stats(vm);
    } else if (strcmp(cmd, "json") == 0) {
        uint32_t lines = vm_stats_dump(vm, STATS_WHY_MONITOR);
        kprintf("MONITOR: %s: %u KEEL-STATS lines\n", vm->name, lines);
    } else if (strcmp(cmd, "reset") == 0) {
        vm_stats_reset(vm);
        kprintf("MONITOR: %s: exit statistics reset\n", vm->name);
    } else if (strcmp(cmd, "pause") == 0) {
        cmd_pause(vm, true);
    } else if (strcmp(cmd, "resume") == 0) {
        cmd_pause(vm, false);
    } else if (strcmp(cmd, "attach") == 0) {
        cmd_attach(vm);
    } else if (vm->state == VM_STOPPED) {
        kprintf("MONITOR: %s has stopped already: %s\n", vm->name, vm->stop_reason);
    } else {
        vm_stop(vm, "stopped from the monitor");
    }
}

static void to_guest(char c)
{
    struct vm *vm = mon.attached;
    if (!vm || vm->state == VM_STOPPED) {
        if ((c == '\r' || c == '\n') && !mon.hinted) {
            kprintf("MONITOR: input goes to no VM: Ctrl-A c opens the monitor (attach VM)\n");
            mon.hinted = true;
        }
        return;
    }
    if (!uart16550_receive(&vm->com1, (uint8_t)c))
        mon.dropped++;
}

static void prefix_key(char c)
{
    switch (c) {
    case 'c':
    case 'C':
        mon.open = !mon.open;
        mon.len = 0;
        if (mon.open)
            kprintf("MONITOR: Keel monitor ('help' lists the commands, Ctrl-A c or close leaves it)\n");
        else
            kprintf("MONITOR: closed; input goes to %s\n", mon.attached ? mon.attached->name : "no VM");
        break;
    case MONITOR_PREFIX_KEY:
        if (!mon.open)
            to_guest(c);
        break;
    default:
        kprintf("MONITOR: keys: Ctrl-A c opens or closes the monitor, Ctrl-A Ctrl-A sends Ctrl-A to the "
                "attached VM\n");
        break;
    }
}

static void edit_line(char c)
{
    if (c == '\r' || c == '\n') {
        mon.line[mon.len] = 0;
        mon.len = 0;
        run_command(mon.line);
    } else if (c == '\b' || c == 0x7f) {
        if (mon.len)
            mon.len--;
    } else if (c >= 0x20 && c < 0x7f && mon.len < LINE_MAX - 1) {
        mon.line[mon.len++] = c;
    }
}

void monitor_input(char c)
{
    if (mon.prefix) {
        mon.prefix = false;
        prefix_key(c);
    } else if (c == MONITOR_PREFIX_KEY) {
        mon.prefix = true;
    } else if (mon.open) {
        edit_line(c);
    } else {
        to_guest(c);
    }
}

void monitor_start(void)
{
    console_set_input(monitor_input);
}
