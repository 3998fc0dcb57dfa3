/* Machine power-off and reset: ACPI first, then the legacy and emulator fallbacks.
 * Both announce each method on the console before trying it, so a log shows which
 * one finally worked (or that none did). */
#ifndef KEEL_DRIVERS_POWER_H
#define KEEL_DRIVERS_POWER_H

#include "vmm/lib/types.h"
#include "drivers/acpi.h"

/* Keeps what power-off and reset need from the FADT/DSDT (copied: `acpi` may be
 * temporary). NULL or a table-less acpi_info leaves only the fallbacks. */
void power_init(const struct acpi_info *acpi);

/* Flushes the console and powers the machine off; if every method fails, says so and
 * halts this CPU forever. */
NORETURN void power_off(void);

/* Resets the machine: FADT reset register, port 0xCF9, the 8042, then a triple fault. */
NORETURN void power_reset(void);

#endif
