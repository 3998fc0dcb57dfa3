/* The guest ACPI table builder (vmm/guest_acpi.c): every checksum, the layout, the RSDP
 * scan of 0xE0000-0xFFFFF, Keel's own ACPI parser (drivers/acpi.c) reading the tables
 * back for 1, 2, 4 and 16 vCPUs, the DSDT's AML byte for byte, an independent decoder
 * (ACPICA's iasl -d) on each table, and the refusals.
 *
 * Keel's parser takes physical addresses as pointers, so the tables are built in a
 * mapping at the guest-physical addresses themselves: 0xE0000-0xFFFFF of this process.
 * SOURCES: vmm/guest_acpi.c drivers/acpi.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "drivers/acpi.h"
#include "drivers/acpi_tables.h"
#include "tests/unit/console_capture.h"
#include "vmm/dev/acpi_pm.h"
#include "vmm/guest_acpi.h"

#define AREA GUEST_ACPI_AREA
#define AREA_LEN (GUEST_ACPI_AREA_END - GUEST_ACPI_AREA)
#define POISON 0xa5

static uint8_t *area; /* host address == guest-physical address */

static uint8_t *at(gpa_t gpa)
{
    return (uint8_t *)(uintptr_t)gpa;
}

static struct guest_acpi_cfg cfg_for(uint32_t vcpus)
{
    return (struct guest_acpi_cfg){.vcpus = vcpus, .lapic_base = 0xfee00000, .ioapic_base = 0xfec00000,
                                   .ioapic_id = 0, .pm_base = ACPI_PM_BASE, .i8042 = true};
}

static int group_setup(void **state)
{
    (void)state;
    void *m = mmap((void *)(uintptr_t)AREA, AREA_LEN, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != (void *)(uintptr_t)AREA) {
        fprintf(stderr, "cannot map 0x%llx-0x%llx for the tables\n", (unsigned long long)AREA,
                (unsigned long long)GUEST_ACPI_AREA_END - 1);
        return -1;
    }
    area = m;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    munmap(area, AREA_LEN);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    memset(area, POISON, AREA_LEN);
    capture_reset();
    return 0;
}

static uint8_t sum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *b++);
    return s;
}

static const struct acpi_sdt_header *table(gpa_t gpa, const char *sig)
{
    const struct acpi_sdt_header *h = (const void *)at(gpa);
    assert_memory_equal(h->signature, sig, 4);
    assert_int_equal(sum(h, h->length), 0);
    assert_memory_equal(h->oem_id, "KEEL  ", 6);
    return h;
}

/* Builds for n vCPUs at base and checks what every build must give; returns the size. */
static int build(uint32_t n, gpa_t base, gpa_t *rsdp)
{
    struct guest_acpi_cfg c = cfg_for(n);
    size_t room = (size_t)(GUEST_ACPI_AREA_END - base);
    int used = guest_acpi_build(at(base), room, base, &c, rsdp);
    assert_true(used > 0);
    assert_true((size_t)used <= GUEST_ACPI_MAX_SIZE);
    assert_int_equal(*rsdp, base);
    /* Nothing written past what it says it used, nor before base. */
    for (size_t i = (size_t)used; i < room; i++)
        if (at(base)[i] != POISON)
            fail_msg("byte at 0x%llx written, past the %d bytes used", (unsigned long long)(base + i), used);
    if (base > AREA)
        assert_int_equal(at(base)[-1], POISON);
    return used;
}

/* ---- checksums and layout ---- */

