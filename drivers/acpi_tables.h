/* ACPI table layouts as the firmware lays them out in memory (ACPI spec 6.x chapter 5,
 * PCI Firmware spec for MCFG, IA-PC HPET spec for HPET). Everything is packed and
 * little-endian; tables may sit at any byte address, so fields are read through these
 * structs (alignment 1) or memcpy, never through wider casts. */
#ifndef KEEL_DRIVERS_ACPI_TABLES_H
#define KEEL_DRIVERS_ACPI_TABLES_H

#include "vmm/lib/types.h"

#define ACPI_RSDP_SIGNATURE "RSD PTR "
#define ACPI_RSDP_V1_LEN 20 /* the part the first checksum covers */

struct acpi_rsdp {
    char signature[8];
    uint8_t checksum; /* over the first 20 bytes */
    char oem_id[6];
    uint8_t revision; /* 0 = ACPI 1.0 (RSDT only), 2 = ACPI 2.0+ */
    uint32_t rsdt_address;
    /* revision >= 2 only */
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum; /* over `length` bytes */
    uint8_t reserved[3];
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_rsdp) == 36, "RSDP v2 is 36 bytes");

struct acpi_sdt_header {
    char signature[4];
    uint32_t length; /* whole table, header included */
    uint8_t revision;
    uint8_t checksum; /* all `length` bytes sum to 0 */
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    uint32_t creator_id;
    uint32_t creator_revision;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_sdt_header) == 36, "SDT header is 36 bytes");

/* Generic Address Structure. */
#define ACPI_GAS_MEMORY 0
#define ACPI_GAS_IO 1
#define ACPI_GAS_PCI_CONFIG 2

struct acpi_gas {
    uint8_t space_id;
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;
    uint64_t address;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_gas) == 12, "GAS is 12 bytes");

/* MADT ("APIC") */
struct acpi_madt {
    struct acpi_sdt_header h;
    uint32_t lapic_address;
    uint32_t flags;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt) == 44, "MADT fixed part is 44 bytes");

#define ACPI_MADT_PCAT_COMPAT BIT(0)

enum acpi_madt_type {
    MADT_LAPIC = 0,
    MADT_IOAPIC = 1,
    MADT_ISO = 2,
    MADT_NMI_SOURCE = 3,
    MADT_LAPIC_NMI = 4,
    MADT_LAPIC_OVERRIDE = 5,
    MADT_X2APIC = 9,
    MADT_X2APIC_NMI = 10,
};

#define ACPI_MADT_CPU_ENABLED BIT(0)
#define ACPI_MADT_CPU_ONLINE_CAPABLE BIT(1)

struct acpi_madt_entry {
    uint8_t type;
    uint8_t length;
} PACKED;

struct acpi_madt_lapic {
    struct acpi_madt_entry e;
    uint8_t uid;
    uint8_t apic_id;
    uint32_t flags;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_lapic) == 8, "MADT type 0");

struct acpi_madt_ioapic {
    struct acpi_madt_entry e;
    uint8_t id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_ioapic) == 12, "MADT type 1");

struct acpi_madt_iso {
    struct acpi_madt_entry e;
    uint8_t bus; /* 0 = ISA */
    uint8_t source;
    uint32_t gsi;
    uint16_t flags; /* MPS INTI flags: polarity bits 1:0, trigger bits 3:2 */
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_iso) == 10, "MADT type 2");

struct acpi_madt_lapic_nmi {
    struct acpi_madt_entry e;
    uint8_t uid; /* 0xFF = every processor */
    uint16_t flags;
    uint8_t lint;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_lapic_nmi) == 6, "MADT type 4");

struct acpi_madt_lapic_override {
    struct acpi_madt_entry e;
    uint16_t reserved;
    uint64_t address;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_lapic_override) == 12, "MADT type 5");

