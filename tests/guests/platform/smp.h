/* Starting the APs (INIT-SIPI-SIPI into a real-mode trampoline) and IPIs between the
 * CPUs. */
#ifndef PLATFORM_SMP_H
#define PLATFORM_SMP_H

#include "acpi.h"

/* Starts every enabled AP of the MADT and checks that each arrived. */
void smp_start_check(const struct acpi_info *acpi, uint32_t bsp_id);
/* Fixed IPIs: to self, from the BSP to every AP, from an AP to the BSP and to another AP. */
void ipi_check(uint32_t bsp_id);

#endif
