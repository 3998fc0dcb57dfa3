/* QEMU's fw_cfg interface (selector 0x510, data 0x511): signature, CPU count and RAM
 * size, checked against the MADT and the Multiboot memory information. */
#ifndef PLATFORM_FWCFG_H
#define PLATFORM_FWCFG_H

#include "acpi.h"

void fwcfg_check(const struct acpi_info *acpi);

#endif
