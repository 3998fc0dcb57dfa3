/* The VM's IOAPIC, an 82093AA as a PC's chipset has it: 24 input pins, each with a
 * redirection entry that turns its interrupt into a message on the VM's APIC bus
 * (apic_bus.h). Registers through IOREGSEL (offset 0x00) and IOWIN (0x10) at 0xFEC00000,
 * 32-bit accesses. Edge pins deliver on a rising edge while unmasked (an edge while
 * masked is lost, as on the 82093AA); level pins deliver while asserted, unmasked and
 * remote IRR clear, set remote IRR, and the LAPIC's EOI of their vector clears it and
 * delivers again if the line is still asserted.
 *
 * Lines carry assertion, not voltage: irq.h's "high" is asserted whatever the polarity
 * bit says (stored, read back, not applied), as QEMU models it; the board's wiring
 * (active-low PCI lines) is the router's business.
 *
 * Emulated: ID (bits 27:24), version 0x11 with 24 entries, arbitration ID (follows the
 * ID), the redirection table (vector, fixed/lowest/NMI/INIT/ExtINT, physical and
 * logical destination, polarity, trigger, remote IRR, mask, 8-bit destination).
 * Left out: SMI (dropped by the bus, logged once), the delivery-status bit (delivery is
 * immediate, it reads 0), the EOI register of version 0x20 IOAPICs, interrupt
 * remapping and extended destination IDs.
 *
 * Locking: one spinlock per IOAPIC over its registers and pins; set_irq, EOI and
 * register accesses may come from any CPU. Delivery happens under it, so the bus's kick
 * callback must not come back into the IOAPIC. */
#ifndef KEEL_VMM_DEV_VIOAPIC_H
#define KEEL_VMM_DEV_VIOAPIC_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"
#include "vmm/dev/apic_bus.h"
#include "vmm/dev/bus.h"
#include "vmm/dev/irq.h"

#define VIOAPIC_BASE 0xfec00000ull
#define VIOAPIC_WINDOW_SIZE 0x1000ull
#define VIOAPIC_PINS 24
#define VIOAPIC_DEFAULT_ID 0 /* what QEMU's MADT gives its IOAPIC */
#define VIOAPIC_VERSION_VALUE ((uint32_t)(VIOAPIC_PINS - 1) << 16 | 0x11)

/* Register offsets in the window, and indices behind IOREGSEL. */
#define IOAPIC_IOREGSEL 0x00
#define IOAPIC_IOWIN 0x10
#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VERSION 0x01
#define IOAPIC_REG_ARB 0x02
#define IOAPIC_REG_REDIR(pin) (0x10 + 2 * (pin)) /* low dword; high at +1 */

/* Redirection entry bits. */
#define IOAPIC_REDIR_DELIVERY_STATUS BIT(12)
#define IOAPIC_REDIR_POLARITY_LOW BIT(13)
#define IOAPIC_REDIR_REMOTE_IRR BIT(14)
#define IOAPIC_REDIR_LEVEL BIT(15)
#define IOAPIC_REDIR_MASKED BIT(16)

STATIC_ASSERT(VIOAPIC_PINS == VM_IRQ_LINES, "the IOAPIC takes every line of the VM's router");

struct vioapic {
    spinlock_t lock;
    struct apic_bus *apic;
    const char *vm_name;
    uint32_t regsel;
    uint32_t id; /* register 0: bits 27:24 */
    uint32_t arb;
    uint32_t levels; /* bit per pin: its line is asserted */
    uint64_t redir[VIOAPIC_PINS];
    uint64_t dropped; /* messages to a destination the VM does not have */
    bool logged_missing, logged_mode;
};

/* Reset state (every entry masked, edge, vector 0) with the given ID (0..15), and the
 * EOI listener on the APIC bus, so level-triggered EOIs come back here. */
void vioapic_init(struct vioapic *io, struct apic_bus *apic, const char *vm_name, uint32_t id);

/* Puts the register window on the VM's bus at base (VIOAPIC_BASE on a PC). Returns the
 * range id or a negative bus error. */
int vioapic_attach(struct vioapic *io, struct vm_bus *bus, uint64_t base);

/* Drives input pin line (0..23; others are ignored): true = asserted. */
void vioapic_set_irq(struct vioapic *io, unsigned line, bool high);

/* The IOAPIC as a target of the VM's interrupt router (irq.h). */
struct irq_sink vioapic_irq_sink(struct vioapic *io);

/* An EOI of vector from a LAPIC (the bus calls this; see vioapic_init). */
void vioapic_eoi(struct vioapic *io, uint8_t vector);

/* The register interface behind the window, for tests and any other path. */
uint32_t vioapic_read(struct vioapic *io, uint32_t offset);
void vioapic_write(struct vioapic *io, uint32_t offset, uint32_t value);

#endif
