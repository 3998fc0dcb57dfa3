/* The PCI functions a VM's configuration asks for, on its host bridge (00:00.0):
 *     00:01.0 virtio-blk      when `disk` is set; INTA# on IRQ PCI_INTX_IRQ(1) = 11
 *     00:02.0 virtio-console  when `virtio_console = yes`; INTA# on IRQ PCI_INTX_IRQ(2) = 10
 * Their BARs are placed from PCI_BAR_ALLOC_BASE (0xFE000000) up, in that order, and
 * decoding is on, as a BIOS leaves them. The slots stay the same whichever is absent. */
#ifndef KEEL_VMM_DEV_PCI_DEVICES_H
#define KEEL_VMM_DEV_PCI_DEVICES_H

#include "vmm/lib/types.h"

#define VM_PCI_SLOT_BLK 1
#define VM_PCI_SLOT_CONSOLE 2

struct vm;

/* Puts the configured functions on the VM's host bridge; once its APIC bus exists
 * (MSI goes there). False (logged) when one could not be set up. */
bool vm_pci_devices_attach(struct vm *vm);

#endif
