/* The generic exit handlers (one per enum vcpu_exit, arch/x86/vcpu_backend.h): what
 * Keel does when a guest exits, whatever the CPU backend. They see the exit decoded and
 * reach guest state only through the vCPU operations of vmm/vcpu.h. */
#ifndef KEEL_VMM_EXIT_HANDLERS_H
#define KEEL_VMM_EXIT_HANDLERS_H

#include "vmm/vcpu.h"
#include "vmm/dev/bus.h"

#define DECLARE_EXIT_HANDLER(id, name) enum exit_action exit_##name(struct vcpu *v, struct exit_info *e);
VCPU_EXITS(DECLARE_EXIT_HANDLER)
#undef DECLARE_EXIT_HANDLER

/* An EPT violation inside a device's MMIO range (exit_mmio.c). */
enum exit_action exit_mmio(struct vcpu *v, gpa_t gpa, bool write, const struct bus_range *dev);

/* The tables the backend gets: the handlers in enum vcpu_exit order, and the
 * hypercalls by function number (vmm/hypercall.c). */
extern const vcpu_exit_fn exit_handlers[VCPU_EXIT_COUNT];
extern const struct vcpu_hypercalls keel_hypercalls;

/* Stops the VM as a device handler asked (vmm/dev/bus.h); used by port and MMIO exits. */
__attribute__((cold, noinline)) enum exit_action exit_device_result(struct vcpu *v, struct bus_result r);

#endif
