/* The ACPI tables a VM's firmware would leave: built into guest RAM where a PC BIOS
 * keeps them, in 0xE0000-0xFFFFF, so a guest finds the RSDP by the usual scan of that
 * range on 16-byte boundaries.
 *
 * The tables describe Keel's virtual PC and nothing else:
 *   - RSDP 2.0 (both checksums) -> RSDT and XSDT, each listing FADT and MADT;
 *   - MADT: the local APIC address, PCAT_COMPAT (the 8259 pair is there), one enabled
 *     Processor Local APIC per vCPU with ACPI UID and APIC ID = the vCPU index, the
 *     IOAPIC with GSI base 0, the interrupt source overrides QEMU's PC has (ISA IRQ 0 ->
 *     GSI 2, edge; IRQ 9 -> GSI 9, level and active high, for the SCI) and LINT1 as NMI
 *     on every processor;
 *   - FADT revision 3 (ACPI 2.0, with the X_ fields): SCI on IRQ 9, the PM1a event and
 *     control blocks and the PM timer at the ports of vmm/dev/acpi_pm.h (no SMI
 *     command port: the machine is born in ACPI mode), no GPE blocks, C2/C3 absent, the
 *     RTC century index, the reset register (port 0xCF9, value 6, RESET_REG_SUP), the
 *     FACS and the DSDT;
 *   - FACS, 64 bytes, 64-byte aligned (no waking vector: Keel has no S3);
 *   - DSDT: \_S5 = Package {SLP_TYP, SLP_TYP, 0, 0}, SLP_TYP being acpi_pm's S5
 *     value, so ACPI power-off works; with pci_root, the host bridge as \_SB.PCI0
 *     (PNP0A03: an OS that uses ACPI finds PCI bus 0 only through it): its _CRS (bus
 *     0-255, config ports 0xCF8-0xCFF, I/O 0-0xCF7 and 0xD00-0xFFFF, memory
 *     PCI_MMIO_WINDOW_BASE..END) and a _PRT entry for INTA# of each slot in
 *     pci_slots, to GSI PCI_INTX_IRQ(slot) (level, active low, as a _PRT entry
 *     without a link device means).
 * Left out: HPET, MCFG, SRAT and the rest (the devices are not there), x2APIC entries
 * (vCPU indices fit the 8-bit xAPIC IDs), any other namespace object (guests probe the
 * legacy devices at their fixed ports). */
#ifndef KEEL_VMM_GUEST_ACPI_H
#define KEEL_VMM_GUEST_ACPI_H

#include "vmm/lib/types.h"

#define GUEST_ACPI_AREA 0xe0000ull     /* the BIOS area the RSDP scan covers */
#define GUEST_ACPI_AREA_END 0x100000ull
#define GUEST_ACPI_MAX_VCPUS 254u      /* xAPIC IDs 0..254; 255 is the broadcast ID */
/* Enough for every table at GUEST_ACPI_MAX_VCPUS; a 16-vCPU VM needs about 0x330. */
#define GUEST_ACPI_MAX_SIZE 0x1000u

#define GUEST_ACPI_EINVAL (-1) /* a configuration or base the tables cannot describe */
#define GUEST_ACPI_ENOSPC (-2) /* the buffer is too small */

struct guest_acpi_cfg {
    uint32_t vcpus;       /* 1..GUEST_ACPI_MAX_VCPUS: APIC IDs 0..vcpus-1 */
    uint64_t lapic_base;  /* 32-bit: the MADT's local APIC address (0xFEE00000) */
    uint64_t ioapic_base; /* 32-bit (0xFEC00000) */
    uint8_t ioapic_id;    /* the IOAPIC's ID register (VIOAPIC_DEFAULT_ID) */
    uint16_t pm_base;     /* the acpi_pm port block (ACPI_PM_BASE) */
    bool i8042;           /* an 8042 keyboard controller at 0x60/0x64 (IAPC_BOOT_ARCH) */
    bool pci_root;        /* describe the host bridge as \_SB.PCI0 (see above) */
    uint32_t pci_slots;   /* bit d: a function at 00:d.0 whose INTA# the _PRT routes */
};

/* Writes the tables into buf, which holds guest-physical [base, base + size): base
 * 16-byte aligned and the whole buffer inside 0xE0000-0xFFFFF. The RSDP comes first,
 * at base; *rsdp (may be NULL) gets its address. Returns the bytes used (bytes past
 * them are not written), GUEST_ACPI_ENOSPC when size is too small, or GUEST_ACPI_EINVAL
 * for a bad base or configuration; on error nothing is written. */
int guest_acpi_build(void *buf, size_t size, gpa_t base, const struct guest_acpi_cfg *cfg, gpa_t *rsdp);

#endif
