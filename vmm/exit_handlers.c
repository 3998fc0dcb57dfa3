/* The generic exit-handler table, generated from the one list in
 * arch/x86/vcpu_backend.h, and handing it to the backend at start-up. */
#include "vmm/exit_handlers.h"

const vcpu_exit_fn exit_handlers[VCPU_EXIT_COUNT] = {
#define EXIT_HANDLER_ENTRY(id, name) [VCPU_EXIT_##id] = exit_##name,
    VCPU_EXITS(EXIT_HANDLER_ENTRY)
#undef EXIT_HANDLER_ENTRY
};

bool vcpu_backend_start(const struct vcpu_backend *backend)
{
    if (!backend->init(exit_handlers, &keel_hypercalls))
        return false;
    vcpu_backend = backend;
    return true;
}

