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

/* Each function below reads its arguments and writes its result itself, so that the
 * dispatcher is a bounds check and a tail call, with no frame: 32-bit guests pass 32-bit
 * values (the upper halves may hold anything) and get a 32-bit result. */
static inline uint64_t hc_arg(uint64_t reg, bool wide)
{
    return wide ? reg : (uint32_t)reg;
}

static inline enum exit_action hc_return(struct vcpu *v, bool wide, int64_t ret)
{
    v->arch.regs.rax = wide ? (uint64_t)ret : (uint32_t)ret;
    return EXIT_NEXT;
}

static inline __attribute__((always_inline)) enum exit_action hc_einval(struct vcpu *v, bool wide)
{
    return hc_return(v, wide, -(int64_t)KEEL_EINVAL);
}

static inline __attribute__((always_inline)) enum exit_action hc_console(struct vcpu *v, bool wide)
{
    const struct guest_regs *r = &v->arch.regs;
    return hc_return(v, wide, hc_console_write(v, hc_arg(r->rbx, wide), hc_arg(r->rcx, wide)));
}

static __attribute__((noinline)) enum exit_action hc_vm_info_out(struct vcpu *v, bool wide, uint64_t gpa)
{
    void *out = vm_gpa_map(v->vm, gpa, sizeof(struct keel_vm_info));
    return hc_return(v, wide, out ? vm_info_fill(v, out) : -(int64_t)KEEL_EFAULT);
}

static inline __attribute__((always_inline)) enum exit_action hc_vm_info(struct vcpu *v, bool wide)
{
    const struct guest_regs *r = &v->arch.regs;
    if (hc_arg(r->rcx, wide) < sizeof(struct keel_vm_info))
        return hc_einval(v, wide);
    return hc_vm_info_out(v, wide, hc_arg(r->rbx, wide));
}

static inline __attribute__((always_inline)) enum exit_action hc_yield(struct vcpu *v, bool wide)
{
    (void)wide;
    v->arch.regs.rax = 0;
    return EXIT_NEXT_YIELD;
}

static inline __attribute__((always_inline)) enum exit_action hc_exit(struct vcpu *v, bool wide)
{
    vm_stop_with_code(v->vm, (uint32_t)hc_arg(v->arch.regs.rbx, wide), "exit hypercall");
    return EXIT_STOPPED;
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

static inline __attribute__((always_inline)) enum exit_action hc_stats_call(struct vcpu *v, bool wide)
{
    return hc_return(v, wide, hc_stats(v, hc_arg(v->arch.regs.rbx, wide)));
}

/* By function number, 1 to KEEL_HC_STATS; 0 and the numbers above are unknown
 * (hc_einval). */
#define KEEL_HYPERCALL_TABLE(X)             \
    X(KEEL_HC_CONSOLE_WRITE, hc_console)    \
    X(KEEL_HC_VM_INFO, hc_vm_info)          \
    X(KEEL_HC_YIELD, hc_yield)              \
    X(KEEL_HC_EXIT, hc_exit)                \
    X(KEEL_HC_STATS, hc_stats_call)

STATIC_ASSERT(KEEL_HC_STATS < VCPU_HYPERCALL_SLOTS, "every hypercall has a slot");

/* Each function once per width, the width a constant in each. */
#define HC_BY_WIDTH(num, fn)                                                       \
    static enum exit_action fn##_narrow(struct vcpu *v) { return fn(v, false); } \
    static enum exit_action fn##_wide(struct vcpu *v) { return fn(v, true); }
HC_BY_WIDTH(0, hc_einval)
KEEL_HYPERCALL_TABLE(HC_BY_WIDTH)
#undef HC_BY_WIDTH

#define HC_SLOT_NARROW(num, fn) [num] = fn##_narrow,
#define HC_SLOT_WIDE(num, fn) [num] = fn##_wide,
const struct vcpu_hypercalls keel_hypercalls = {
    .narrow = {[0] = hc_einval_narrow, KEEL_HYPERCALL_TABLE(HC_SLOT_NARROW)
               [KEEL_HC_STATS + 1 ... VCPU_HYPERCALL_SLOTS - 1] = hc_einval_narrow},
    .wide = {[0] = hc_einval_wide, KEEL_HYPERCALL_TABLE(HC_SLOT_WIDE)
             [KEEL_HC_STATS + 1 ... VCPU_HYPERCALL_SLOTS - 1] = hc_einval_wide},
};
#undef HC_SLOT_NARROW
#undef HC_SLOT_WIDE

static __attribute__((noinline, cold)) enum exit_action hc_refused(struct vcpu *v, bool wide, uint8_t cpl)
{
    return hc_return(v, wide, -(int64_t)(cpl ? KEEL_EPERM : KEEL_EINVAL));
}

enum exit_action exit_hypercall(struct vcpu *v, struct exit_info *e)
{
    /* A 64-bit guest's whole RAX is the function number: 0x100000004 is not EXIT. */
    bool wide = e->hc.wide;
    uint64_t fn = hc_arg(v->arch.regs.rax, wide);
    if (__builtin_expect(e->hc.cpl != 0 || fn >= VCPU_HYPERCALL_SLOTS, 0))
        return hc_refused(v, wide, e->hc.cpl);
    return (wide ? keel_hypercalls.wide : keel_hypercalls.narrow)[fn](v);
}
