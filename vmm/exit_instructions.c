/* Privileged instructions that always exit and have a simple answer. */
#include "vmm/exit_handlers.h"
#include "arch/x86/cpu.h"
#include "arch/x86/extable.h"
#include "arch/x86/xsave.h"
#include "vmm/lib/console.h"
#include "vmm/dev/platform.h"

#ifdef KEEL_HOST_TEST
/* XSETBV faults in a host process: host tests play the CPU instead. */
bool host_test_xsetbv(uint32_t idx, uint64_t val);
#define xsetbv_safe host_test_xsetbv
#endif

#define RFLAGS_IF_BIT BIT(9)

/* Whether anything could ever end this HLT: a timer of its own or of the VM's devices,
 * or another vCPU that can send it an IPI. */
static bool something_can_wake(struct vcpu *v)
{
    return v->vm->vcpu_count > 1 || vlapic_timer_deadline(&v->lapic) != CLOCK_NEVER ||
           __atomic_load_n(&v->vm->pc.next_deadline, __ATOMIC_ACQUIRE) != CLOCK_NEVER;
}

/* HLT blocks the vCPU until an interrupt (or NMI, INIT, SIPI) is pending for it; the
 * vCPU leaves the CPU meanwhile. Two cases need a decision a real CPU does not make:
 * - interrupts off in a VM with one vCPU: nothing but an NMI could end it, and Keel
 *   sends none, so this is the guest saying it is done; with several vCPUs it is an AP
 *   parked until INIT;
 * - interrupts on but nothing armed that could ever end it: the vCPU yields its slice
 *   and goes on, as Keel did before it had a platform, rather than wedge the VM. */
enum exit_action exit_hlt(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    bool intr_on = vcpu_get(v, VCPU_REG_RFLAGS) & RFLAGS_IF_BIT;
    if (!intr_on && v->vm->vcpu_count == 1) {
        vm_stop(v->vm, "halted with interrupts disabled (HLT at rip 0x%lx)", vcpu_rip(v));
        return EXIT_STOPPED;
    }
    if (intr_on && vlapic_has_event(&v->lapic)) {
        v->arch.recheck = 1;
        return EXIT_NEXT;
    }
    if (intr_on && !something_can_wake(v))
        return EXIT_NEXT_YIELD;
    v->halted = true;
    v->arch.recheck = 1; /* the wake-up time is worked out before it leaves */
    return EXIT_NEXT_YIELD;
}

/* A PAUSE loop (PAUSE-loop exiting): the vCPU spins, most likely on a lock another vCPU
 * holds; that one may be waiting for this very CPU, so the spinner gives it away. PAUSE
 * itself is only a hint: it is stepped over. */
enum exit_action exit_pause(struct vcpu *v, struct exit_info *e)
{
    (void)v;
    (void)e;
    return EXIT_NEXT_YIELD;
}

/* WBINVD, and INVD too: INVD would drop other guests' dirty lines as well; WBINVD keeps
 * them and is what a guest can observe anyway. */
enum exit_action exit_wbinvd(struct vcpu *v, struct exit_info *e)
{
    (void)v;
    (void)e;
    wbinvd();
    return EXIT_NEXT;
}

/* The guest's XCR0 must be live while it runs, so Keel executes XSETBV for it: every
 * rule the CPU would check is checked first, and the _safe form turns a rule this check
 * missed into the guest's #GP rather than a fault in Keel. */
enum exit_action exit_xsetbv(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    uint64_t val = ((uint64_t)(uint32_t)v->arch.regs.rdx << 32) | (uint32_t)v->arch.regs.rax;
    if (!(vcpu_guest_cr4(v) & CR4_OSXSAVE)) {
        vcpu_inject_ud(v);
        return EXIT_RESUME;
    }
    if ((uint32_t)v->arch.regs.rcx != 0 || vcpu_guest_cpl(v) != 0 || !xcr0_valid(val, vcpu_backend->xcr0_supported())) {
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    if (!xsetbv_safe(0, val)) {
        kprintf("KEEL BUG: VM %s: XSETBV 0x%lx passed Keel's XCR0 checks but faulted; the guest gets #GP\n",
                v->vm->name, val);
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    v->arch.xcr0 = val;
    return EXIT_NEXT;
}

enum exit_action exit_rdpmc(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    /* The counters are the host's and count for every guest; CPUID leaf 0xa offers
     * none, so every counter number is invalid: #GP, as on such a CPU. */
    vcpu_inject_gp(v);
    return EXIT_RESUME;
}

/* Instructions CPUID says the guest's CPU lacks: VMX (Keel offers no nested guests)
 * and MONITOR/MWAIT (a guest must not park a physical CPU Keel schedules on). The
 * guest gets what such a CPU gives, #UD. */
enum exit_action exit_undefined(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    vcpu_inject_ud(v);
    return EXIT_RESUME;
}