static void check_all_tables(gpa_t rsdp_gpa, uint32_t n, int used)
{
    const struct acpi_rsdp *r = (const void *)at(rsdp_gpa);
    assert_memory_equal(r->signature, "RSD PTR ", 8);
    assert_int_equal(r->revision, 2);
    assert_int_equal(r->length, 36);
    assert_int_equal(sum(r, 20), 0);
    assert_int_equal(sum(r, 36), 0);
    gpa_t end = rsdp_gpa + (gpa_t)used;

    const struct acpi_sdt_header *rsdt = table(r->rsdt_address, "RSDT");
    const struct acpi_sdt_header *xsdt = table(r->xsdt_address, "XSDT");
    assert_int_equal(rsdt->length, 36 + 2 * 4);
    assert_int_equal(xsdt->length, 36 + 2 * 8);
    /* Both roots list the same tables: FADT, then MADT. */
    for (int i = 0; i < 2; i++) {
        uint32_t a32;
        uint64_t a64;
        memcpy(&a32, (const uint8_t *)rsdt + 36 + 4 * i, 4);
        memcpy(&a64, (const uint8_t *)xsdt + 36 + 8 * i, 8);
        assert_int_equal(a32, a64);
        const struct acpi_sdt_header *t = table(a64, i == 0 ? "FACP" : "APIC");
        assert_true(a64 >= rsdp_gpa && a64 + t->length <= end);
    }
    uint64_t fadt_gpa, madt_gpa;
    memcpy(&fadt_gpa, (const uint8_t *)xsdt + 36, 8);
    memcpy(&madt_gpa, (const uint8_t *)xsdt + 44, 8);
    const struct acpi_fadt *f = (const void *)table(fadt_gpa, "FACP");
    assert_int_equal(f->h.revision, 3);
    assert_int_equal(f->h.length, 244);
    const struct acpi_sdt_header *madt = table(madt_gpa, "APIC");
    assert_int_equal(madt->length, 44 + 8 * n + 12 + 2 * 10 + 6);
    const struct acpi_sdt_header *dsdt = table(f->x_dsdt, "DSDT");
    assert_int_equal(f->dsdt, f->x_dsdt);
    assert_true(f->x_dsdt + dsdt->length <= end);
    /* FACS: 64 bytes on a 64-byte boundary, no checksum of its own. */
    assert_int_equal(f->firmware_ctrl % 64, 0);
    assert_int_equal(f->x_firmware_ctrl, 0);
    assert_memory_equal(at(f->firmware_ctrl), "FACS", 4);
    uint32_t facs_len;
    memcpy(&facs_len, at(f->firmware_ctrl) + 4, 4);
    assert_int_equal(facs_len, 64);
    assert_true(f->firmware_ctrl + 64 <= end);
    /* Every table at least 8-byte aligned, none overlapping: in address order. */
    const gpa_t starts[] = {rsdp_gpa, f->firmware_ctrl, f->x_dsdt, fadt_gpa, madt_gpa, r->rsdt_address,
                            r->xsdt_address};
    const uint32_t lens[] = {36, 64, dsdt->length, f->h.length, madt->length, rsdt->length, xsdt->length};
    for (size_t i = 0; i < ARRAY_SIZE(starts); i++) {
        assert_int_equal(starts[i] % 8, 0);
        if (i)
            assert_true(starts[i - 1] + lens[i - 1] <= starts[i]);
    }
    assert_int_equal(r->xsdt_address + xsdt->length, end);
}

static void test_checksums_and_layout(void **state)
{
    (void)state;
    static const uint32_t counts[] = {1, 2, 3, 4, 16, GUEST_ACPI_MAX_VCPUS};
    static const gpa_t bases[] = {0xe0000, 0xf0000, 0xf5a30, 0xffff0 - GUEST_ACPI_MAX_SIZE};
    for (size_t i = 0; i < ARRAY_SIZE(counts); i++) {
        for (size_t j = 0; j < ARRAY_SIZE(bases); j++) {
            memset(area, POISON, AREA_LEN);
            gpa_t rsdp;
            int used = build(counts[i], bases[j], &rsdp);
            check_all_tables(rsdp, counts[i], used);
        }
    }
}

/* ---- Keel's parser reads them back ---- */

static struct acpi_info info;

