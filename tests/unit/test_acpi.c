/* Host tests for the ACPI table parser (drivers/acpi.c) on synthetic tables.
 * SOURCES: drivers/acpi.c vmm/lib/printf.c tests/unit/acpi_blobs.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/acpi.h"
#include "tests/unit/acpi_blobs.h"
#include "tests/unit/console_capture.h"

/* Builds "ACPI: SIG at 0xADDR: rest" the way the parser names a table. */
static const char *at(const char *sig, const void *table, const char *rest)
{
    static char buf[4][256];
    static int k;
    char *b = buf[k++ & 3];
    snprintf(b, 256, "ACPI: %s at 0x%lx: %s", sig, (unsigned long)blob_pa(table), rest);
    return b;
}

static int setup(void **state)
{
    (void)state;
    capture_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    blob_free_all();
    return 0;
}

static struct acpi_info info;

static int parse(const struct blob_platform *p)
{
    return acpi_parse(blob_pa(p->rsdp), &info);
}

/* ---- the good platform -------------------------------------------------------------- */

static void check_madt(const struct acpi_info *a)
{
    assert_true(a->have_madt);
    assert_int_equal(a->lapic_address, BP_LAPIC_OVERRIDE);
    assert_true(a->lapic_overridden);
    assert_true(a->pcat_compat);
    assert_int_equal(a->cpus_listed, 5);
    assert_int_equal(a->cpus_enabled, 3);
    assert_int_equal(a->cpus_dropped, 0);
    assert_int_equal(a->cpu_count, 4);
    const uint32_t ids[] = {0, 1, 3, 0x100};
    const bool enabled[] = {true, true, false, true};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a->cpus[i].apic_id, ids[i]);
        assert_int_equal(a->cpus[i].uid, ids[i]);
        assert_int_equal(a->cpus[i].enabled, enabled[i]);
        assert_int_equal(a->cpus[i].online_capable, !enabled[i]);
        assert_int_equal(a->cpus[i].x2apic_entry, i == 3);
    }
    assert_int_equal(a->ioapic_count, 1);
    assert_int_equal(a->ioapics[0].id, 2);
    assert_int_equal(a->ioapics[0].address, BP_IOAPIC);
    assert_int_equal(a->ioapics[0].gsi_base, 0);
    assert_int_equal(a->iso_count, 2);
    assert_int_equal(a->isos[0].source_irq, 0);
    assert_int_equal(a->isos[0].gsi, 2);
    assert_int_equal(a->isos[1].source_irq, 9);
    assert_int_equal(a->isos[1].gsi, 9);
    assert_int_equal(a->isos[1].flags, 0xd);
    assert_int_equal(a->nmi_count, 2);
    assert_int_equal(a->nmis[0].uid, ACPI_UID_ALL);
    assert_int_equal(a->nmis[0].lint, 1);
    assert_int_equal(a->nmis[0].flags, 5);
    assert_int_equal(a->nmis[1].uid, 0x100);
}

static void check_fadt(const struct acpi_info *a, const struct blob_platform *p)
{
    assert_true(a->have_fadt);
    assert_int_equal(a->fadt_address, blob_pa(p->fadt));
    assert_int_equal(a->fadt_revision, 6);
    /* X_DSDT wins over the legacy field, so the decoy's 1/1 must not show up. */
    assert_int_equal(a->dsdt_address, blob_pa(p->dsdt));
    assert_true(a->s5_valid);
    assert_int_equal(a->slp_typ_a, BP_SLP_A);
    assert_int_equal(a->slp_typ_b, BP_SLP_B);
    assert_true(a->pm1a_cnt.present);
    assert_int_equal(a->pm1a_cnt.space, ACPI_GAS_IO);
    assert_int_equal(a->pm1a_cnt.address, BP_PM1A_X); /* X_PM1a_CNT_BLK preferred */
    assert_true(a->pm1b_cnt.present);
    assert_int_equal(a->pm1b_cnt.address, BP_PM1B);
    assert_int_equal(a->smi_cmd, BP_SMI_CMD);
    assert_int_equal(a->acpi_enable, BP_ACPI_ENABLE);
    assert_int_equal(a->acpi_disable, 0xf0);
    assert_int_equal(a->sci_irq, 9);
    assert_true(a->reset_supported);
    assert_int_equal(a->reset_reg.space, ACPI_GAS_IO);
    assert_int_equal(a->reset_reg.address, 0xcf9);
    assert_int_equal(a->reset_value, 6);
    assert_true(a->has_8042);
    assert_false(a->hw_reduced);
    assert_true(a->pm_timer.present);
    assert_int_equal(a->pm_timer.address, 0xb008);
    assert_true(a->pm_timer_32bit);
}

