/* What the platform guest takes from the firmware's ACPI tables: found by the RSDP scan
 * (EBDA, then 0xE0000-0xFFFFF), every table's checksum checked. */
#ifndef PLATFORM_ACPI_H
#define PLATFORM_ACPI_H

#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64

struct acpi_info {
    bool madt_ok;
    uint32_t lapic_addr;
    uint32_t ncpus;                     /* enabled processors */
    uint32_t apic_ids[ACPI_MAX_CPUS];   /* their APIC IDs, MADT order */
    uint32_t ioapic_addr, ioapic_gsi_base;
    uint32_t irq0_gsi;                  /* IRQ0's GSI: the override, or 0 */
    uint16_t irq0_flags;                /* MPS INTI flags of that override, 0 = bus default */

    bool fadt_ok;
    uint16_t pm1a_cnt, pm1b_cnt, pm_tmr;
    bool pm_tmr_ext;
    uint32_t smi_cmd;
    uint8_t acpi_enable;

    bool s5_ok;
    uint8_t slp_typa, slp_typb;
};

/* Finds and checks the tables, reporting one line per check, and fills *info. */
void acpi_check(struct acpi_info *info);

/* Switches the chipset to ACPI mode (SCI_EN) through SMI_CMD when the firmware left it
 * in legacy mode, as an OS does before it touches PM1 control; reports the check. */
void acpi_enable_check(const struct acpi_info *info);

/* Enters S5: SLP_TYP from _S5_, SLP_EN. Returns only if the machine is still on a
 * second later. */
void acpi_poweroff(const struct acpi_info *info);

#endif