static void parse_back(uint32_t n)
{
    memset(area, POISON, AREA_LEN);
    gpa_t rsdp;
    build(n, 0xf0000, &rsdp);
    capture_reset();
    assert_int_equal(acpi_parse(rsdp, &info), 0);
    /* The parser complains about anything it finds wrong: nothing here. */
    if (capture_count()) {
        capture_dump();
        fail_msg("the parser logged %d lines", capture_count());
    }
    assert_int_equal(info.rsdp_revision, 2);
    assert_true(info.use_xsdt);
    assert_memory_equal(info.oem_id, "KEEL  ", 6);
    assert_int_equal(info.table_count, 2);
    assert_true(info.have_madt);
    assert_true(info.have_fadt);
    assert_false(info.have_hpet);
    assert_false(info.have_mcfg);

    /* MADT: N enabled CPUs with APIC IDs and UIDs 0..N-1, nothing else. */
    assert_int_equal(info.lapic_address, 0xfee00000);
    assert_false(info.lapic_overridden);
    assert_true(info.pcat_compat);
    assert_int_equal(info.cpus_listed, n);
    assert_int_equal(info.cpus_enabled, n);
    assert_int_equal(info.cpu_count, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(info.cpus[i].apic_id, i);
        assert_int_equal(info.cpus[i].uid, i);
        assert_true(info.cpus[i].enabled);
        assert_false(info.cpus[i].x2apic_entry);
    }
    assert_int_equal(info.ioapic_count, 1);
    assert_int_equal(info.ioapics[0].id, 0);
    assert_int_equal(info.ioapics[0].address, 0xfec00000);
    assert_int_equal(info.ioapics[0].gsi_base, 0);
    assert_int_equal(info.iso_count, 2);
    assert_int_equal(info.isos[0].bus, 0);
    assert_int_equal(info.isos[0].source_irq, 0);
    assert_int_equal(info.isos[0].gsi, 2);
    assert_int_equal(info.isos[0].flags, 0); /* conforms to the bus: edge, active high */
    assert_int_equal(info.isos[1].source_irq, 9);
    assert_int_equal(info.isos[1].gsi, 9);
    assert_int_equal(info.isos[1].flags, 0xd); /* level, active high */
    assert_int_equal(info.nmi_count, 1);
    assert_int_equal(info.nmis[0].uid, ACPI_UID_ALL);
    assert_int_equal(info.nmis[0].lint, 1);

    /* FADT: acpi_pm's blocks, the SCI, the reset register, the DSDT's \_S5. */
    assert_int_equal(info.fadt_revision, 3);
    assert_false(info.hw_reduced);
    assert_int_equal(info.sci_irq, ACPI_PM_SCI_IRQ);
    assert_int_equal(info.smi_cmd, 0);
    assert_true(info.pm1a_cnt.present);
    assert_int_equal(info.pm1a_cnt.space, ACPI_GAS_IO);
    assert_int_equal(info.pm1a_cnt.address, ACPI_PM_BASE + ACPI_PM1_CNT_OFF);
    assert_int_equal(info.pm1a_cnt.bit_width, 16);
    assert_false(info.pm1b_cnt.present);
    assert_true(info.pm_timer.present);
    assert_int_equal(info.pm_timer.space, ACPI_GAS_IO);
    assert_int_equal(info.pm_timer.address, ACPI_PM_BASE + ACPI_PM_TMR_OFF);
    assert_false(info.pm_timer_32bit); /* acpi_pm's timer is 24 bits */
    assert_true(info.s5_valid);
    assert_int_equal(info.slp_typ_a, ACPI_PM_SLP_TYP_S5);
    assert_int_equal(info.slp_typ_b, ACPI_PM_SLP_TYP_S5);
    assert_true(info.reset_supported);
    assert_int_equal(info.reset_reg.space, ACPI_GAS_IO);
    assert_int_equal(info.reset_reg.address, ACPI_PM_RCR_PORT);
    assert_int_equal(info.reset_reg.bit_width, 8);
    assert_int_equal(info.reset_value, ACPI_PM_RESET_VALUE);
    assert_true(info.has_8042);
    assert_int_equal(info.boot_arch & ACPI_BOOT_ARCH_LEGACY_DEVICES, ACPI_BOOT_ARCH_LEGACY_DEVICES);
    const struct acpi_fadt *f = (const void *)at(info.fadt_address);
    assert_int_equal(info.dsdt_address, f->x_dsdt);
    /* The PM1a event block, which the parser does not keep, from the table itself. */
    assert_int_equal(f->pm1a_evt_blk, ACPI_PM_BASE + ACPI_PM1_EVT_OFF);
    assert_int_equal(f->pm1_evt_len, ACPI_PM1_EVT_LEN);
    assert_int_equal(f->x_pm1a_evt_blk.address, ACPI_PM_BASE + ACPI_PM1_EVT_OFF);
    assert_int_equal(f->x_pm1a_evt_blk.bit_width, 32);
    assert_int_equal(f->x_pm_tmr_blk.bit_width, 32);
    assert_int_equal(f->century, 0x32);
    assert_int_equal(f->flags & ACPI_FADT_TMR_VAL_EXT, 0);

    /* The report prints without complaint. */
    capture_reset();
    acpi_report(&info);
    assert_false(capture_contains("skipped"));
    assert_false(capture_contains("unusable"));
}

