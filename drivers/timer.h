/* Boot-time calibration of Keel's clock (the TSC, arch/x86/tsc.h) against the HPET (or
 * the PIT when there is none), together with the LAPIC timer rate. */
#ifndef KEEL_DRIVERS_TIMER_H
#define KEEL_DRIVERS_TIMER_H

#include "vmm/lib/types.h"

struct acpi_info;

/* Measures the TSC and (if lapic_init ran) the LAPIC timer over a 50 ms window on the
 * ACPI-described HPET, else PIT channel 2, else trusts CPUID leaves 0x15/0x16. acpi may
 * be NULL. Leaves the LAPIC timer, HPET and PIT as it found them. Call after
 * lapic_init. Prints a summary line. */
void timer_calibrate(const struct acpi_info *acpi);
/* Before returning to live firmware: gives back the LAPIC timer as firmware had it
 * (if anything reprogrammed it after calibration), the APIC's enable state, and the
 * HPET. */
void timer_restore_firmware_state(void);

/* LAPIC timer clocks per second at divide 1; 0 if unknown. */
uint64_t lapic_timer_hz(void);

#endif
