/* CPUID as the guest sees it: the real CPU, minus VMX, plus the hypervisor bit and
 * Keel's own leaves. */
#include "vmm/exit_dispatch.h"
#include "vmm/hypercall_abi.h"
#include "arch/x86/cpu.h"

#define CPUID1_ECX_VMX BIT(5)
#define CPUID1_ECX_OSXSAVE BIT(27)
#define CPUID1_ECX_HYPERVISOR BIT(31)
#define CR4_OSXSAVE BIT(18)

enum exit_action handle_cpuid(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    struct guest_regs *r = &v->regs;
    uint32_t leaf = (uint32_t)r->rax, sub = (uint32_t)r->rcx;
    struct cpuid_regs c;

    if (leaf >= KEEL_CPUID_BASE && leaf <= KEEL_CPUID_BASE + 0xff) {
        c = (struct cpuid_regs){0, 0, 0, 0};
        if (leaf == KEEL_CPUID_BASE)
            c = (struct cpuid_regs){KEEL_CPUID_MAX, KEEL_SIGNATURE_EBX, KEEL_SIGNATURE_ECX, KEEL_SIGNATURE_EDX};
        else if (leaf == KEEL_CPUID_ABI)
            c.eax = KEEL_ABI_VERSION;
    } else {
        c = cpuid(leaf, sub);
        if (leaf == 1) {
            c.ecx &= ~CPUID1_ECX_VMX;
            c.ecx |= CPUID1_ECX_HYPERVISOR;
            /* OSXSAVE mirrors CR4 of whoever executes CPUID: here Keel, so recompute it. */
            c.ecx &= ~CPUID1_ECX_OSXSAVE;
            if (vcpu_guest_cr4() & CR4_OSXSAVE)
                c.ecx |= CPUID1_ECX_OSXSAVE;
        }
    }
    r->rax = c.eax;
    r->rbx = c.ebx;
    r->rcx = c.ecx;
    r->rdx = c.edx;
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}
