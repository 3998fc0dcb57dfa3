/* One table, generated from vmm/exit_reasons.h, maps each basic exit reason to its
 * handler and says whether the handler needs the exit qualification (one VMREAD saved
 * for the rest). */
#include "vmm/exit_dispatch.h"
#include "vmm/exit_reasons.h"
#include "arch/x86/vmcs.h"

struct exit_handler {
    exit_handler_fn fn;
    bool needs_qualification;
};

static const struct exit_handler exit_table[VMX_EXIT_REASON_COUNT] = {
    VMX_EXIT_REASONS(VMX_EXIT_HANDLER_ENTRY)
};

STATIC_ASSERT(VMX_EXIT_REASON_COUNT <= VM_EXIT_REASON_SLOTS, "per-VM exit counters too small");

enum exit_action exit_dispatch(struct vcpu *v)
{
    uint32_t raw = vmcs_read32(VMCS_EXIT_REASON);
    struct vmexit e = {.raw_reason = raw, .reason = EXIT_REASON_BASIC(raw)};
    struct vm_stats *st = &v->vm->stats;
    st->total_exits++;
    if (e.reason >= VMX_EXIT_REASON_COUNT) {
        /* A reason newer than this table: report it, never ignore it. */
        e.qualification = vmcs_readnat(VMCS_EXIT_QUALIFICATION);
        return handle_unexpected_exit(v, &e);
    }
    st->exits[e.reason]++;
    const struct exit_handler *h = &exit_table[e.reason];
    if (h->needs_qualification)
        e.qualification = vmcs_readnat(VMCS_EXIT_QUALIFICATION);
    return h->fn(v, &e);
}
