/* MSI messages (a PCI function's memory write to 0xFEExxxxx) turned into messages on
 * the VM's APIC bus (apic_bus.h), as the chipset turns them into interrupt messages
 * (SDM vol. 3, 11.11 "Message Signalled Interrupts"): destination ID in address bits
 * 19:12, destination mode in bit 2; vector, delivery mode and trigger mode in the data.
 * Fixed, lowest-priority and NMI deliveries go through; an address outside the
 * 0xFEExxxxx window, another delivery mode or a destination the VM does not have
 * reaches nobody and is logged once per VM. Destinations are 8-bit (no extended
 * destination ID, no interrupt remapping). */
#ifndef KEEL_VMM_DEV_MSI_APIC_H
#define KEEL_VMM_DEV_MSI_APIC_H

#include "vmm/lib/types.h"
#include "vmm/dev/apic_bus.h"
#include "vmm/dev/pci_endpoint.h"

#define MSI_ADDRESS_BASE 0xfee00000ull
#define MSI_ADDRESS_MASK 0xfff00000ull
#define MSI_ADDR_DEST_SHIFT 12
#define MSI_ADDR_LOGICAL BIT(2)
#define MSI_DATA_LEVEL_TRIGGER BIT(15)

struct msi_apic {
    struct apic_bus *apic;
    const char *vm_name;
    uint64_t dropped;
    bool logged;
    struct msi_sink sink; /* what the VM's PCI functions are given */
};

void msi_apic_init(struct msi_apic *m, struct apic_bus *apic, const char *vm_name);
/* One MSI message. */
void msi_apic_send(struct msi_apic *m, uint64_t address, uint32_t data);

#endif
