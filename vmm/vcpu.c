/* The backend Keel runs guests with, and the general-register view exit handlers
 * share. */
#include "vmm/vcpu.h"

const struct vcpu_backend *vcpu_backend;

/* RSP lives with the backend (in the VMCS); the rest in the saved registers. */
static uint64_t *gpr_slot(struct vcpu *v, unsigned n)
{
    struct guest_regs *r = &v->arch.regs;
    uint64_t *slots[16] = {&r->rax, &r->rcx, &r->rdx, &r->rbx, NULL,   &r->rbp, &r->rsi, &r->rdi,
                           &r->r8,  &r->r9,  &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15};
    return slots[n & 15];
}

uint64_t vcpu_gpr(struct vcpu *v, unsigned n)
{
    return (n & 15) == 4 ? vcpu_get(v, VCPU_REG_RSP) : *gpr_slot(v, n);
}

void vcpu_set_gpr(struct vcpu *v, unsigned n, uint64_t value)
{
    if ((n & 15) == 4)
        vcpu_set(v, VCPU_REG_RSP, value);
    else
        *gpr_slot(v, n) = value;
}

bool vcpu_runnable(struct vcpu *v, uint64_t now_tsc)
{
    if (__atomic_load_n(&v->vm->paused, __ATOMIC_ACQUIRE))
        return false;
    if (__atomic_load_n(&v->arch.recheck, __ATOMIC_ACQUIRE))
        return true;
    if (v->activity != VCPU_ACTIVE)
        return false;
    if (!v->halted)
        return true;
    if (now_tsc < v->arch.wake_tsc)
        return false;
    /* Its timer (or a device's) is due: the vCPU looks at it before it enters. */
    v->arch.recheck = 1;
    return true;
}