static void test_parse_back_1(void **state) { (void)state; parse_back(1); }
static void test_parse_back_2(void **state) { (void)state; parse_back(2); }
static void test_parse_back_4(void **state) { (void)state; parse_back(4); }
static void test_parse_back_16(void **state) { (void)state; parse_back(16); }

static void test_no_i8042_flag(void **state)
{
    (void)state;
    struct guest_acpi_cfg c = cfg_for(2);
    c.i8042 = false;
    c.ioapic_id = 5;
    gpa_t rsdp;
    assert_true(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, &c, &rsdp) > 0);
    assert_int_equal(acpi_parse(rsdp, &info), 0);
    assert_false(info.has_8042);
    assert_int_equal(info.ioapics[0].id, 5);
}

/* ---- the RSDP scan a guest does ---- */

/* What a guest OS does (ACPI 6.x 5.2.5.1): 16-byte boundaries of 0xE0000-0xFFFFF, the
 * signature, the first checksum, and for revision 2 the length and extended checksum. */
static gpa_t scan_for_rsdp(void)
{
    for (gpa_t p = AREA; p + 36 <= GUEST_ACPI_AREA_END; p += 16) {
        const struct acpi_rsdp *r = (const void *)at(p);
        if (memcmp(r->signature, "RSD PTR ", 8) != 0 || sum(r, 20) != 0)
            continue;
        if (r->revision >= 2 && (r->length < 36 || sum(r, r->length) != 0))
            continue;
        return p;
    }
    return 0;
}

static void test_rsdp_scan_finds_it(void **state)
{
    (void)state;
    static const gpa_t bases[] = {0xe0000, 0xe0010, 0xf0000, 0xfe000, 0xff000};
    for (size_t i = 0; i < ARRAY_SIZE(bases); i++) {
        memset(area, 0, AREA_LEN);
        /* Decoys before it: a signature off the 16-byte grid, one with a bad checksum. */
        memcpy(at(0xe0000 + 8), "RSD PTR ", 8);
        if (bases[i] > 0xe0000) {
            memcpy(at(bases[i] - 16), "RSD PTR ", 8);
            at(bases[i] - 16)[8] = 1;
        }
        struct guest_acpi_cfg c = cfg_for(4);
        gpa_t rsdp = 0;
        int used = guest_acpi_build(at(bases[i]), (size_t)(GUEST_ACPI_AREA_END - bases[i]), bases[i], &c, &rsdp);
        assert_true(used > 0);
        assert_int_equal(scan_for_rsdp(), bases[i]);
        assert_int_equal(acpi_parse(scan_for_rsdp(), &info), 0);
        assert_int_equal(info.cpu_count, 4);
    }
}

/* ---- the DSDT, byte for byte ---- */

static const struct acpi_sdt_header *dsdt_of(gpa_t rsdp)
{
    const struct acpi_rsdp *r = (const void *)at(rsdp);
    uint64_t fadt;
    memcpy(&fadt, at(r->xsdt_address) + 36, 8);
    return (const void *)at(((const struct acpi_fadt *)at(fadt))->x_dsdt);
}