static void test_good_platform(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    assert_int_equal(parse(&p), 0);
    if (capture_count())
        capture_dump();
    assert_int_equal(capture_count(), 0); /* a clean platform parses silently */

    assert_int_equal(info.rsdp, blob_pa(p.rsdp));
    assert_int_equal(info.rsdp_revision, 2);
    assert_string_equal(info.oem_id, "KEELTS");
    assert_true(info.use_xsdt);
    assert_int_equal(info.root_table, blob_pa(p.xsdt));
    assert_int_equal(info.table_count, 5);
    assert_string_equal(info.tables[4].signature, "WAET");

    check_madt(&info);
    check_fadt(&info, &p);

    assert_true(info.have_hpet);
    assert_int_equal(info.hpet_address, BP_HPET_BASE);
    assert_int_equal(info.hpet_id, BP_HPET_ID);
    assert_int_equal(info.hpet_min_tick, 0x80);

    assert_true(info.have_mcfg);
    assert_int_equal(info.mcfg_count, 2);
    assert_int_equal(info.mcfg[0].base, BP_ECAM0);
    assert_int_equal(info.mcfg[0].segment, 0);
    assert_int_equal(info.mcfg[0].start_bus, 0);
    assert_int_equal(info.mcfg[0].end_bus, 255);
    assert_int_equal(info.mcfg[1].base, BP_ECAM1);
    assert_int_equal(info.mcfg[1].segment, 1);
    assert_int_equal(info.mcfg[1].start_bus, 0x10);
    assert_int_equal(info.mcfg[1].end_bus, 0x1f);
}

static void test_report_lines(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    assert_int_equal(parse(&p), 0);
    acpi_report(&info);
    char want[256];
    snprintf(want, sizeof want, "ACPI: RSDP at 0x%lx: revision 2, OEM \"KEELTS\", XSDT at 0x%lx "
             "with 5 tables", (unsigned long)blob_pa(p.rsdp), (unsigned long)blob_pa(p.xsdt));
    assert_logged(want);
    assert_logged("ACPI: tables: FACP APIC HPET MCFG WAET");
    assert_logged("ACPI: MADT: 5 CPUs (3 enabled; 1 x2APIC entries; APIC ids up to 256), 1 IOAPICs, "
                  "LAPIC at 0x1fee00000 (override), 2 overrides, 2 NMIs, PC-AT 8259s");
    assert_logged("ACPI: IOAPIC id 2 at 0xfec00000, GSI base 0");
    assert_logged("ACPI: HPET: base 0xfed00000, id 0x8086a201 (3 comparators), number 0, "
                  "min tick 128");
    assert_logged("ACPI: MCFG: segment 0 buses 0-255 at 0xb0000000");
    assert_logged("ACPI: MCFG: segment 1 buses 16-31 at 0xc0000000");
    assert_logged("ACPI: FADT: rev 6, PM1a_CNT io 0x604, PM1b_CNT io 0x608, S5 SLP_TYP 5/6, "
                  "SMI_CMD 0xb2 enable 0xf1, reset io 0xcf9 value 0x6, SCI IRQ 9, 8042 yes");
    assert_not_logged("ACPI: no ");
}

/* ---- RSDP ------------------------------------------------------------------------------ */

static void test_no_rsdp(void **state)
{
    (void)state;
    assert_true(acpi_parse(0, &info) < 0);
    assert_logged("ACPI: no RSDP");
    assert_false(info.have_madt);
}

static void test_rsdp_bad_signature(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.rsdp->signature[0] = 'X';
    assert_true(parse(&p) < 0);
    assert_logged(at("RSDP", p.rsdp, "bad signature"));
}

static void test_rsdp_bad_checksum(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.rsdp->checksum ^= 0x55;
    assert_true(parse(&p) < 0);
    assert_logged(at("RSDP", p.rsdp, "bad checksum (first 20 bytes sum to 0x"));
    assert_false(info.have_madt || info.have_fadt || info.have_hpet || info.have_mcfg);
}

static void test_rsdp_rev0_uses_rsdt(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    /* A 20-byte blob: reading the v2 fields would hit the guard page. */
    p.rsdp = blob_rsdp(0, p.rsdt, NULL);
    assert_int_equal(parse(&p), 0);
    assert_int_equal(capture_count(), 0);
    assert_int_equal(info.rsdp_revision, 0);
    assert_false(info.use_xsdt);
    assert_int_equal(info.root_table, blob_pa(p.rsdt));
    check_madt(&info);
    check_fadt(&info, &p);
    assert_true(info.have_hpet && info.have_mcfg);
}

static void test_rsdp_bad_extended_checksum(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.rsdp->extended_checksum ^= 1;
    assert_int_equal(parse(&p), 0);
    assert_logged(at("RSDP", p.rsdp, "bad extended checksum"));
    assert_logged("using the RSDT");
    assert_false(info.use_xsdt);
    check_madt(&info);
}

static void test_rsdp_bad_length(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.rsdp->length = 100000; /* summing that much would run off the blob */
    blob_checksum(p.rsdp, 20, offsetof(struct acpi_rsdp, checksum));
    assert_int_equal(parse(&p), 0);
    assert_logged(at("RSDP", p.rsdp, "length 100000 invalid, using the RSDT"));
    assert_false(info.use_xsdt);
}

