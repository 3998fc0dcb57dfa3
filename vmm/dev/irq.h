/* Interrupt lines between a VM's device models and its interrupt controllers. A
 * device drives a line by number (ISA IRQ / GSI); the VM's router (the platform)
 * fans the level out to the PIC and the IOAPIC, as the board's wiring does. Devices
 * never know which controller, or which vCPU, ends up taking the interrupt.
 *
 * Levels, not pulses: an edge-triggered device raises then lowers its line; a
 * level-triggered one holds it high until the guest acknowledges the device. */
#ifndef KEEL_VMM_DEV_IRQ_H
#define KEEL_VMM_DEV_IRQ_H

#include "vmm/lib/types.h"

#define VM_IRQ_LINES 24 /* the IOAPIC's pins; 0-15 are also the PIC's */

struct irq_sink {
    void (*set)(void *ctx, unsigned line, bool high);
    void *ctx;
};

static inline void irq_set(const struct irq_sink *s, unsigned line, bool high)
{
    if (s->set)
        s->set(s->ctx, line, high);
}

/* An edge: what an edge-triggered device that does not model its line's level sends. */
static inline void irq_pulse(const struct irq_sink *s, unsigned line)
{
    irq_set(s, line, true);
    irq_set(s, line, false);
}

#endif
