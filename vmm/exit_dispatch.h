/* Table-driven VM-exit dispatch: vmm/exit_reasons.h lists every basic exit reason
 * once, with its handler; reasons without a specific handler get an explicit default
 * that reports and stops the VM. */
#ifndef KEEL_VMM_EXIT_DISPATCH_H
#define KEEL_VMM_EXIT_DISPATCH_H

#include "vmm/vcpu.h"
#include "vmm/exit_reasons.h"
#include "arch/x86/vmx/vmcs.h"

typedef enum exit_action (*exit_handler_fn)(struct vcpu *v, const struct vmexit *e);

struct exit_handler {
    exit_handler_fn fn;
    bool needs_qualification;
};

extern const struct exit_handler exit_table[VMX_EXIT_REASON_COUNT];
enum exit_action handle_unknown_exit_reason(struct vcpu *v, uint32_t raw_reason);

/* Inlined into the run loop: on Keel's hottest path a call frame is a measurable cost. */
static inline enum exit_action exit_dispatch(struct vcpu *v)
{
    uint32_t raw = vmcs_read32(VMCS_EXIT_REASON);
    struct vmexit e = {.raw_reason = raw, .reason = EXIT_REASON_BASIC(raw)};
    if (__builtin_expect(e.reason >= VMX_EXIT_REASON_COUNT, 0))
        return handle_unknown_exit_reason(v, raw);
    v->stats.exits[e.reason]++;
    const struct exit_handler *h = &exit_table[e.reason];
    if (h->needs_qualification)
        e.qualification = vmcs_readnat(VMCS_EXIT_QUALIFICATION);
    return h->fn(v, &e);
}

/* Every handler named in vmm/exit_reasons.h. */
#define DECLARE_EXIT_HANDLER(h) enum exit_action h(struct vcpu *v, const struct vmexit *e);
DECLARE_EXIT_HANDLER(handle_exception_nmi)
DECLARE_EXIT_HANDLER(handle_external_interrupt)
DECLARE_EXIT_HANDLER(handle_triple_fault)
DECLARE_EXIT_HANDLER(handle_cpuid)
DECLARE_EXIT_HANDLER(handle_hlt)
DECLARE_EXIT_HANDLER(handle_invd)
DECLARE_EXIT_HANDLER(handle_vmcall)
DECLARE_EXIT_HANDLER(handle_vmx_instruction)
DECLARE_EXIT_HANDLER(handle_monitor_mwait)
DECLARE_EXIT_HANDLER(handle_cr_access)
DECLARE_EXIT_HANDLER(handle_io)
DECLARE_EXIT_HANDLER(handle_rdmsr)
DECLARE_EXIT_HANDLER(handle_wrmsr)
DECLARE_EXIT_HANDLER(handle_entry_failure)
DECLARE_EXIT_HANDLER(handle_ept_violation)
DECLARE_EXIT_HANDLER(handle_ept_misconfig)
DECLARE_EXIT_HANDLER(handle_preemption_timer)
DECLARE_EXIT_HANDLER(handle_wbinvd)
DECLARE_EXIT_HANDLER(handle_xsetbv)
DECLARE_EXIT_HANDLER(handle_rdpmc)
DECLARE_EXIT_HANDLER(handle_unexpected_exit)

/* Stops the VM as a device handler asked (vmm/dev/bus.h); used by port and MMIO exits. */
__attribute__((cold, noinline)) enum exit_action exit_device_result(struct vcpu *v, struct bus_result r);

#endif