static void test_rsdp_xsdt_zero_uses_rsdt(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.rsdp = blob_rsdp(2, p.rsdt, NULL);
    assert_int_equal(parse(&p), 0);
    assert_logged("XSDT address is 0, using the RSDT");
    assert_false(info.use_xsdt);
    check_fadt(&info, &p);
}

/* ---- root tables -------------------------------------------------------------------------- */

static void test_xsdt_bad_checksum_falls_back(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.xsdt->oem_revision++; /* content changed, checksum not */
    assert_int_equal(parse(&p), 0);
    assert_logged(at("XSDT", p.xsdt, "bad checksum (bytes sum to 0x01), skipped"));
    assert_logged("falling back to the RSDT");
    assert_false(info.use_xsdt);
    assert_int_equal(info.root_table, blob_pa(p.rsdt));
    check_madt(&info);
    check_fadt(&info, &p);
    assert_true(info.have_hpet && info.have_mcfg);
}

static void test_xsdt_and_rsdt_bad(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.xsdt->oem_revision++;
    p.rsdt->oem_revision++;
    assert_true(parse(&p) < 0);
    assert_logged(at("XSDT", p.xsdt, "bad checksum"));
    assert_logged(at("RSDT", p.rsdt, "bad checksum"));
    assert_logged("no usable root table");
    assert_false(info.have_madt);
}

static void test_root_wrong_signature(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    /* XSDT address pointing at the RSDT: the signature gives it away. */
    p.rsdp = blob_rsdp(2, p.rsdt, p.rsdt);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("XSDT", p.rsdt, "signature is \"RSDT\", skipped"));
    assert_false(info.use_xsdt);
    check_madt(&info);
}

static void test_xsdt_shorter_than_header(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.xsdt->length = 20;
    blob_sdt_checksum(p.xsdt, 20);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("XSDT", p.xsdt, "length 20 is below the minimum 36, skipped"));
    assert_false(info.use_xsdt);
}

static void test_root_length_not_multiple(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    /* Cut the XSDT mid-entry: the last (WAET) pointer is only half there. */
    size_t len = p.xsdt->length - 4;
    p.xsdt = blob_copy(p.xsdt, len);
    p.xsdt->length = (uint32_t)len;
    blob_sdt_checksum(p.xsdt, len);
    p.rsdp = blob_rsdp(2, p.rsdt, p.xsdt);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("XSDT", p.xsdt, "4 trailing bytes after the last entry ignored"));
    assert_true(info.use_xsdt);
    assert_int_equal(info.table_count, 4);
    check_madt(&info);
}

static void test_root_null_entry(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    uint64_t zero = 0;
    memcpy((uint8_t *)p.xsdt + sizeof(struct acpi_sdt_header) + 8 * 2, &zero, 8); /* HPET */
    blob_sdt_checksum(p.xsdt, p.xsdt->length);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("XSDT", p.xsdt, "entry 2 is a null pointer, skipped"));
    assert_false(info.have_hpet);
    assert_true(info.have_madt && info.have_fadt && info.have_mcfg);
}

/* ---- one bad table does not spoil the others -------------------------------------------- */

static void test_bad_hpet_skipped(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.hpet->min_tick++;
    assert_int_equal(parse(&p), 0);
    assert_logged(at("HPET", p.hpet, "bad checksum (bytes sum to 0x01), skipped"));
    assert_false(info.have_hpet);
    assert_int_equal(info.hpet_address, 0);
    check_madt(&info);
    check_fadt(&info, &p);
    assert_true(info.have_mcfg);
    capture_reset();
    acpi_report(&info);
    assert_logged("ACPI: no HPET table");
}

static void test_bad_madt_skipped(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    ((uint8_t *)p.madt)[50] ^= 0xff;
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MADT", p.madt, "bad checksum"));
    assert_false(info.have_madt);
    assert_int_equal(info.cpu_count, 0);
    check_fadt(&info, &p);
    assert_true(info.have_hpet && info.have_mcfg);
    capture_reset();
    acpi_report(&info);
    assert_logged("ACPI: no MADT table");
}

static void test_table_shorter_than_header(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.madt->length = 20;
    blob_sdt_checksum(p.madt, 20);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MADT", p.madt, "length 20 is below the minimum 44, skipped"));
    assert_false(info.have_madt);
    check_fadt(&info, &p);
}

static void test_table_longer_than_limit(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.mcfg->length = 0x10000000; /* checksumming this would read 256 MiB */
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MCFG", p.mcfg, "length 268435456 is above the limit 1048576, skipped"));
    assert_false(info.have_mcfg);
    assert_true(info.have_madt && info.have_hpet && info.have_fadt);
}

static void test_fadt_too_short(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.fadt->h.length = 100;
    blob_sdt_checksum(p.fadt, 100);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("FADT", p.fadt, "length 100 is below the minimum 116, skipped"));
    assert_false(info.have_fadt);
    assert_false(info.s5_valid);
    assert_true(info.have_madt);
}

