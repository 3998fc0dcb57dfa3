/* One table, generated from vmm/exit_reasons.h, maps each basic exit reason to its
 * handler and says whether the handler needs the exit qualification (one VMREAD saved
 * for the rest). The dispatch itself is inline in exit_dispatch.h. */
#include "vmm/exit_dispatch.h"

const struct exit_handler exit_table[VMX_EXIT_REASON_COUNT] = {
    VMX_EXIT_REASONS(VMX_EXIT_HANDLER_ENTRY)
};

STATIC_ASSERT(VMX_EXIT_REASON_COUNT <= VM_EXIT_REASON_SLOTS, "per-vCPU exit counters too small");

/* A reason newer than the table: report it, never ignore it. */
enum exit_action handle_unknown_exit_reason(struct vcpu *v, uint32_t raw_reason)
{
    struct vmexit e = {.raw_reason = raw_reason, .reason = EXIT_REASON_BASIC(raw_reason)};
    e.qualification = vmcs_readnat(VMCS_EXIT_QUALIFICATION);
    return handle_unexpected_exit(v, &e);
}
