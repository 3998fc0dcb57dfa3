/* VMCALL: Keel's hypercall interface, documented in vmm/hypercall_abi.h and
 * docs/hypercalls.md. Every guest-supplied address is checked against the VM's RAM
 * before Keel touches it. */
#include "vmm/exit_handlers.h"
#include "vmm/hypercall_abi.h"
#include "vmm/stats.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"
#include "arch/x86/cpu.h"

/* Each function out of line: the dispatcher then needs no saved registers. */
static __attribute__((noinline)) int64_t hc_console_write(struct vcpu *v, uint64_t gpa, uint64_t len)
{
    if (len > KEEL_CONSOLE_MAX)
        return -(int64_t)KEEL_EINVAL;
    const char *buf = vm_gpa_map(v->vm, gpa, len);
    if (!buf)
        return -(int64_t)KEEL_EFAULT;
    vm_console_write(&v->vm->console, buf, len);
    return (int64_t)len;
}

/* Out of line: its frame (the structure, the scheduler's totals) would otherwise cost
 * every hypercall the registers it saves. */
static __attribute__((noinline)) int64_t vm_info_fill(struct vcpu *v, void *out)
{
    struct keel_vm_info info;
    memset(&info, 0, sizeof(info));
    info.abi_version = KEEL_ABI_VERSION;
    info.vm_id = v->vm->id;
    info.vcpu_id = v->id;
    info.host_cpu = this_cpu()->cpu_id;
    info.memory_bytes = v->vm->ram_size;
    info.tsc_hz = tsc_calibrated() ? tsc_hz() : 0;
    kstrlcpy(info.name, v->vm->name, sizeof(info.name));
    struct sched_totals t = sched_vcpu_totals(&v->sched, rdtsc());
    info.weight = v->sched.weight;
    info.migrations = t.migrations;
    info.run_tsc = t.run_tsc;
    info.wait_tsc = t.wait_tsc;
    info.blocked_tsc = t.blocked_tsc;
    memcpy(out, &info, sizeof(info));
    return 0;
}

static int64_t hc_vm_info(struct vcpu *v, uint64_t gpa, uint64_t size)
{
    if (size < sizeof(struct keel_vm_info))
        return -(int64_t)KEEL_EINVAL;
    void *out = vm_gpa_map(v->vm, gpa, sizeof(struct keel_vm_info));
    if (!out)
        return -(int64_t)KEEL_EFAULT;
    return vm_info_fill(v, out);
}

static __attribute__((noinline)) int64_t hc_stats(struct vcpu *v, uint64_t flags)
{
    if (!flags || (flags & ~(uint64_t)(KEEL_STATS_PRINT | KEEL_STATS_RESET)))
        return -(int64_t)KEEL_EINVAL;
    int64_t lines = 0;
    if (flags & KEEL_STATS_PRINT)
        lines = vm_stats_dump(v->vm, STATS_WHY_HYPERCALL);
    if (flags & KEEL_STATS_RESET)
        vm_stats_reset(v->vm);
    return lines;
}

enum exit_action exit_hypercall(struct vcpu *v, struct exit_info *e)
{
    struct guest_regs *r = &v->arch.regs;
    /* 32-bit guests pass 32-bit values; the upper halves may hold anything. A 64-bit
     * guest's whole RAX is the function number: 0x100000004 is not EXIT. */
    bool wide = e->hc.wide;
    uint64_t fn = wide ? r->rax : (uint32_t)r->rax;
    uint64_t a1 = wide ? r->rbx : (uint32_t)r->rbx;
    uint64_t a2 = wide ? r->rcx : (uint32_t)r->rcx;
    int64_t ret;

    if (e->hc.cpl != 0) {
        ret = -(int64_t)KEEL_EPERM;
    } else {
        switch (fn) {
        case KEEL_HC_CONSOLE_WRITE: ret = hc_console_write(v, a1, a2); break;
        case KEEL_HC_VM_INFO: ret = hc_vm_info(v, a1, a2); break;
        case KEEL_HC_STATS: ret = hc_stats(v, a1); break;
        case KEEL_HC_YIELD:
            r->rax = 0;
            return EXIT_NEXT_YIELD;
        case KEEL_HC_EXIT:
            vm_stop_with_code(v->vm, (uint32_t)a1, "exit hypercall");
            return EXIT_STOPPED;
        default: ret = -(int64_t)KEEL_EINVAL; break;
        }
    }
    r->rax = wide ? (uint64_t)ret : (uint32_t)ret;
    return EXIT_NEXT;
}