static void test_duplicate_madt_ignored(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, 0xfee00000, 0);
    madt_lapic(t, 7, 7, ACPI_MADT_CPU_ENABLED);
    void *second = tbl_finish(t);
    free(t);
    void *tables[] = {p.madt, second, p.fadt};
    p.xsdt = blob_root("XSDT", tables, 3);
    p.rsdp = blob_rsdp(2, p.rsdt, p.xsdt);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MADT", second, "a valid one was already found, ignored"));
    check_madt(&info);
}

/* ---- MADT entries --------------------------------------------------------------------------- */

/* Installs a freshly built MADT into the platform. */
static void use_madt(struct blob_platform *p, struct tbl *t)
{
    p->madt = tbl_finish(t);
    blob_rebuild_roots(p);
}

static void test_madt_zero_length_entry(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    madt_lapic(t, 0, 0, ACPI_MADT_CPU_ENABLED);
    tbl_u8(t, MADT_LAPIC); /* length 0: a naive walker never advances */
    tbl_u8(t, 0);
    tbl_u32(t, 0);
    tbl_u16(t, 0);
    madt_lapic(t, 1, 1, ACPI_MADT_CPU_ENABLED);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MADT", p.madt, "entry type 0 at offset 52 has length 0, rest of table "
                                     "ignored"));
    assert_true(info.have_madt);
    assert_int_equal(info.cpu_count, 1); /* the entry before it survives */
    assert_int_equal(info.cpus[0].apic_id, 0);
    assert_true(info.have_fadt);
}

static void test_madt_entry_length_one(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    tbl_u8(t, 0x42);
    tbl_u8(t, 1);
    madt_lapic(t, 1, 1, ACPI_MADT_CPU_ENABLED);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged("entry type 66 at offset 44 has length 1, rest of table ignored");
    assert_int_equal(info.cpu_count, 0);
    assert_logged("lists no usable CPU");
}

static void test_madt_entry_past_end(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    madt_lapic(t, 0, 0, ACPI_MADT_CPU_ENABLED);
    madt_ioapic(t, 1, BP_IOAPIC, 0);
    t->buf[t->len - 12 + 1] = 40; /* the IOAPIC claims 40 bytes; 12 are left */
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("MADT", p.madt, "entry type 1 at offset 52 (length 40) runs past the end "
                                     "of the table (length 64), rest of table ignored"));
    assert_int_equal(info.cpu_count, 1);
    assert_int_equal(info.ioapic_count, 0);
}

static void test_madt_entry_too_short_for_type(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    const uint8_t short_x2apic[] = {MADT_X2APIC, 8, 0, 0, 5, 0, 0, 0};
    tbl_put(t, short_x2apic, sizeof short_x2apic);
    madt_lapic(t, 1, 1, ACPI_MADT_CPU_ENABLED);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged("entry type 9 at offset 44 is 8 bytes, needs 16, skipped");
    /* Skipped, not fatal: the next entry is still read. */
    assert_int_equal(info.cpu_count, 1);
    assert_int_equal(info.cpus[0].apic_id, 1);
}

static void test_madt_stray_byte(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    madt_lapic(t, 0, 0, ACPI_MADT_CPU_ENABLED);
    tbl_u8(t, MADT_LAPIC); /* a type byte with no length byte after it */
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged("1 stray bytes at offset 52 ignored");
    assert_int_equal(info.cpu_count, 1);
}

static void test_madt_too_many_cpus(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    const uint32_t n = ACPI_MAX_CPUS + 6;
    for (uint32_t i = 0; i < n; i++)
        madt_x2apic(t, i, i, ACPI_MADT_CPU_ENABLED);
    for (int i = 0; i < ACPI_MAX_IOAPICS + 2; i++)
        madt_ioapic(t, (uint8_t)i, BP_IOAPIC + 0x1000u * (uint32_t)i, 24u * (uint32_t)i);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_int_equal(info.cpus_listed, n);
    assert_int_equal(info.cpus_enabled, n);
    assert_int_equal(info.cpu_count, ACPI_MAX_CPUS);
    assert_int_equal(info.cpus_dropped, 6);
    assert_int_equal(info.cpus[ACPI_MAX_CPUS - 1].apic_id, ACPI_MAX_CPUS - 1);
    char want[128];
    snprintf(want, sizeof want, "ACPI: MADT: 6 usable CPUs beyond the limit of %u ignored",
             ACPI_MAX_CPUS);
    assert_logged(want);
    assert_int_equal(info.ioapic_count, ACPI_MAX_IOAPICS);
    assert_logged("IOAPIC id 16 ignored");
}

/* A server of the kind users boot from a stick: the first 255 threads as type 0
 * entries, the rest as Processor Local x2APIC entries (type 9) with sparse IDs far
 * above 255, one hot-pluggable, and NMI wiring through x2APIC NMI entries (type 0xA). */
