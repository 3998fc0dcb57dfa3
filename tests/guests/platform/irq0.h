/* PIT channel 0 (mode 2) on IRQ0, taken once through the IOAPIC and once through the
 * 8259 PIC in virtual-wire mode (ExtINT on LINT0). */
#ifndef PLATFORM_IRQ0_H
#define PLATFORM_IRQ0_H

#include "acpi.h"

void irq0_check(const struct acpi_info *acpi, uint32_t bsp_id);

#endif
