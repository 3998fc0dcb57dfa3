/* IOAPICs as the MADT lists them: routing of global system interrupts (GSIs) to a
 * vector on one CPU. */
#ifndef KEEL_DRIVERS_IOAPIC_H
#define KEEL_DRIVERS_IOAPIC_H

#include "vmm/lib/types.h"

struct acpi_info;

/* Route flags. */
#define IOAPIC_LEVEL BIT(0)      /* level-triggered (default edge) */
#define IOAPIC_ACTIVE_LOW BIT(1) /* (default active high) */
#define IOAPIC_MASKED BIT(2)     /* program the entry but leave it masked */
/* The number passed as gsi is an ISA IRQ: it is translated through the MADT's
 * interrupt source overrides, whose polarity and trigger replace the two flags above
 * (ISA default: edge, active high). */
#define IOAPIC_ISA BIT(3)

/* Takes over interrupt routing: masks the legacy 8259 PICs (moved off the exception
 * vectors first), then every redirection entry of every IOAPIC. Prints one line per
 * IOAPIC; a bad entry is reported and skipped. Not for platform-check mode: live
 * firmware may be using them. */
void ioapic_init(const struct acpi_info *acpi);
uint32_t ioapic_count(void);

/* Fixed delivery, physical destination `dest_apic_id` (IOAPICs address at most
 * APIC ID 255 without interrupt remapping). Returns 0, or -1 with a message. */
int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t dest_apic_id, uint32_t flags);
/* Masks or unmasks a GSI's entry; -1 when no IOAPIC serves it. */
int ioapic_set_masked(uint32_t gsi, bool masked);

#endif