static void test_madt_x2apic_big_machine(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, ACPI_MADT_PCAT_COMPAT);
    for (uint32_t i = 0; i < 255; i++)
        madt_lapic(t, (uint8_t)i, (uint8_t)i, ACPI_MADT_CPU_ENABLED);
    const uint32_t x2 = 200;
    for (uint32_t i = 0; i < x2; i++)
        madt_x2apic(t, 0x100 + 4 * i, 1000 + i, ACPI_MADT_CPU_ENABLED);
    madt_x2apic(t, 0x10000, 5000, ACPI_MADT_CPU_ONLINE_CAPABLE);
    madt_x2apic(t, 0x20000, 5001, 0); /* neither: counted, never stored */
    madt_x2apic_nmi(t, ACPI_UID_ALL, 5, 1);
    madt_x2apic_nmi(t, 1003, 0, 0);
    madt_ioapic(t, 0, BP_IOAPIC, 0);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_not_logged("beyond the limit");

    assert_int_equal(info.cpus_listed, 255 + x2 + 2);
    assert_int_equal(info.cpus_enabled, 255 + x2);
    assert_int_equal(info.cpu_count, 255 + x2 + 1);
    assert_int_equal(info.cpus_dropped, 0);
    assert_true(info.cpu_count > 64);
    for (uint32_t i = 0; i < 255; i++) {
        assert_int_equal(info.cpus[i].apic_id, i);
        assert_false(info.cpus[i].x2apic_entry);
    }
    for (uint32_t i = 0; i < x2; i++) {
        const struct acpi_cpu *c = &info.cpus[255 + i];
        assert_int_equal(c->apic_id, 0x100 + 4 * i);
        assert_int_equal(c->uid, 1000 + i);
        assert_true(c->enabled);
        assert_true(c->x2apic_entry);
    }
    const struct acpi_cpu *hot = &info.cpus[255 + x2];
    assert_int_equal(hot->apic_id, 0x10000);
    assert_false(hot->enabled);
    assert_true(hot->online_capable);

    assert_int_equal(info.nmi_count, 2);
    assert_int_equal(info.nmis[0].uid, ACPI_UID_ALL);
    assert_int_equal(info.nmis[0].lint, 1);
    assert_int_equal(info.nmis[0].flags, 5);
    assert_int_equal(info.nmis[1].uid, 1003);
    assert_int_equal(info.nmis[1].lint, 0);

    acpi_report(&info);
    assert_logged("ACPI: MADT: 457 CPUs (455 enabled; 201 x2APIC entries; APIC ids up to 65536), "
                  "1 IOAPICs");
}

/* Firmware that lists every CPU as type 9, small IDs included, and only x2APIC NMIs. */
static void test_madt_x2apic_only(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    for (uint32_t i = 0; i < 128; i++)
        madt_x2apic(t, 2 * i, i, ACPI_MADT_CPU_ENABLED); /* 0, 2, ... 254 */
    madt_x2apic_nmi(t, ACPI_UID_ALL, 0, 1);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_int_equal(info.cpu_count, 128);
    assert_int_equal(info.cpus_enabled, 128);
    assert_int_equal(info.cpus[127].apic_id, 254);
    assert_true(info.cpus[0].x2apic_entry);
    assert_int_equal(info.nmi_count, 1);
    /* A truncated x2APIC NMI entry (needs 12 bytes) is named and skipped. */
    t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    madt_x2apic(t, 0x300, 0, ACPI_MADT_CPU_ENABLED);
    static const uint8_t short_nmi[] = {MADT_X2APIC_NMI, 8, 0, 0, 0xff, 0xff, 0xff, 0xff};
    tbl_put(t, short_nmi, sizeof short_nmi);
    use_madt(&p, t);
    free(t);
    capture_reset();
    assert_int_equal(parse(&p), 0);
    assert_logged("entry type 10 at offset 60 is 8 bytes, needs 12, skipped");
    assert_int_equal(info.nmi_count, 0);
    assert_int_equal(info.cpus[0].apic_id, 0x300);
}

static void test_madt_duplicate_apic_id(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    struct tbl *t = malloc(sizeof *t);
    madt_begin(t, BP_LAPIC, 0);
    madt_lapic(t, 0, 0, ACPI_MADT_CPU_ENABLED);
    madt_x2apic(t, 0, 0, ACPI_MADT_CPU_ENABLED);
    use_madt(&p, t);
    free(t);
    assert_int_equal(parse(&p), 0);
    assert_logged("APIC id 0 listed twice, second entry ignored");
    assert_int_equal(info.cpu_count, 1);
    assert_int_equal(info.cpus_listed, 1);
    assert_false(info.cpus[0].x2apic_entry);
}

/* ---- HPET / MCFG --------------------------------------------------------------------------- */

static void test_missing_hpet_mcfg_reported(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, false, false);
    assert_int_equal(parse(&p), 0);
    assert_false(info.have_hpet);
    assert_false(info.have_mcfg);
    assert_true(info.have_madt && info.have_fadt);
    acpi_report(&info);
    assert_logged("ACPI: no HPET table");
    assert_logged("ACPI: no MCFG table");
    assert_logged("ACPI: tables: FACP APIC WAET");
}

