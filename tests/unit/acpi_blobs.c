/* Synthetic ACPI tables for the host tests; see acpi_blobs.h. */
#define _GNU_SOURCE
#include "tests/unit/acpi_blobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define GUARD 4096

struct mapping {
    void *base;
    size_t size;
};
static struct mapping maps[512];
static size_t nmaps;

void *blob_alloc(size_t n)
{
    size_t data = (n + GUARD - 1) / GUARD * GUARD;
    size_t size = data + GUARD;
    /* MAP_32BIT: the first 2 GiB, so 32-bit table pointers can reach the blob. */
    uint8_t *base = mmap(NULL, size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (base == MAP_FAILED || nmaps == sizeof maps / sizeof maps[0]) {
        fprintf(stderr, "blob_alloc: cannot map %zu bytes below 4 GiB\n", size);
        abort();
    }
    if (mprotect(base + data, GUARD, PROT_NONE) != 0)
        abort();
    maps[nmaps++] = (struct mapping){base, size};
    return base + data - n;
}

void *blob_copy(const void *p, size_t n)
{
    void *b = blob_alloc(n);
    memcpy(b, p, n);
    return b;
}

void blob_free_all(void)
{
    while (nmaps) {
        nmaps--;
        munmap(maps[nmaps].base, maps[nmaps].size);
    }
}

void blob_checksum(void *p, size_t n, size_t csum_off)
{
    uint8_t *b = p;
    b[csum_off] = 0;
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + b[i]);
    b[csum_off] = (uint8_t)-s;
}

void blob_sdt_checksum(void *table, size_t n)
{
    blob_checksum(table, n, offsetof(struct acpi_sdt_header, checksum));
}

/* ---- table builder ---------------------------------------------------------------- */

void tbl_begin(struct tbl *t, const char *sig, uint8_t revision)
{
    memset(t, 0, sizeof *t);
    struct acpi_sdt_header h = {.revision = revision, .oem_revision = 1,
                                .creator_id = 0x4c45454b, .creator_revision = 1};
    memcpy(h.signature, sig, 4);
    memcpy(h.oem_id, "KEELTS", 6);
    memcpy(h.oem_table_id, "SYNTHETC", 8);
    tbl_put(t, &h, sizeof h);
}