struct acpi_madt_x2apic {
    struct acpi_madt_entry e;
    uint16_t reserved;
    uint32_t x2apic_id;
    uint32_t flags;
    uint32_t uid;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_x2apic) == 16, "MADT type 9");

struct acpi_madt_x2apic_nmi {
    struct acpi_madt_entry e;
    uint16_t flags;
    uint32_t uid; /* 0xFFFFFFFF = every processor */
    uint8_t lint;
    uint8_t reserved[3];
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_madt_x2apic_nmi) == 12, "MADT type 10");

/* FADT ("FACP"). Its length grew with every ACPI revision: a field exists only if
 * the table's length covers it, so the parser checks offsetof+size against it. */
struct acpi_fadt {
    struct acpi_sdt_header h;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags; /* ACPI 1.0 FADT ends here: 116 bytes */
    struct acpi_gas reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    struct acpi_gas x_pm1a_evt_blk;
    struct acpi_gas x_pm1b_evt_blk;
    struct acpi_gas x_pm1a_cnt_blk;
    struct acpi_gas x_pm1b_cnt_blk;
    struct acpi_gas x_pm2_cnt_blk;
    struct acpi_gas x_pm_tmr_blk;
    struct acpi_gas x_gpe0_blk;
    struct acpi_gas x_gpe1_blk;
    struct acpi_gas sleep_control_reg;
    struct acpi_gas sleep_status_reg;
    uint64_t hypervisor_vendor_id;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_fadt) == 276, "FADT (ACPI 6) is 276 bytes");
STATIC_ASSERT(__builtin_offsetof(struct acpi_fadt, flags) == 112, "FADT flags offset");
STATIC_ASSERT(__builtin_offsetof(struct acpi_fadt, reset_reg) == 116, "FADT reset_reg offset");
STATIC_ASSERT(__builtin_offsetof(struct acpi_fadt, x_dsdt) == 140, "FADT X_DSDT offset");
STATIC_ASSERT(__builtin_offsetof(struct acpi_fadt, x_pm1a_cnt_blk) == 172, "FADT X_PM1a_CNT");

#define ACPI_FADT_V1_LEN 116

/* FADT flags */
#define ACPI_FADT_TMR_VAL_EXT BIT(8)
#define ACPI_FADT_RESET_REG_SUP BIT(10)
#define ACPI_FADT_HW_REDUCED BIT(20)

/* IAPC_BOOT_ARCH */
#define ACPI_BOOT_ARCH_LEGACY_DEVICES BIT(0)
#define ACPI_BOOT_ARCH_8042 BIT(1)

/* PM1 control register bits */
#define ACPI_PM1_SCI_EN BIT(0)
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_TYP_MASK (7u << 10)
#define ACPI_PM1_SLP_EN BIT(13)

/* HPET */
struct acpi_hpet {
    struct acpi_sdt_header h;
    uint32_t event_timer_block_id; /* copy of the capabilities register's low half */
    struct acpi_gas base;
    uint8_t hpet_number;
    uint16_t min_tick;
    uint8_t page_protection;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_hpet) == 56, "HPET table is 56 bytes");

/* MCFG */
struct acpi_mcfg {
    struct acpi_sdt_header h;
    uint64_t reserved;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_mcfg) == 44, "MCFG fixed part is 44 bytes");

struct acpi_mcfg_entry {
    uint64_t base; /* address of bus 0's window, even when start_bus > 0 */
    uint16_t segment;
    uint8_t start_bus;
    uint8_t end_bus;
    uint32_t reserved;
} PACKED;
STATIC_ASSERT(sizeof(struct acpi_mcfg_entry) == 16, "MCFG entry is 16 bytes");

/* AML opcodes the _S5_ scan understands. */
#define AML_ZERO_OP 0x00
#define AML_ONE_OP 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_QWORD_PREFIX 0x0E
#define AML_PACKAGE_OP 0x12
#define AML_ROOT_CHAR 0x5C
#define AML_ONES_OP 0xFF

#endif
