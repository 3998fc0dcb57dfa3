/* Privileged instructions that always exit and have a simple answer. */
#include "vmm/exit_dispatch.h"
#include "arch/x86/cpu.h"
#include "arch/x86/vmcs.h"

#define RFLAGS_IF_BIT BIT(9)
#define XCR0_X87 BIT(0)
#define XCR0_SSE BIT(1)
#define XCR0_AVX BIT(2)

enum exit_action handle_hlt(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* Nothing can ever wake a guest that halts with interrupts off: Keel delivers no
     * interrupts to guests yet, so this is the guest saying it is done. */
    if (!(vmcs_readnat(VMCS_GUEST_RFLAGS) & RFLAGS_IF_BIT)) {
        vm_stop(v->vm, "halted with interrupts disabled (HLT at rip 0x%lx)", vmcs_readnat(VMCS_GUEST_RIP));
        return EXIT_STOPPED;
    }
    vcpu_skip_instruction(v);
    return EXIT_YIELD;
}

enum exit_action handle_invd(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* INVD would drop other guests' dirty lines too; WBINVD keeps them and is what a
     * guest can observe anyway. */
    wbinvd();
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}

enum exit_action handle_wbinvd(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    wbinvd();
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}

enum exit_action handle_xsetbv(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    uint64_t val = ((uint64_t)(uint32_t)v->regs.rdx << 32) | (uint32_t)v->regs.rax;
    struct cpuid_regs d = cpuid(0xd, 0);
    uint64_t supported = ((uint64_t)d.edx << 32) | d.eax;
    bool valid = (uint32_t)v->regs.rcx == 0 && vcpu_guest_cpl() == 0 && (val & XCR0_X87) &&
                 !(val & ~supported) && (!(val & XCR0_AVX) || (val & XCR0_SSE)) &&
                 (vcpu_guest_cr4() & BIT(18)) && (read_cr4() & BIT(18));
    if (!valid) {
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    v->xcr0 = val;
    __asm__ volatile("xsetbv" ::"c"(0), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)));
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}

enum exit_action handle_monitor_mwait(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* CPUID hides MONITOR/MWAIT: a guest must not park a physical CPU Keel schedules
     * on, so it gets what such a CPU gives, #UD. */
    vcpu_inject_ud(v);
    return EXIT_RESUME;
}

enum exit_action handle_vmx_instruction(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* The guest was told (CPUID) there is no VMX: behave like such a CPU. */
    vcpu_inject_ud(v);
    return EXIT_RESUME;
}
