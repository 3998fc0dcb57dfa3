/* ACPI static tables: what Keel learns from the firmware about CPUs, interrupt
 * controllers, timers, PCI config space and how to power off or reset.
 *
 * acpi_parse() only reads memory (tables are reached through the identity map), so it
 * runs unchanged in host tests, where "physical addresses" are pointers to buffers.
 * Every table is checked (signature, length, checksum) before use; a bad one is
 * reported and skipped and the others are still used. */
#ifndef KEEL_DRIVERS_ACPI_H
#define KEEL_DRIVERS_ACPI_H

#include "vmm/lib/types.h"
#include "arch/x86/percpu.h" /* MAX_CPUS; host-safe */
#include "drivers/acpi_tables.h"

#define ACPI_MAX_CPUS MAX_CPUS
#define ACPI_MAX_IOAPICS 16
#define ACPI_MAX_ISOS 32
#define ACPI_MAX_NMIS 16
#define ACPI_MAX_MCFG 16
#define ACPI_MAX_TABLES 48

#define ACPI_MAX_TABLE_LEN (1u << 20) /* sanity bound for every table but the DSDT */
#define ACPI_MAX_DSDT_LEN (16u << 20)

#define ACPI_UID_ALL 0xFFFFFFFFu /* NMI entry applies to every processor */

/* Where a register lives: a Generic Address Structure minus the padding. `present`
 * is false when the firmware gave none (address 0). */
struct acpi_reg {
    bool present;
    uint8_t space; /* ACPI_GAS_MEMORY, ACPI_GAS_IO, ACPI_GAS_PCI_CONFIG */
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
};

struct acpi_cpu {
    uint32_t apic_id;
    uint32_t uid;
    bool enabled;        /* usable now */
    bool online_capable; /* disabled, but may be brought online later */
    bool x2apic_entry;   /* came from a type 9 entry */
};

struct acpi_ioapic {
    uint8_t id;
    uint32_t address;
    uint32_t gsi_base;
};

struct acpi_iso {
    uint8_t bus;
    uint8_t source_irq;
    uint32_t gsi;
    uint16_t flags; /* MPS INTI flags */
};

struct acpi_nmi {
    uint32_t uid; /* ACPI_UID_ALL for every processor */
    uint8_t lint; /* LINT0 or LINT1 */
    uint16_t flags;
};

struct acpi_mcfg_seg {
    hpa_t base; /* ECAM address of bus 0 of the segment (even if start_bus > 0) */
    uint16_t segment;
    uint8_t start_bus;
    uint8_t end_bus;
};

struct acpi_table_ref {
    char signature[5];
    hpa_t address;
};

struct acpi_info {
    hpa_t rsdp;
    uint8_t rsdp_revision;
    char oem_id[7];
    bool use_xsdt; /* root table actually walked: XSDT, or RSDT when false */
    hpa_t root_table;
    uint32_t table_count; /* entries in the root table (may exceed ACPI_MAX_TABLES) */
    struct acpi_table_ref tables[ACPI_MAX_TABLES];

    bool have_madt, have_fadt, have_hpet, have_mcfg;

    /* MADT. CPU entries that are neither enabled nor online-capable are counted
     * (cpus_listed) but not stored: the spec says the OS must not use them. */
    hpa_t madt_address;
    hpa_t lapic_address; /* after the type 5 override, if any */
    bool lapic_overridden;
    bool pcat_compat; /* dual 8259s present: mask them before using the IOAPIC */
    uint32_t cpus_listed;
    uint32_t cpus_enabled;
    uint32_t cpus_dropped; /* usable entries that did not fit in cpus[] */
    uint32_t cpu_count;
    struct acpi_cpu cpus[ACPI_MAX_CPUS];
    uint32_t ioapic_count;
    struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS];
    uint32_t iso_count;
    struct acpi_iso isos[ACPI_MAX_ISOS];
    uint32_t nmi_count;
    struct acpi_nmi nmis[ACPI_MAX_NMIS];

    /* HPET */
    hpa_t hpet_address;
    uint32_t hpet_id; /* event timer block id: vendor, comparator count, ... */
    uint8_t hpet_number;
    uint16_t hpet_min_tick;

    /* MCFG */
    uint32_t mcfg_count;
    struct acpi_mcfg_seg mcfg[ACPI_MAX_MCFG];

    /* FADT (+ DSDT for \_S5) */
    hpa_t fadt_address;
    uint8_t fadt_revision;
    uint32_t fadt_flags;
    hpa_t dsdt_address; /* X_DSDT when set, else DSDT */
    bool hw_reduced;
    uint16_t sci_irq;
    uint32_t smi_cmd; /* I/O port; 0 = no SMI command port (ACPI mode is always on) */
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    struct acpi_reg pm1a_cnt, pm1b_cnt;
    struct acpi_reg pm_timer;
    bool pm_timer_32bit;
    bool s5_valid;
    uint8_t slp_typ_a, slp_typ_b;
    bool reset_supported; /* RESET_REG_SUP and a usable reset_reg */
    struct acpi_reg reset_reg;
    uint8_t reset_value;
    uint16_t boot_arch; /* IAPC_BOOT_ARCH */
    bool has_8042;      /* from IAPC_BOOT_ARCH; assumed true when the FADT predates it */
};

/* Walks RSDP -> XSDT (or RSDT) -> MADT, FADT (+DSDT), HPET, MCFG into *out (which is
 * cleared first). Returns 0 when a root table was found, negative when there is no
 * usable RSDP or root table; individual tables are flagged by have_*. */
int acpi_parse(hpa_t rsdp, struct acpi_info *out);

/* One line per table, in the fixed forms the system tests grep for. */
void acpi_report(const struct acpi_info *info);

/* Scans AML bytecode for Name(\_S5_, Package(){SLP_TYPa, SLP_TYPb, ...}).
 * Returns ACPI_S5_FOUND with *a and *b set, ACPI_S5_ABSENT, or ACPI_S5_MALFORMED with
 * *why describing the first malformed definition. Exposed for the host tests. */
enum acpi_s5_result { ACPI_S5_FOUND, ACPI_S5_ABSENT, ACPI_S5_MALFORMED };
enum acpi_s5_result acpi_find_s5(const uint8_t *aml, size_t len, uint8_t *a, uint8_t *b,
                                 const char **why);

#endif
