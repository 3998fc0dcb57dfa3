/* What a vCPU acts on besides its own instructions: INIT and SIPI, NMIs, interrupts
 * from its local APIC and from the PIC through it, its LAPIC timer and the VM's device
 * timers. The backend runs the EVENTS handler before an entry whenever something may
 * have changed (vcpu_arch.recheck), never on the plain exit path. */
#include "vmm/exit_handlers.h"
#include "vmm/dev/platform.h"
#include "arch/x86/tsc.h"
#include "vmm/lib/console.h"

/* VM time (ns) to the host TSC the backend bounds the guest's run with. */
static uint64_t vm_ns_to_tsc(const struct vm *vm, uint64_t ns)
{
    if (ns == CLOCK_NEVER)
        return UINT64_MAX;
    /* One tick late rather than early: the timer must find the event due. */
    return vm->pc.tsc_at_zero + ns_to_tsc(ns) + 1;
}

/* A vector to inject: the PIC's through the virtual wire, else the LAPIC's. */
static bool inject_one(struct vcpu *v)
{
    struct vlapic *l = &v->lapic;
    if (v->extint_msg || vlapic_extint_pending(l)) {
        struct vm_pc *pc = &v->vm->pc;
        spin_lock(&pc->lock);
        uint8_t vec = pic8259_ack(&pc->pic);
        spin_unlock(&pc->lock);
        /* An ExtINT message is consumed by taking it; the wire's level follows the PIC. */
        v->extint_msg = false;
        vcpu_backend->inject_interrupt(v, vec);
        return true;
    }
    int vec = vlapic_pending_intr(l);
    if (vec < 0)
        return false;
    vcpu_backend->inject_interrupt(v, (uint8_t)vec);
    vlapic_accept_intr(l, (uint8_t)vec);
    return true;
}

static bool interrupt_pending(const struct vcpu *v)
{
    return v->extint_msg || vlapic_extint_pending(&v->lapic) || vlapic_pending_intr(&v->lapic) >= 0;
}

enum exit_action exit_events(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    struct vm *vm = v->vm;
    struct vlapic *l = &v->lapic;
    /* A reset of the VM is under way: this vCPU parks until it is done. */
    if (__builtin_expect(v->reset_gen != __atomic_load_n(&vm->reset_gen, __ATOMIC_ACQUIRE) ||
                             __atomic_load_n(&vm->resetting, __ATOMIC_ACQUIRE), 0)) {
        enum exit_action a = vm_reset_park(v);
        if (a != EXIT_RESUME)
            return a;
    }
    uint32_t ev = vlapic_take_events(l);
    if (ev & VLAPIC_EV_INIT) {
        vcpu_backend->init_vcpu(v);
        v->activity = VCPU_WAIT_SIPI;
        v->halted = false;
        v->nmi_pending = false;
        v->extint_msg = false;
    }
    if ((ev & VLAPIC_EV_SIPI) && v->activity == VCPU_WAIT_SIPI) {
        vcpu_backend->start_at_sipi(v, VLAPIC_EV_SIPI_VECTOR(ev));
        v->activity = VCPU_ACTIVE;
    }
    if (v->activity == VCPU_WAIT_SIPI) {
        v->arch.wake_tsc = UINT64_MAX;
        return EXIT_YIELD; /* INIT-ed: NMIs and interrupts wait too (SDM vol. 3, 10.4.7.3) */
    }
    if (ev & VLAPIC_EV_NMI)
        v->nmi_pending = true;
    if (ev & VLAPIC_EV_EXTINT)
        v->extint_msg = true;

    /* Timers that are due fire now; the next ones bound the guest's run. */
    uint64_t now = clock_now_ns(&vm->pc.clock);
    if (vlapic_timer_deadline(l) <= now)
        vlapic_timer_poll(l);
    uint64_t dev_next = __atomic_load_n(&vm->pc.next_deadline, __ATOMIC_ACQUIRE);
    if (dev_next <= now)
        dev_next = vm_platform_poll(vm);
    uint64_t next = MIN(vlapic_timer_deadline(l), dev_next);
    v->arch.wake_tsc = vm_ns_to_tsc(vm, next);

    if (v->nmi_pending && vcpu_backend->inject_nmi(v)) {
        v->nmi_pending = false;
        v->halted = false;
    }
    bool pending = interrupt_pending(v);
    if (pending && vcpu_backend->can_inject(v)) {
        if (inject_one(v))
            v->halted = false;
        pending = interrupt_pending(v);
    }
    /* Another one waits (or this one could not go in): exit as soon as the guest can
     * take it, and look again then. */
    vcpu_backend->interrupt_window(v, pending);
    /* An NMI that could not go in (NMIs blocked until the guest's IRET, or an event
     * already being injected) waits for the NMI window; a CPU without one is asked
     * again before every entry. */
    if (!vcpu_backend->nmi_window(v, v->nmi_pending) && v->nmi_pending)
        v->arch.recheck = 1;
    /* A halted vCPU resumes only for an interrupt it takes (HLT was already stepped
     * over); until then it waits off the CPU for a kick or its next timer. */
    if (v->halted)
        return EXIT_YIELD;
    return EXIT_RESUME;
}

/* The backend's timer: the slice may be over (the run loop sees to that) or a guest
 * timer is due. */
enum exit_action exit_timer(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    v->arch.recheck = 1;
    return EXIT_RESUME;
}
