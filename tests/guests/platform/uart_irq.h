/* COM1's interrupt on IRQ 4 through the IOAPIC, as an interrupt-driven serial driver
 * uses it: THR empty raised when the driver enables it (and OUT2 is set), acknowledged
 * by reading IIR, again after each byte sent while it stays enabled. */
#ifndef PLATFORM_UART_IRQ_H
#define PLATFORM_UART_IRQ_H

#include "acpi.h"

void uart_irq_check(const struct acpi_info *acpi, uint32_t bsp_id);

#endif
