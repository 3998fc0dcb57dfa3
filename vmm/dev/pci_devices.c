/* Which PCI functions a VM has (see pci_devices.h). */
#include "vmm/dev/pci_devices.h"
#include "vmm/vm.h"
#include "vmm/lib/console.h"

bool vm_pci_devices_attach(struct vm *vm)
{
    struct vm_pc *pc = &vm->pc;
    const struct vm_config *c = vm->cfg;
    msi_apic_init(&pc->msi, &pc->apic, vm->name);
    struct dev_ram ram = vm->mem;
    uint64_t next = PCI_BAR_ALLOC_BASE;
    if (vm->disk) {
        if (!virtio_blk_init(&pc->blk, vm->disk, vm->disk_size, c && c->disk_readonly, VM_PCI_SLOT_BLK, &vm->bus,
                             &pc->irq, &pc->msi.sink, &ram, vm->name) ||
            !pci_ep_plug(&pc->blk.vp.pci, &pc->pci, &next)) {
            kprintf("VM %s: its virtio-blk disk could not be set up\n", vm->name);
            return false;
        }
        pc->has_blk = true;
    }
    if (c && c->virtio_console) {
        if (!virtio_console_init(&pc->vcon, VM_PCI_SLOT_CONSOLE, &vm->bus, &pc->irq, &pc->msi.sink, &ram,
                                 vm->name) ||
            !pci_ep_plug(&pc->vcon.vp.pci, &pc->pci, &next)) {
            kprintf("VM %s: its virtio console could not be set up\n", vm->name);
            return false;
        }
        pc->has_vcon = true;
    }
    return true;
}
