/* The vCPU operations the generic hypervisor uses, over the backend chosen at start-up
 * (arch/x86/vcpu_backend.h), and the generic exit handlers it hands the backend. */
#ifndef KEEL_VMM_VCPU_H
#define KEEL_VMM_VCPU_H

#include "vmm/vm.h"
#include "arch/x86/vcpu_backend.h"

extern const struct vcpu_backend *vcpu_backend;

/* Chooses the backend and hands it the generic exit handlers. false (after saying why)
 * when guests cannot run on this machine. */
bool vcpu_backend_start(const struct vcpu_backend *backend);

/* Fills the backend state of a vCPU whose VM has been loaded. */
static inline bool vcpu_create(struct vcpu *v, const struct vcpu_boot *boot)
{
    return vcpu_backend->vcpu_create(v, &v->vm->arch, v->vm->name, boot);
}
/* Frees what vcpu_create allocated (for a VM that never ran, or has stopped). */
static inline void vcpu_release(struct vcpu *v)
{
    vcpu_backend->vcpu_destroy(v);
}
/* Runs the vCPU on the calling CPU until its slice ends, it yields, or its VM stops. */
static inline enum exit_action vcpu_run_slice(struct vcpu *v, uint64_t slice_tsc)
{
    return vcpu_backend->run(v, slice_tsc);
}
/* Releases the vCPU from the calling CPU: needed before another CPU may load it. */
static inline void vcpu_unload(struct vcpu *v)
{
    vcpu_backend->unload(v);
}

/* Guest state, for exit handlers: on the CPU the vCPU is loaded on. */
static inline uint64_t vcpu_get(struct vcpu *v, enum vcpu_reg r)
{
    return vcpu_backend->get_reg(v, r);
}
static inline void vcpu_set(struct vcpu *v, enum vcpu_reg r, uint64_t value)
{
    vcpu_backend->set_reg(v, r, value);
}
static inline uint64_t vcpu_guest_cr0(struct vcpu *v) { return vcpu_get(v, VCPU_REG_CR0); }
static inline uint64_t vcpu_guest_cr4(struct vcpu *v) { return vcpu_get(v, VCPU_REG_CR4); }
static inline uint64_t vcpu_rip(struct vcpu *v) { return vcpu_get(v, VCPU_REG_RIP); }
static inline unsigned vcpu_guest_cpl(struct vcpu *v) { return (unsigned)vcpu_get(v, VCPU_REG_CPL); }

static inline void vcpu_inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
    vcpu_backend->inject_exception(v, vector, has_error, error);
}
static inline void vcpu_inject_gp(struct vcpu *v) { vcpu_inject_exception(v, 13, true, 0); }
static inline void vcpu_inject_ud(struct vcpu *v) { vcpu_inject_exception(v, 6, false, 0); }

/* Whether the scheduler should give the vCPU the CPU: its VM is not paused, and it has
 * something to look at (recheck), or it is active and not halted, or halted with its
 * wake-up time reached. */
bool vcpu_runnable(struct vcpu *v, uint64_t now_tsc);

/* General register n in ModRM order (0 RAX ... 4 RSP ... 15 R15). */
uint64_t vcpu_gpr(struct vcpu *v, unsigned n);
void vcpu_set_gpr(struct vcpu *v, unsigned n, uint64_t value);

#endif