void tbl_put(struct tbl *t, const void *p, size_t n)
{
    if (t->len + n > sizeof t->buf) {
        fprintf(stderr, "tbl_put: table too large\n");
        abort();
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

void tbl_u8(struct tbl *t, uint8_t v) { tbl_put(t, &v, 1); }
void tbl_u16(struct tbl *t, uint16_t v) { tbl_put(t, &v, 2); }
void tbl_u32(struct tbl *t, uint32_t v) { tbl_put(t, &v, 4); }
void tbl_u64(struct tbl *t, uint64_t v) { tbl_put(t, &v, 8); }

void *tbl_finish(struct tbl *t)
{
    struct acpi_sdt_header *h = (void *)t->buf;
    h->length = (uint32_t)t->len;
    blob_sdt_checksum(t->buf, t->len);
    return blob_copy(t->buf, t->len);
}

/* ---- RSDP and root tables ----------------------------------------------------------- */

struct acpi_rsdp *blob_rsdp(uint8_t revision, const void *rsdt, const void *xsdt)
{
    struct acpi_rsdp r;
    memset(&r, 0, sizeof r);
    memcpy(r.signature, ACPI_RSDP_SIGNATURE, 8);
    memcpy(r.oem_id, "KEELTS", 6);
    r.revision = revision;
    r.rsdt_address = (uint32_t)blob_pa(rsdt);
    size_t n = ACPI_RSDP_V1_LEN;
    if (revision >= 2) {
        n = sizeof r;
        r.length = sizeof r;
        r.xsdt_address = blob_pa(xsdt);
    }
    /* The v1 checksum first: once the first 20 bytes sum to 0, the extended checksum
     * (outside them) only has to balance the rest. */
    blob_checksum(&r, ACPI_RSDP_V1_LEN, offsetof(struct acpi_rsdp, checksum));
    if (revision >= 2)
        blob_checksum(&r, sizeof r, offsetof(struct acpi_rsdp, extended_checksum));
    return blob_copy(&r, n);
}

struct acpi_sdt_header *blob_root(const char *sig, void *const *tables, size_t n)
{
    static struct tbl t;
    bool x = memcmp(sig, "XSDT", 4) == 0;
    tbl_begin(&t, sig, 1);
    for (size_t i = 0; i < n; i++) {
        if (!tables[i])
            continue;
        if (x)
            tbl_u64(&t, blob_pa(tables[i]));
        else
            tbl_u32(&t, (uint32_t)blob_pa(tables[i]));
    }
    return tbl_finish(&t);
}

/* ---- MADT ----------------------------------------------------------------------------- */

void madt_begin(struct tbl *t, uint32_t lapic, uint32_t flags)
{
    tbl_begin(t, "APIC", 5);
    tbl_u32(t, lapic);
    tbl_u32(t, flags);
}

void madt_lapic(struct tbl *t, uint8_t uid, uint8_t apic_id, uint32_t flags)
{
    struct acpi_madt_lapic e = {{MADT_LAPIC, sizeof e}, uid, apic_id, flags};
    tbl_put(t, &e, sizeof e);
}

void madt_x2apic(struct tbl *t, uint32_t x2apic_id, uint32_t uid, uint32_t flags)
{
    struct acpi_madt_x2apic e = {{MADT_X2APIC, sizeof e}, 0, x2apic_id, flags, uid};
    tbl_put(t, &e, sizeof e);
}

void madt_ioapic(struct tbl *t, uint8_t id, uint32_t addr, uint32_t gsi_base)
{
    struct acpi_madt_ioapic e = {{MADT_IOAPIC, sizeof e}, id, 0, addr, gsi_base};
    tbl_put(t, &e, sizeof e);
}

void madt_iso(struct tbl *t, uint8_t bus, uint8_t src, uint32_t gsi, uint16_t flags)
{
    struct acpi_madt_iso e = {{MADT_ISO, sizeof e}, bus, src, gsi, flags};
    tbl_put(t, &e, sizeof e);
}

void madt_lapic_nmi(struct tbl *t, uint8_t uid, uint16_t flags, uint8_t lint)
{
    struct acpi_madt_lapic_nmi e = {{MADT_LAPIC_NMI, sizeof e}, uid, flags, lint};
    tbl_put(t, &e, sizeof e);
}

void madt_x2apic_nmi(struct tbl *t, uint32_t uid, uint16_t flags, uint8_t lint)
{
    struct acpi_madt_x2apic_nmi e = {{MADT_X2APIC_NMI, sizeof e}, flags, uid, lint, {0}};
    tbl_put(t, &e, sizeof e);
}

void madt_lapic_override(struct tbl *t, uint64_t addr)
{
    struct acpi_madt_lapic_override e = {{MADT_LAPIC_OVERRIDE, sizeof e}, 0, addr};
    tbl_put(t, &e, sizeof e);
}

/* ---- DSDT, HPET, MCFG ----------------------------------------------------------------- */

void *blob_dsdt(const uint8_t *aml, size_t n)
{
    static struct tbl t;
    /* Unrelated AML first, including a use of \_S5_ that is not a definition
     * (Store (\_S5_, Local0)), which the scan must not mistake for one. */
    static const uint8_t prologue[] = {
        0x10, 0x0a, '\\', '_', 'S', 'B', '_', 0x08, 'F', 'O', 'O', '_', 0x0a, 0x2a,
        0x70, 0x5c, '_', 'S', '5', '_', 0x60,
    };
    tbl_begin(&t, "DSDT", 2);
    tbl_put(&t, prologue, sizeof prologue);
    tbl_put(&t, aml, n);
    return tbl_finish(&t);
}

size_t aml_s5(uint8_t *out, uint8_t a, uint8_t b)
{
    const uint8_t s5[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP,
                          0x08, /* PkgLength: itself, count, 2+2+1+1 element bytes */
                          0x04, AML_BYTE_PREFIX, a, AML_BYTE_PREFIX, b, AML_ZERO_OP, AML_ZERO_OP};
    memcpy(out, s5, sizeof s5);
    return sizeof s5;
}

struct acpi_hpet *blob_hpet(uint64_t base, uint32_t id, uint16_t min_tick)
{
    static struct tbl t;
    tbl_begin(&t, "HPET", 1);
    tbl_u32(&t, id);
    struct acpi_gas g = {ACPI_GAS_MEMORY, 64, 0, 0, base};
    tbl_put(&t, &g, sizeof g);
    tbl_u8(&t, 0);
    tbl_u16(&t, min_tick);
    tbl_u8(&t, 0);
    return tbl_finish(&t);
}

struct acpi_sdt_header *blob_mcfg(const struct acpi_mcfg_entry *e, size_t n)
{
    static struct tbl t;
    tbl_begin(&t, "MCFG", 1);
    tbl_u64(&t, 0);
    tbl_put(&t, e, n * sizeof *e);
    return tbl_finish(&t);
}

/* ---- the standard platform -------------------------------------------------------------- */

static struct acpi_fadt *build_fadt(const void *dsdt, const void *decoy)
{
    static struct tbl t;
    struct acpi_fadt f;
    memset(&f, 0, sizeof f);
    tbl_begin(&t, "FACP", 6);
    memcpy(&f.h, t.buf, sizeof f.h);
    f.dsdt = (uint32_t)blob_pa(decoy);
    f.x_dsdt = blob_pa(dsdt);
    f.sci_int = 9;
    f.smi_cmd = BP_SMI_CMD;
    f.acpi_enable = BP_ACPI_ENABLE;
    f.acpi_disable = 0xf0;
    f.pm1a_evt_blk = 0xb000;
    f.pm1a_cnt_blk = BP_PM1A_LEGACY;
    f.pm1b_cnt_blk = BP_PM1B;
    f.pm_tmr_blk = 0xb008;
    f.pm1_evt_len = 4;
    f.pm1_cnt_len = 2;
    f.pm_tmr_len = 4;
    f.iapc_boot_arch = ACPI_BOOT_ARCH_LEGACY_DEVICES | ACPI_BOOT_ARCH_8042;
    f.flags = ACPI_FADT_TMR_VAL_EXT | ACPI_FADT_RESET_REG_SUP;
    f.reset_reg = (struct acpi_gas){ACPI_GAS_IO, 8, 0, 1, 0xcf9};
    f.reset_value = 0x06;
    f.x_pm1a_cnt_blk = (struct acpi_gas){ACPI_GAS_IO, 16, 0, 2, BP_PM1A_X};
    t.len = 0;
    tbl_put(&t, &f, sizeof f);
    return tbl_finish(&t);
}

static void *build_madt(void)
{
    static struct tbl t;
    madt_begin(&t, BP_LAPIC, ACPI_MADT_PCAT_COMPAT);
    madt_lapic(&t, 0, 0, ACPI_MADT_CPU_ENABLED);
    madt_lapic(&t, 1, 1, ACPI_MADT_CPU_ENABLED);
    madt_lapic(&t, 2, 2, 0);                            /* unusable: not stored */
    madt_lapic(&t, 3, 3, ACPI_MADT_CPU_ONLINE_CAPABLE); /* hot-pluggable */
    madt_x2apic(&t, 0x100, 0x100, ACPI_MADT_CPU_ENABLED);
    madt_ioapic(&t, 2, BP_IOAPIC, 0);
    madt_iso(&t, 0, 0, 2, 0);
    madt_iso(&t, 0, 9, 9, 0x000d);
    madt_lapic_nmi(&t, 0xff, 0x0005, 1);
    madt_x2apic_nmi(&t, 0x100, 0, 1);
    madt_lapic_override(&t, BP_LAPIC_OVERRIDE);
    static const uint8_t unknown[] = {0x7f, 4, 0xaa, 0xbb}; /* a type Keel ignores */
    tbl_put(&t, unknown, sizeof unknown);
    return tbl_finish(&t);
}

void blob_rebuild_roots(struct blob_platform *p)
{
    void *tables[] = {p->fadt, p->madt, p->hpet, p->mcfg, p->waet};
    p->xsdt = blob_root("XSDT", tables, ARRAY_SIZE(tables));
    p->rsdt = blob_root("RSDT", tables, ARRAY_SIZE(tables));
    p->rsdp = blob_rsdp(2, p->rsdt, p->xsdt);
}

void blob_build_platform(struct blob_platform *p, bool with_hpet, bool with_mcfg)
{
    static struct tbl t;
    uint8_t aml[32];
    memset(p, 0, sizeof *p);

    p->dsdt = blob_dsdt(aml, aml_s5(aml, BP_SLP_A, BP_SLP_B));
    p->dsdt_decoy = blob_dsdt(aml, aml_s5(aml, 1, 1));
    p->fadt = build_fadt(p->dsdt, p->dsdt_decoy);
    p->madt = build_madt();
    if (with_hpet)
        p->hpet = blob_hpet(BP_HPET_BASE, BP_HPET_ID, 0x80);
    if (with_mcfg) {
        const struct acpi_mcfg_entry e[] = {
            {BP_ECAM0, 0, 0, 255, 0},
            {BP_ECAM1, 1, 0x10, 0x1f, 0},
        };
        p->mcfg = blob_mcfg(e, ARRAY_SIZE(e));
    }
    tbl_begin(&t, "WAET", 1);
    tbl_u32(&t, 2);
    p->waet = tbl_finish(&t);
    blob_rebuild_roots(p);
}