static void test_hpet_not_memory(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.hpet->base.space_id = ACPI_GAS_IO;
    blob_sdt_checksum(p.hpet, p.hpet->h.length);
    assert_int_equal(parse(&p), 0);
    assert_logged(at("HPET", p.hpet, "base is not a memory address (space 1, address "
                                     "0xfed00000), skipped"));
    assert_false(info.have_hpet);
    assert_int_equal(info.hpet_address, 0);
}

static void test_mcfg_bad_entries(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    const struct acpi_mcfg_entry e[] = {
        {BP_ECAM0, 0, 10, 5, 0},           /* start after end */
        {0, 1, 0, 255, 0},                 /* no base */
        {0xb0080000ull, 2, 0, 255, 0},     /* not 1 MiB aligned */
        {0xfffffffffff00000ull, 3, 0, 255, 0}, /* wraps */
        {BP_ECAM1, 4, 0, 63, 0},
    };
    p.mcfg = blob_mcfg(e, ARRAY_SIZE(e));
    blob_rebuild_roots(&p);
    assert_int_equal(parse(&p), 0);
    assert_logged("entry 0 (segment 0 buses 10-5 at 0xb0000000) is invalid, skipped");
    assert_logged("entry 1 (segment 1 buses 0-255 at 0x0) is invalid, skipped");
    assert_logged("entry 2 (segment 2 buses 0-255 at 0xb0080000) is invalid, skipped");
    assert_logged("entry 3 wraps the address space, skipped");
    assert_true(info.have_mcfg);
    assert_int_equal(info.mcfg_count, 1);
    assert_int_equal(info.mcfg[0].segment, 4);
    assert_int_equal(info.mcfg[0].end_bus, 63);
}

static void test_mcfg_nothing_usable(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    const struct acpi_mcfg_entry e[] = {{0, 0, 0, 255, 0}};
    p.mcfg = blob_mcfg(e, 1);
    blob_rebuild_roots(&p);
    assert_int_equal(parse(&p), 0);
    assert_logged("no usable entry");
    assert_false(info.have_mcfg);
    assert_int_equal(info.mcfg_count, 0);
}

/* ---- FADT and \_S5_ ------------------------------------------------------------------------ */

static void test_fadt_v1(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    /* An ACPI 1.0 FADT ends at Flags: legacy DSDT and ports, no reset register. */
    struct acpi_fadt *f = blob_copy(p.fadt, ACPI_FADT_V1_LEN);
    f->h.length = ACPI_FADT_V1_LEN;
    f->h.revision = 1;
    f->iapc_boot_arch = 0; /* reserved in 1.0: must not be read as "no 8042" */
    blob_sdt_checksum(f, ACPI_FADT_V1_LEN);
    p.fadt = f;
    blob_rebuild_roots(&p);
    assert_int_equal(parse(&p), 0);
    assert_true(info.have_fadt);
    assert_int_equal(info.dsdt_address, blob_pa(p.dsdt_decoy));
    assert_true(info.s5_valid);
    assert_int_equal(info.slp_typ_a, 1);
    assert_int_equal(info.slp_typ_b, 1);
    assert_int_equal(info.pm1a_cnt.address, BP_PM1A_LEGACY);
    assert_false(info.reset_supported); /* RESET_REG_SUP set, but no register in 116 bytes */
    assert_logged("reset register (space 0, address 0x0) unusable");
    assert_true(info.has_8042);
}

/* Found by tests/fuzz/fuzz_acpi.c: a FADT whose length ends inside X_DSDT (or the reset
 * register) used the bytes that were there as a whole address. A field the length cuts
 * is absent: the legacy DSDT field applies, and there is no reset register. */
static void test_fadt_field_cut_by_length(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    /* Blobs sit below 4 GiB, so X_DSDT's low half alone would still reach the DSDT. */
    const uint32_t cut = __builtin_offsetof(struct acpi_fadt, x_dsdt) + 4;
    struct acpi_fadt *f = blob_copy(p.fadt, cut);
    f->h.length = cut;
    blob_sdt_checksum(f, cut);
    p.fadt = f;
    blob_rebuild_roots(&p);
    assert_int_equal(parse(&p), 0);
    assert_true(info.have_fadt);
    assert_int_equal(info.dsdt_address, blob_pa(p.dsdt_decoy));
    assert_int_equal(info.slp_typ_a, 1);
    assert_true(info.reset_supported); /* the reset register is whole in 144 bytes */

    /* Cut in the middle of the reset register's address. */
    blob_build_platform(&p, true, true);
    const uint32_t cut2 = __builtin_offsetof(struct acpi_fadt, reset_reg) + 8;
    f = blob_copy(p.fadt, cut2);
    f->h.length = cut2;
    blob_sdt_checksum(f, cut2);
    p.fadt = f;
    blob_rebuild_roots(&p);
    assert_int_equal(parse(&p), 0);
    assert_true(info.have_fadt);
    assert_false(info.reset_supported);
    assert_false(info.reset_reg.present);
    assert_logged("reset register (space 0, address 0x0) unusable");
}

