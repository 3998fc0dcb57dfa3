/* MOV to/from CR0, CR4 and CR8, CLTS and LMSW: the architectural rules for each value,
 * checked before the backend applies it. The backend traps every CR0/CR4 bit the CPU
 * pins or lacks and shows the guest what it wrote. CR8 always exits: it is the vCPU's
 * own TPR (its local APIC's), never the host APIC's. */
#include "vmm/exit_handlers.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"

/* CR0 bits the architecture defines (PE MP EM TS ET NE WP AM NW CD PG); setting any
 * other is #GP. */
#define CR0_DEFINED 0xe005003full

/* Paging on with EFER.LME set is how a guest enters long mode: EFER.LMA follows, as the
 * CPU would set it (the backend makes the next entry honour it). */
static bool set_cr0(struct vcpu *v, uint64_t val)
{
    if ((val & ~CR0_DEFINED) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
        return false;
    uint64_t old = vcpu_guest_cr0(v);
    uint64_t efer = vcpu_get(v, VCPU_REG_EFER);
    if ((val & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME)) {
        if (!(vcpu_guest_cr4(v) & CR4_PAE))
            return false;
        vcpu_set(v, VCPU_REG_EFER, efer | EFER_LMA);
    } else if (!(val & CR0_PG) && (old & CR0_PG) && (efer & EFER_LMA)) {
        vcpu_set(v, VCPU_REG_EFER, efer & ~(uint64_t)EFER_LMA);
    }
    vcpu_set(v, VCPU_REG_CR0, val);
    return true;
}

static bool set_cr4(struct vcpu *v, uint64_t val)
{
    /* Reserved bits, features this CPU lacks (UMIP, LA57, PKE...) and VMX/SMX, which
     * CPUID hides, are #GP as on a CPU without them: never a bit the guest only
     * believes it has. */
    if (val & ~vcpu_backend->cr4_allowed())
        return false;
    if ((vcpu_get(v, VCPU_REG_EFER) & EFER_LMA) && !(val & CR4_PAE))
        return false;
    vcpu_set(v, VCPU_REG_CR4, val);
    return true;
}

enum exit_action exit_cr(struct vcpu *v, struct exit_info *e)
{
    unsigned cr = e->cr.cr, reg = e->cr.gpr;
    bool ok = true;
    switch (e->cr.type) {
    case CR_MOV_TO:
        if (cr == 0)
            ok = set_cr0(v, vcpu_gpr(v, reg));
        else if (cr == 4)
            ok = set_cr4(v, vcpu_gpr(v, reg));
        else if (cr == 8) {
            ok = vlapic_set_cr8(&v->lapic, vcpu_gpr(v, reg)) == VLAPIC_OK;
            /* Only a vector the new TPR lets through needs a look before the entry; a raised
             * TPR leaves any interrupt-window request to find nothing, which is harmless. */
            if (vlapic_pending_intr(&v->lapic) >= 0)
                v->arch.recheck = 1;
        } else
            ok = false;
        break;
    case CR_MOV_FROM:
        if (cr == 8)
            vcpu_set_gpr(v, reg, vlapic_get_cr8(&v->lapic));
        else
            ok = false; /* CR0/CR4 reads never exit; CR3 exiting is off */
        break;
    case CR_CLTS:
        ok = set_cr0(v, vcpu_guest_cr0(v) & ~(uint64_t)CR0_TS);
        break;
    case CR_LMSW: {
        /* LMSW writes CR0 bits 3:0 but can never clear PE. */
        uint64_t cur = vcpu_guest_cr0(v);
        uint64_t src = e->cr.lmsw_source & 0xf;
        ok = set_cr0(v, (cur & ~0xeull) | src | (cur & CR0_PE));
        break;
    }
    default: ok = false; break;
    }
    if (!ok) {
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    return EXIT_NEXT;
}
