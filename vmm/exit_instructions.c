/* Privileged instructions that always exit and have a simple answer. */
#include "vmm/exit_dispatch.h"
#include "arch/x86/cpu.h"
#include "arch/x86/extable.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/xsave.h"
#include "vmm/lib/console.h"

#ifdef KEEL_HOST_TEST
/* XSETBV faults in a host process: host tests play the CPU instead. */
bool host_test_xsetbv(uint32_t idx, uint64_t val);
#define xsetbv_safe host_test_xsetbv
#endif

#define RFLAGS_IF_BIT BIT(9)

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

/* The guest's XCR0 must be live while it runs, so Keel executes XSETBV for it: every
 * rule the CPU would check is checked first, and the _safe form turns a rule this check
 * missed into the guest's #GP rather than a fault in Keel. */
enum exit_action handle_xsetbv(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    uint64_t val = ((uint64_t)(uint32_t)v->regs.rdx << 32) | (uint32_t)v->regs.rax;
    if (!(vcpu_guest_cr4(v) & CR4_OSXSAVE)) {
        vcpu_inject_ud(v);
        return EXIT_RESUME;
    }
    if ((uint32_t)v->regs.rcx != 0 || vcpu_guest_cpl(v) != 0 || !xcr0_valid(val, vmm_xcr0_supported())) {
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    if (!xsetbv_safe(0, val)) {
        kprintf("KEEL BUG: VM %s: XSETBV 0x%lx passed Keel's XCR0 checks but faulted; the guest gets #GP\n",
                v->vm->name, val);
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    v->xcr0 = val;
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}

enum exit_action handle_rdpmc(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* The counters are the host's and count for every guest; CPUID leaf 0xa offers
     * none, so every counter number is invalid: #GP, as on such a CPU. */
    vcpu_inject_gp(v);
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