static void test_fadt_no_8042(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.fadt->iapc_boot_arch = ACPI_BOOT_ARCH_LEGACY_DEVICES;
    p.fadt->flags &= ~(uint32_t)ACPI_FADT_RESET_REG_SUP;
    blob_sdt_checksum(p.fadt, p.fadt->h.length);
    assert_int_equal(parse(&p), 0);
    assert_false(info.has_8042);
    assert_false(info.reset_supported);
    acpi_report(&info);
    assert_logged("reset none value 0x6, SCI IRQ 9, 8042 no");
}

static void test_fadt_pm1_not_a_port(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.fadt->x_pm1a_cnt_blk.address = 0x12345;
    blob_sdt_checksum(p.fadt, p.fadt->h.length);
    assert_int_equal(parse(&p), 0);
    assert_logged("PM1a_CNT (space 1, address 0x12345) unusable");
    assert_false(info.pm1a_cnt.present);
}

static void test_s5_absent(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    static const uint8_t no_s5[] = {AML_NAME_OP, '_', 'S', '3', '_', AML_PACKAGE_OP, 4, 2, 1, 1};
    p.dsdt = blob_dsdt(no_s5, sizeof no_s5);
    p.fadt->x_dsdt = blob_pa(p.dsdt);
    blob_sdt_checksum(p.fadt, p.fadt->h.length);
    assert_int_equal(parse(&p), 0);
    assert_true(info.have_fadt);
    assert_false(info.s5_valid);
    assert_logged(at("DSDT", p.dsdt, "no \\_S5_ object, ACPI power-off unavailable"));
    capture_reset();
    acpi_report(&info);
    assert_logged("S5 SLP_TYP unknown");
}

static void test_s5_malformed_in_dsdt(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    uint8_t aml[32];
    size_t n = aml_s5(aml, 9, 0); /* 9 does not fit in SLP_TYP's 3 bits */
    p.dsdt = blob_dsdt(aml, n);
    p.fadt->x_dsdt = blob_pa(p.dsdt);
    blob_sdt_checksum(p.fadt, p.fadt->h.length);
    assert_int_equal(parse(&p), 0);
    assert_false(info.s5_valid);
    assert_logged(at("DSDT", p.dsdt, "malformed \\_S5_ (SLP_TYP value does not fit in 3 bits)"));
}

static void test_dsdt_bad_checksum(void **state)
{
    (void)state;
    struct blob_platform p;
    blob_build_platform(&p, true, true);
    p.dsdt->oem_revision++;
    assert_int_equal(parse(&p), 0);
    assert_true(info.have_fadt);
    assert_false(info.s5_valid);
    assert_logged(at("DSDT", p.dsdt, "bad checksum"));
    assert_logged("no usable DSDT");
}

/* AML given to acpi_find_s5 sits at the very end of a guarded blob. */
static enum acpi_s5_result find_s5(const uint8_t *aml, size_t n, uint8_t *a, uint8_t *b,
                                   const char **why)
{
    const uint8_t *copy = blob_copy(aml, n);
    *a = *b = 0xee;
    *why = NULL;
    return acpi_find_s5(copy, n, a, b, why);
}

static void test_find_s5_forms(void **state)
{
    (void)state;
    uint8_t a, b;
    const char *why;

    /* Root prefix, One/Zero opcodes. */
    const uint8_t root[] = {AML_NAME_OP, AML_ROOT_CHAR, '_', 'S', '5', '_', AML_PACKAGE_OP, 4, 2,
                            AML_ONE_OP, AML_ZERO_OP, 0};
    assert_int_equal(find_s5(root, sizeof root - 1, &a, &b, &why), ACPI_S5_FOUND);
    assert_int_equal(a, 1);
    assert_int_equal(b, 0);

    /* Two-byte PkgLength (0x40 | low nibble, then the next 8 bits) and word constants. */
    uint8_t big[80] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0x40 | 0x4, 0x04, 2,
                       AML_WORD_PREFIX, 7, 0, AML_DWORD_PREFIX, 3, 0, 0, 0};
    /* PkgLength 0x44 = 68 bytes from the PkgLength byte: the package is padded. */
    assert_int_equal(find_s5(big, 6 + 68, &a, &b, &why), ACPI_S5_FOUND);
    assert_int_equal(a, 7);
    assert_int_equal(b, 3);

    /* One-element package: both values packed in one integer. */
    const uint8_t one[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 5, 1,
                           AML_WORD_PREFIX, 0x05, 0x07};
    assert_int_equal(find_s5(one, sizeof one, &a, &b, &why), ACPI_S5_FOUND);
    assert_int_equal(a, 5);
    assert_int_equal(b, 7);

    /* A malformed candidate first, a good one later: the good one wins. */
    uint8_t two[40];
    const uint8_t bad[] = {AML_NAME_OP, '_', 'S', '5', '_', 0x70};
    memcpy(two, bad, sizeof bad);
    size_t n = sizeof bad + aml_s5(two + sizeof bad, 2, 3);
    assert_int_equal(find_s5(two, n, &a, &b, &why), ACPI_S5_FOUND);
    assert_int_equal(a, 2);
    assert_int_equal(b, 3);

    /* Only references, no definition. */
    const uint8_t ref[] = {0x70, AML_ROOT_CHAR, '_', 'S', '5', '_', 0x60};
    assert_int_equal(find_s5(ref, sizeof ref, &a, &b, &why), ACPI_S5_ABSENT);
    assert_int_equal(find_s5(ref, 0, &a, &b, &why), ACPI_S5_ABSENT);
}

