/* QEMU's pc-testdev, when the machine has one (Keel's `testdev = on`, QEMU's
 * `-device pc-testdev`): its scratch port and MMIO scratch page read back, and an
 * interrupt raised through its line port arrives through the IOAPIC. */
#ifndef PLATFORM_TESTDEV_H
#define PLATFORM_TESTDEV_H

#include "acpi.h"

void testdev_check(const struct acpi_info *acpi, uint32_t bsp_id);

#endif
