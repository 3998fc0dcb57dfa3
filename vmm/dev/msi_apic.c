/* MSI to the VM's APIC bus (see msi_apic.h). */
#include "vmm/dev/msi_apic.h"
#include "vmm/lib/console.h"

static void drop(struct msi_apic *m, uint64_t address, uint32_t data, const char *why)
{
    m->dropped++;
    if (m->logged)
        return;
    m->logged = true;
    kprintf("VM %s: MSI write 0x%x to 0x%lx reaches nobody: %s (logged once)\n", m->vm_name, data, address, why);
}

void msi_apic_send(struct msi_apic *m, uint64_t address, uint32_t data)
{
    if ((address & MSI_ADDRESS_MASK) != MSI_ADDRESS_BASE || (address >> 32)) {
        drop(m, address, data, "not an address in the local APICs' window 0xfee00000-0xfeefffff");
        return;
    }
    uint8_t mode = (uint8_t)((data >> 8) & 7);
    if (mode != APIC_DM_FIXED && mode != APIC_DM_LOWEST && mode != APIC_DM_NMI) {
        drop(m, address, data, "its delivery mode is not fixed, lowest priority or NMI");
        return;
    }
    struct apic_msg msg = {
        .dest = (uint32_t)(address >> MSI_ADDR_DEST_SHIFT) & 0xff,
        .vector = (uint8_t)data,
        .mode = mode,
        .logical = address & MSI_ADDR_LOGICAL,
        /* A message is an edge however its trigger bit reads: nothing would end a level. */
        .level = false,
    };
    if (apic_bus_send(m->apic, &msg, NULL) == APIC_SEND_NOBODY)
        drop(m, address, data, "no local APIC of the VM has that destination");
}

static void sink_send(void *ctx, uint64_t address, uint32_t data)
{
    msi_apic_send(ctx, address, data);
}

void msi_apic_init(struct msi_apic *m, struct apic_bus *apic, const char *vm_name)
{
    *m = (struct msi_apic){.apic = apic, .vm_name = vm_name, .sink = {.send = sink_send, .ctx = m}};
}