static void expect_malformed(const uint8_t *aml, size_t n, const char *reason)
{
    uint8_t a, b;
    const char *why;
    assert_int_equal(find_s5(aml, n, &a, &b, &why), ACPI_S5_MALFORMED);
    assert_non_null(why);
    assert_string_equal(why, reason);
    assert_int_equal(a, 0xee); /* untouched */
}

static void test_find_s5_malformed(void **state)
{
    (void)state;
    const uint8_t not_pkg[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_BYTE_PREFIX, 5};
    expect_malformed(not_pkg, sizeof not_pkg, "_S5_ is not a package");

    const uint8_t ends_at_name[] = {AML_NAME_OP, '_', 'S', '5', '_'};
    expect_malformed(ends_at_name, sizeof ends_at_name, "_S5_ is not a package");

    const uint8_t ends_at_op[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP};
    expect_malformed(ends_at_op, sizeof ends_at_op, "PkgLength is truncated");

    const uint8_t pkglen_cut[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0xc0, 1};
    expect_malformed(pkglen_cut, sizeof pkglen_cut, "PkgLength is truncated");

    const uint8_t reserved[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0x70, 0, 2, 0, 0};
    expect_malformed(reserved, sizeof reserved, "PkgLength has reserved bits set");

    const uint8_t too_long[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0x3f, 2, 0, 0};
    expect_malformed(too_long, sizeof too_long, "package length runs past the end of the DSDT");

    const uint8_t zero_len[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 0, 2, 0, 0};
    expect_malformed(zero_len, sizeof zero_len, "PkgLength is too small");

    const uint8_t empty[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 2, 0};
    expect_malformed(empty, sizeof empty, "package is empty");

    const uint8_t not_int[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 4, 2, 0x0d, 'x'};
    expect_malformed(not_int, sizeof not_int, "SLP_TYPa is not an integer constant");

    /* The package claims 2 elements but its length ends after the first. */
    const uint8_t short_pkg[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 4, 2,
                                 AML_BYTE_PREFIX, 5};
    expect_malformed(short_pkg, sizeof short_pkg, "SLP_TYPb is not an integer constant");

    /* A byte constant whose value byte lies past the end of the buffer (guard page). */
    const uint8_t cut_const[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 4, 2,
                                 AML_ZERO_OP, AML_BYTE_PREFIX};
    expect_malformed(cut_const, sizeof cut_const, "SLP_TYPb is not an integer constant");

    const uint8_t ones[] = {AML_NAME_OP, '_', 'S', '5', '_', AML_PACKAGE_OP, 4, 2, AML_ONES_OP,
                            AML_ZERO_OP};
    expect_malformed(ones, sizeof ones, "SLP_TYP value does not fit in 3 bits");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_good_platform),
        T(test_report_lines),
        T(test_no_rsdp),
        T(test_rsdp_bad_signature),
        T(test_rsdp_bad_checksum),
        T(test_rsdp_rev0_uses_rsdt),
        T(test_rsdp_bad_extended_checksum),
        T(test_rsdp_bad_length),
        T(test_rsdp_xsdt_zero_uses_rsdt),
        T(test_xsdt_bad_checksum_falls_back),
        T(test_xsdt_and_rsdt_bad),
        T(test_root_wrong_signature),
        T(test_xsdt_shorter_than_header),
        T(test_root_length_not_multiple),
        T(test_root_null_entry),
        T(test_bad_hpet_skipped),
        T(test_bad_madt_skipped),
        T(test_table_shorter_than_header),
        T(test_table_longer_than_limit),
        T(test_fadt_too_short),
        T(test_duplicate_madt_ignored),
        T(test_madt_zero_length_entry),
        T(test_madt_entry_length_one),
        T(test_madt_entry_past_end),
        T(test_madt_entry_too_short_for_type),
        T(test_madt_stray_byte),
        T(test_madt_too_many_cpus),
        T(test_madt_duplicate_apic_id),
        T(test_madt_x2apic_big_machine),
        T(test_madt_x2apic_only),
        T(test_missing_hpet_mcfg_reported),
        T(test_hpet_not_memory),
        T(test_mcfg_bad_entries),
        T(test_mcfg_nothing_usable),
        T(test_fadt_v1),
        T(test_fadt_field_cut_by_length),
        T(test_fadt_no_8042),
        T(test_fadt_pm1_not_a_port),
        T(test_s5_absent),
        T(test_s5_malformed_in_dsdt),
        T(test_dsdt_bad_checksum),
        T(test_find_s5_forms),
        T(test_find_s5_malformed),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
