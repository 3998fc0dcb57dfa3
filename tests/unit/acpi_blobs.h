/* Builders of synthetic ACPI tables for the host tests of drivers/acpi.c.
 *
 * Every blob lives below 4 GiB (the RSDT, the RSDP and the FADT hold 32-bit
 * addresses) and ends flush against an inaccessible guard page, so a parser that
 * reads one byte past a table's real end crashes the test instead of passing. */
#ifndef KEEL_TESTS_ACPI_BLOBS_H
#define KEEL_TESTS_ACPI_BLOBS_H

#include "vmm/lib/types.h"
#include "drivers/acpi_tables.h"

#define BLOB_MAX 16384

/* n zeroed bytes, the last one just before a guard page. */
void *blob_alloc(size_t n);
/* Copies n bytes into a fresh blob. */
void *blob_copy(const void *p, size_t n);
void blob_free_all(void);

static inline hpa_t blob_pa(const void *p) { return (hpa_t)(uintptr_t)p; }

/* Sets the checksum byte at csum_off so that n bytes from p sum to 0. */
void blob_checksum(void *p, size_t n, size_t csum_off);
/* Re-checksums an SDT over `n` bytes (normally its length; tests that lie about the
 * length pass the real size). */
void blob_sdt_checksum(void *table, size_t n);

/* A table under construction: header first, then whatever the test appends. */
struct tbl {
    uint8_t buf[BLOB_MAX];
    size_t len;
};
void tbl_begin(struct tbl *t, const char *sig, uint8_t revision);
void tbl_put(struct tbl *t, const void *p, size_t n);
void tbl_u8(struct tbl *t, uint8_t v);
void tbl_u16(struct tbl *t, uint16_t v);
void tbl_u32(struct tbl *t, uint32_t v);
void tbl_u64(struct tbl *t, uint64_t v);
/* Fixes length and checksum and moves the table into a guarded blob. */
void *tbl_finish(struct tbl *t);

/* RSDP: revision 0 gives a 20-byte blob, revision 2 a 36-byte one; checksums right. */
struct acpi_rsdp *blob_rsdp(uint8_t revision, const void *rsdt, const void *xsdt);
/* Root table ("XSDT": 64-bit entries, "RSDT": 32-bit) pointing at `tables`. */
struct acpi_sdt_header *blob_root(const char *sig, void *const *tables, size_t n);

/* MADT pieces */
void madt_begin(struct tbl *t, uint32_t lapic, uint32_t flags);
void madt_lapic(struct tbl *t, uint8_t uid, uint8_t apic_id, uint32_t flags);
void madt_x2apic(struct tbl *t, uint32_t x2apic_id, uint32_t uid, uint32_t flags);
void madt_ioapic(struct tbl *t, uint8_t id, uint32_t addr, uint32_t gsi_base);
void madt_iso(struct tbl *t, uint8_t bus, uint8_t src, uint32_t gsi, uint16_t flags);
void madt_lapic_nmi(struct tbl *t, uint8_t uid, uint16_t flags, uint8_t lint);
void madt_x2apic_nmi(struct tbl *t, uint32_t uid, uint16_t flags, uint8_t lint);
void madt_lapic_override(struct tbl *t, uint64_t addr);

/* DSDT holding `aml` after some unrelated AML bytes. */
void *blob_dsdt(const uint8_t *aml, size_t n);
/* Name(_S5_, Package(4){a, b, 0, 0}) in AML. Returns its length (14). */
size_t aml_s5(uint8_t *out, uint8_t a, uint8_t b);

struct acpi_hpet *blob_hpet(uint64_t base, uint32_t id, uint16_t min_tick);
/* MCFG with n entries. */
struct acpi_sdt_header *blob_mcfg(const struct acpi_mcfg_entry *e, size_t n);

/* The full, valid platform the tests start from. Known values below. */
struct blob_platform {
    struct acpi_rsdp *rsdp;
    struct acpi_sdt_header *xsdt, *rsdt;
    struct acpi_sdt_header *madt;
    struct acpi_fadt *fadt;
    struct acpi_sdt_header *dsdt;       /* the one X_DSDT points at: S5 = 5/6 */
    struct acpi_sdt_header *dsdt_decoy; /* the legacy DSDT field's target: S5 = 1/1 */
    struct acpi_hpet *hpet;
    struct acpi_sdt_header *mcfg;
    struct acpi_sdt_header *waet; /* an unrelated table the parser should just list */
};

#define BP_LAPIC 0xfee00000u
#define BP_LAPIC_OVERRIDE 0x1fee00000ull
#define BP_IOAPIC 0xfec00000u
#define BP_HPET_BASE 0xfed00000ull
#define BP_HPET_ID 0x8086a201u
#define BP_ECAM0 0xb0000000ull
#define BP_ECAM1 0xc0000000ull
#define BP_PM1A_LEGACY 0xb004
#define BP_PM1A_X 0x604
#define BP_PM1B 0x608
#define BP_SMI_CMD 0xb2
#define BP_ACPI_ENABLE 0xf1
#define BP_SLP_A 5
#define BP_SLP_B 6

/* Builds the platform; tables are built bottom-up, so a test changing one table must
 * rebuild what points at it (or re-checksum). with_hpet/with_mcfg leave those out. */
void blob_build_platform(struct blob_platform *p, bool with_hpet, bool with_mcfg);
/* Rebuilds XSDT, RSDT and RSDP from the given tables (NULLs are left out). */
void blob_rebuild_roots(struct blob_platform *p);

#endif