static void test_dsdt_aml_bytes(void **state)
{
    (void)state;
    gpa_t rsdp;
    build(1, 0xf0000, &rsdp);
    const struct acpi_sdt_header *h = dsdt_of(rsdp);
    /* Name (_S5, Package (0x04) { Zero, Zero, Zero, Zero }), as iasl compiles it:
     * NameOp, "_S5_", PackageOp, PkgLength 6 (one byte: itself, NumElements and the four
     * ZeroOps), NumElements 4, ZeroOp x 4. */
    STATIC_ASSERT(ACPI_PM_SLP_TYP_S5 == 0, "the expected bytes below encode SLP_TYP 0 as ZeroOp");
    static const uint8_t want[] = {0x08, '_', 'S', '5', '_', 0x12, 0x06, 0x04, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(h->length, 36 + sizeof want);
    assert_int_equal(h->revision, 2);
    assert_memory_equal((const uint8_t *)h + 36, want, sizeof want);
    /* Keel's own AML scan agrees. */
    uint8_t a = 0xff, b = 0xff;
    assert_int_equal(acpi_find_s5((const uint8_t *)h + 36, sizeof want, &a, &b, NULL), ACPI_S5_FOUND);
    assert_int_equal(a, ACPI_PM_SLP_TYP_S5);
    assert_int_equal(b, ACPI_PM_SLP_TYP_S5);
}

/* ---- an independent decoder: ACPICA's disassembler ---- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot read %s", path);
    static char text[256 * 1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    return text;
}

static void expect_text(const char *text, const char *what, const char *needle)
{
    if (!strstr(text, needle))
        fail_msg("%s: iasl's disassembly has no \"%s\":\n%s", what, needle, text);
}

static int count_text(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Disassembles the table at gpa; returns the .dsl text. */
static char *iasl(const char *dir, const char *name, gpa_t gpa, uint32_t len)
{
    char path[512], cmd[1200];
    snprintf(path, sizeof path, "%s/%s.dat", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(at(gpa), 1, len, f), len);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd %s && iasl -d %s.dat >%s.log 2>&1", dir, name, name);
    if (system(cmd) != 0) {
        snprintf(path, sizeof path, "%s/%s.log", dir, name);
        fail_msg("iasl -d failed on the %s (is acpica-tools installed? tools/install-deps.sh):\n%s", name,
                 slurp(path));
    }
    snprintf(path, sizeof path, "%s/%s.log", dir, name);
    char *log = slurp(path);
    if (strstr(log, "Error") || strstr(log, "Warning"))
        fail_msg("iasl -d complained about the %s:\n%s", name, log);
    snprintf(path, sizeof path, "%s/%s.dsl", dir, name);
    char *text = slurp(path);
    /* The disassembler checks the checksum and says so when it is wrong. */
    if (strstr(text, "Incorrect checksum") || strstr(text, "Invalid"))
        fail_msg("iasl finds the %s wrong:\n%s", name, text);
    return text;
}

static void test_iasl_decodes_the_tables(void **state)
{
    (void)state;
    char dir[] = "/tmp/keel-guest-acpi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    gpa_t rsdp;
    build(4, 0xf0000, &rsdp);
    const struct acpi_rsdp *r = (const void *)at(rsdp);
    uint64_t fadt_gpa, madt_gpa;
    memcpy(&fadt_gpa, at(r->xsdt_address) + 36, 8);
    memcpy(&madt_gpa, at(r->xsdt_address) + 44, 8);
    const struct acpi_fadt *f = (const void *)at(fadt_gpa);
    const struct acpi_sdt_header *madt = (const void *)at(madt_gpa), *dsdt = (const void *)at(f->x_dsdt);

    char *t = iasl(dir, "dsdt", f->x_dsdt, dsdt->length);
    expect_text(t, "DSDT", "DefinitionBlock (\"\", \"DSDT\", 2, \"KEEL  \", \"KEELVPC \", 0x00000001)");
    expect_text(t, "DSDT", "Name (_S5, Package (0x04)");
    assert_int_equal(count_text(t, "Zero"), 4);

    char line[128];
    t = iasl(dir, "facp", fadt_gpa, f->h.length);
    expect_text(t, "FADT", "Revision : 03");
    expect_text(t, "FADT", "SCI Interrupt : 0009");
    snprintf(line, sizeof line, "PM1A Event Block Address : %08X", ACPI_PM_BASE + ACPI_PM1_EVT_OFF);
    expect_text(t, "FADT", line);
    snprintf(line, sizeof line, "PM1A Control Block Address : %08X", ACPI_PM_BASE + ACPI_PM1_CNT_OFF);
    expect_text(t, "FADT", line);
    snprintf(line, sizeof line, "PM Timer Block Address : %08X", ACPI_PM_BASE + ACPI_PM_TMR_OFF);
    expect_text(t, "FADT", line);
    expect_text(t, "FADT", "Reset Register Supported (V2) : 1");
    expect_text(t, "FADT", "Address : 0000000000000CF9");
    expect_text(t, "FADT", "Value to cause reset : 06");
    expect_text(t, "FADT", "8042 Present on ports 60/64 (V2) : 1");
    snprintf(line, sizeof line, "DSDT Address : %016llX", (unsigned long long)f->x_dsdt);
    expect_text(t, "FADT", line);

    t = iasl(dir, "apic", madt_gpa, madt->length);
    assert_int_equal(count_text(t, "[Processor Local APIC]"), 4);
    expect_text(t, "MADT", "Local Apic Address : FEE00000");
    expect_text(t, "MADT", "PC-AT Compatibility : 1");
    expect_text(t, "MADT", "[I/O APIC]");
    expect_text(t, "MADT", "Address : FEC00000");
    assert_int_equal(count_text(t, "[Interrupt Source Override]"), 2);
    expect_text(t, "MADT", "Interrupt : 00000002");
    expect_text(t, "MADT", "Trigger Mode : 3");
    expect_text(t, "MADT", "[Local APIC NMI]");

    t = iasl(dir, "xsdt", r->xsdt_address, ((const struct acpi_sdt_header *)at(r->xsdt_address))->length);
    snprintf(line, sizeof line, "ACPI Table Address   0 : %016llX", (unsigned long long)fadt_gpa);
    expect_text(t, "XSDT", line);
    t = iasl(dir, "facs", f->firmware_ctrl, 64);
    expect_text(t, "FACS", "Length : 00000040");

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* With pci_root: \_SB.PCI0 as Linux's ACPI PCI root driver needs it (PNP0A03, bus
 * numbers, the I/O and memory windows) and a _PRT entry per slot, checked by iasl; the
 * _S5 scan still finds the sleep type in front of it. Slot 31 gives the longest
 * PkgLength forms; every table still fits at GUEST_ACPI_MAX_VCPUS. */
static void test_dsdt_pci_root(void **state)
{
    (void)state;
    char dir[] = "/tmp/keel-guest-acpi-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct guest_acpi_cfg c = cfg_for(2);
    c.pci_root = true;
    c.pci_slots = 1u << 1 | 1u << 2 | 1u << 31;
    gpa_t base = 0xf0000, rsdp;
    assert_true(guest_acpi_build(at(base), (size_t)(GUEST_ACPI_AREA_END - base), base, &c, &rsdp) > 0);
    const struct acpi_sdt_header *h = dsdt_of(rsdp);
    assert_int_equal(sum(h, h->length), 0);
    uint8_t a = 0xff, b = 0xff;
    assert_int_equal(acpi_find_s5((const uint8_t *)h + 36, h->length - 36, &a, &b, NULL), ACPI_S5_FOUND);
    assert_int_equal(a, ACPI_PM_SLP_TYP_S5);
    char *t = iasl(dir, "dsdt", (gpa_t)((const uint8_t *)h - at(0)), h->length);
    expect_text(t, "DSDT", "Name (_S5, Package (0x04)");
    expect_text(t, "DSDT", "Scope (\\_SB)");
    expect_text(t, "DSDT", "Device (PCI0)");
    expect_text(t, "DSDT", "Name (_HID, EisaId (\"PNP0A03\")");
    expect_text(t, "DSDT", "WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,");
    expect_text(t, "DSDT", "0x00FF,             // Range Maximum");
    expect_text(t, "DSDT", "0x0CF7,             // Range Maximum");
    expect_text(t, "DSDT", "0x0D00,             // Range Minimum");
    expect_text(t, "DSDT", "DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,");
    expect_text(t, "DSDT", "0xE0000000,         // Range Minimum");
    expect_text(t, "DSDT", "0xFEBFFFFF,         // Range Maximum");
    expect_text(t, "DSDT", "Name (_PRT, Package (0x03)");
    expect_text(t, "DSDT", "0x0001FFFF, \n                    Zero, \n                    Zero, \n                    0x0B");
    expect_text(t, "DSDT", "0x0002FFFF, \n                    Zero, \n                    Zero, \n                    0x0A");
    expect_text(t, "DSDT", "0x001FFFFF, \n                    Zero, \n                    Zero, \n                    0x0B");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    c = cfg_for(GUEST_ACPI_MAX_VCPUS);
    c.pci_root = true;
    c.pci_slots = 0xfffffffe;
    assert_true(guest_acpi_build(at(GUEST_ACPI_AREA), GUEST_ACPI_MAX_SIZE, GUEST_ACPI_AREA, &c, &rsdp) > 0);
}

/* ---- refusals ---- */

static void test_refusals(void **state)
{
    (void)state;
    struct guest_acpi_cfg c = cfg_for(16);
    gpa_t rsdp = 0x1234;
    int used = guest_acpi_build(at(0xf0000), 0x1000, 0xf0000, &c, &rsdp);
    assert_true(used > 0);
    /* Every size short of what it needs: ENOSPC, nothing written, *rsdp untouched. */
    for (int size = 0; size < used; size++) {
        memset(area, POISON, AREA_LEN);
        gpa_t out = 0x1234;
        assert_int_equal(guest_acpi_build(at(0xe0000), (size_t)size, 0xe0000, &c, &out), GUEST_ACPI_ENOSPC);
        assert_int_equal(out, 0x1234);
        assert_int_equal(area[0], POISON);
    }
    assert_int_equal(guest_acpi_build(at(0xe0000), (size_t)used, 0xe0000, &c, NULL), used);

    /* Bases the scan would not find, or a buffer running out of the area. */
    assert_int_equal(guest_acpi_build(at(0xf0008), 0x1000, 0xf0008, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(at(0xdfff0), 0x1000, 0xdfff0, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(at(0xff800), 0x1000, 0xff800, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0x100000, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0x7c00, &c, &rsdp), GUEST_ACPI_EINVAL);
    /* Configurations the tables cannot describe. */
    c.vcpus = 0;
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, &c, &rsdp), GUEST_ACPI_EINVAL);
    c.vcpus = GUEST_ACPI_MAX_VCPUS + 1;
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, &c, &rsdp), GUEST_ACPI_EINVAL);
    c = cfg_for(1);
    c.lapic_base = 0x100000000ull;
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, &c, &rsdp), GUEST_ACPI_EINVAL);
    c = cfg_for(1);
    c.ioapic_base = 0x1fec00000ull;
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(NULL, 0x1000, 0xe0000, &c, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(guest_acpi_build(at(0xe0000), 0x1000, 0xe0000, NULL, &rsdp), GUEST_ACPI_EINVAL);
    assert_int_equal(rsdp, 0xf0000);
    /* The largest VM fits the advertised maximum. */
    c = cfg_for(GUEST_ACPI_MAX_VCPUS);
    assert_true(guest_acpi_build(at(0xe0000), GUEST_ACPI_MAX_SIZE, 0xe0000, &c, &rsdp) > 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)
    const struct CMUnitTest tests[] = {
        T(test_checksums_and_layout), T(test_parse_back_1),        T(test_parse_back_2),
        T(test_parse_back_4),         T(test_parse_back_16),       T(test_no_i8042_flag),
        T(test_rsdp_scan_finds_it),   T(test_dsdt_aml_bytes),      T(test_iasl_decodes_the_tables), T(test_dsdt_pci_root),
        T(test_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
