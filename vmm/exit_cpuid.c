/* CPUID as the guest sees it: the real CPU, minus what a guest cannot have (VMX, SMX,
 * MONITOR, the performance counters, the speculation-control MSRs Keel does not pass
 * through), plus the hypervisor bit and Keel's own leaves. */
#include "vmm/exit_handlers.h"
#include "vmm/hypercall_abi.h"

#define CPUID1_ECX_MONITOR BIT(3)
#define CPUID1_ECX_VMX BIT(5)
#define CPUID1_ECX_SMX BIT(6)
#define CPUID1_ECX_OSXSAVE BIT(27)
#define CPUID1_ECX_HYPERVISOR BIT(31)
#define CR4_OSXSAVE BIT(18)
/* CPUID.7.0:EDX: IBRS/IBPB, STIBP, L1D_FLUSH, ARCH_CAPABILITIES, CORE_CAPABILITIES,
 * SSBD. Each names an MSR a guest WRMSR or RDMSR gets #GP for (vmm/guest-state.md). */
#define CPUID7_EDX_SPEC_CTRL_MSRS (BIT(26) | BIT(27) | BIT(28) | BIT(29) | BIT(30) | BIT(31))
#define CPUID_LEAF_PMU 0xa

#ifdef KEEL_HOST_TEST
/* Host tests play the CPU, so the answers (and VMX/hypervisor bits) are known. */
void host_test_cpuid(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d);
#endif

static uint32_t leaf1_ecx(struct vcpu *v, uint32_t ecx)
{
    ecx &= ~(CPUID1_ECX_VMX | CPUID1_ECX_SMX | CPUID1_ECX_MONITOR);
    ecx |= CPUID1_ECX_HYPERVISOR;
    /* OSXSAVE mirrors CR4 of whoever executes CPUID: here Keel, so recompute it. */
    ecx &= ~CPUID1_ECX_OSXSAVE;
    if (vcpu_guest_cr4(v) & CR4_OSXSAVE)
        ecx |= CPUID1_ECX_OSXSAVE;
    return ecx;
}

static __attribute__((noinline)) void keel_leaf(struct guest_regs *r, uint32_t leaf)
{
    r->rax = leaf == KEEL_CPUID_BASE ? KEEL_CPUID_MAX : leaf == KEEL_CPUID_ABI ? KEEL_ABI_VERSION : 0;
    r->rbx = leaf == KEEL_CPUID_BASE ? KEEL_SIGNATURE_EBX : 0;
    r->rcx = leaf == KEEL_CPUID_BASE ? KEEL_SIGNATURE_ECX : 0;
    r->rdx = leaf == KEEL_CPUID_BASE ? KEEL_SIGNATURE_EDX : 0;
}

static inline void hardware_cpuid(struct guest_regs *r, uint32_t leaf, uint32_t subleaf)
{
    uint32_t a = leaf, b, c = subleaf, d;
#ifdef KEEL_HOST_TEST
    host_test_cpuid(&a, &b, &c, &d);
#else
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
#endif
    r->rax = a;
    r->rbx = b;
    r->rcx = c;
    r->rdx = d;
}

/* Leaves 1 to 0xa, some of which Keel edits. Kept out of line so the common leaves need
 * no saved registers. */
static __attribute__((noinline)) void low_leaf(struct vcpu *v, uint32_t leaf, uint32_t subleaf)
{
    struct guest_regs *r = &v->arch.regs;
    hardware_cpuid(r, leaf, subleaf);
    if (leaf == 1) {
        r->rcx = leaf1_ecx(v, (uint32_t)r->rcx);
    } else if (leaf == 7 && subleaf == 0) {
        r->rdx &= ~(uint64_t)CPUID7_EDX_SPEC_CTRL_MSRS;
    } else if (leaf == CPUID_LEAF_PMU) {
        /* No counters: RDPMC exits with #GP, so leaf 0xa must not promise any. */
        r->rax = r->rbx = r->rcx = r->rdx = 0;
    }
}

enum exit_action exit_cpuid(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    struct guest_regs *r = &v->arch.regs;
    uint32_t leaf = (uint32_t)r->rax;
    if (leaf - KEEL_CPUID_BASE <= 0xff)
        keel_leaf(r, leaf);
    else if (__builtin_expect(leaf - 1 < CPUID_LEAF_PMU, 0))
        low_leaf(v, leaf, (uint32_t)r->rcx);
    else
        hardware_cpuid(r, leaf, (uint32_t)r->rcx);
    return EXIT_NEXT;
}
