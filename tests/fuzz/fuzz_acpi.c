/* Fuzzes the ACPI table parser (drivers/acpi.c): acpi_parse on a fake physical memory,
 * then acpi_report.
 *
 * Input: records [u16 length][u8 flags][length bytes]. Record 0 is the RSDP, the
 * others are tables. Each is placed in a window below 2 GiB (where 32-bit table
 * pointers reach), 16-byte aligned plus (flags >> 1 & 7) bytes, with poisoned gaps
 * between records. So that mutations reach the parser instead of failing its first
 * check, the harness does what a consistent firmware does:
 *   - every pointer the parser follows (RSDP RSDT/XSDT addresses, RSDT/XSDT entries,
 *     FADT DSDT/X_DSDT) holds a record reference: 0 stays a null pointer, n points at
 *     record (n - 1) mod count;
 *   - a table's length field says how long its record is (the RSDP's too, from
 *     revision 2);
 *   - checksums are made right, unless flags bit 0 keeps the record's own.
 * Only a record's bytes are addressable (at least the 8 bytes of signature and length
 * for a table; 20 for the RSDP, 24 when it claims revision 2): ASan reports any read
 * outside them, i.e. past the length a table declares. Checked after parsing: every
 * count within its array, every address the result gives pointing at a table of the
 * right kind, the documented rules of each table (unique APIC IDs, MCFG windows
 * aligned and not wrapping, usable registers), and every console line fitting.
 * SOURCES: drivers/acpi.c vmm/lib/printf.c vmm/lib/string.c tests/fuzz/console_sink.c
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sanitizer/asan_interface.h>

#include "drivers/acpi.h"
#include "tests/fuzz/console_sink.h"

#define WINDOW (256u << 10)
#define MAX_RECORDS 32
#define GAP 16

static uint8_t *window;

struct record {
    uint8_t *p;
    uint32_t len;    /* bytes addressable */
    bool keep_sum;
};
static struct record rec[MAX_RECORDS];
static unsigned nrec;

static void setup(void)
{
    window = mmap(NULL, WINDOW + 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    FUZZ_CHECK(window != MAP_FAILED, "cannot map the fake physical memory below 2 GiB");
    FUZZ_CHECK(mprotect(window + WINDOW, 4096, PROT_NONE) == 0, "mprotect");
    ASAN_POISON_MEMORY_REGION(window, WINDOW);
}

static uint64_t addr_of(const struct record *r) { return (uint64_t)(uintptr_t)r->p; }

static uint64_t resolve(uint64_t ref)
{
    return ref ? addr_of(&rec[(ref - 1) % nrec]) : 0;
}

static void patch32(uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    v = (uint32_t)resolve(v);
    memcpy(p, &v, 4);
}

static void patch64(uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    v = resolve(v);
    memcpy(p, &v, 8);
}

static void checksum(uint8_t *p, size_t n, size_t at)
{
    p[at] = 0;
    uint8_t s = 0;
    for (size_t i = 0; i < n; i++)
        s = (uint8_t)(s + p[i]);
    p[at] = (uint8_t)-s;
}

/* Lays the records out; returns the bytes of the window used. */
static size_t place(const uint8_t *data, size_t size)
{
    size_t pos = 0, cursor = 0;
    nrec = 0;
    while (pos + 3 <= size && nrec < MAX_RECORDS) {
        uint32_t len = (uint32_t)(data[pos] | data[pos + 1] << 8);
        uint8_t flags = data[pos + 2];
        pos += 3;
        len = (uint32_t)MIN((size_t)len, size - pos);
        bool v2 = len > 15 && data[pos + 15] >= 2; /* RSDP revision */
        uint32_t room = nrec == 0 ? (v2 ? 24 : 20) : 8;
        uint32_t extent = MAX(len, room);
        size_t at = ALIGN_UP(cursor, 16) + (flags >> 1 & 7);
        if (at + extent > WINDOW)
            break;
        struct record *r = &rec[nrec++];
        r->p = window + at;
        r->len = extent;
        r->keep_sum = flags & 1;
        ASAN_UNPOISON_MEMORY_REGION(r->p, extent);
        memset(r->p, 0, extent);
        memcpy(r->p, data + pos, len);
        pos += len;
        cursor = at + extent + GAP;
    }
    return cursor;
}

static bool sig_is(const struct record *r, const char *sig)
{
    return memcmp(r->p, sig, 4) == 0;
}

static void make_consistent(void)
{
    struct record *rsdp = &rec[0];
    uint8_t *p = rsdp->p;
    bool v2 = p[15] >= 2;
    patch32(p + 16);
    if (v2) {
        uint32_t len = rsdp->len;
        memcpy(p + 20, &len, 4);
        if (rsdp->len >= 32)
            patch64(p + 24);
    }
    for (unsigned i = 1; i < nrec; i++) {
        struct record *r = &rec[i];
        memcpy(r->p + 4, &r->len, 4);
        if (sig_is(r, "RSDT"))
            for (uint32_t off = 36; off + 4 <= r->len; off += 4)
                patch32(r->p + off);
        if (sig_is(r, "XSDT"))
            for (uint32_t off = 36; off + 8 <= r->len; off += 8)
                patch64(r->p + off);
        if (sig_is(r, "FACP")) {
            if (r->len >= 44)
                patch32(r->p + 40);
            if (r->len >= 148)
                patch64(r->p + 140);
        }
    }
    /* Checksums last: they cover the patched pointers. */
    for (unsigned i = 1; i < nrec; i++)
        if (!rec[i].keep_sum && rec[i].len >= 10)
            checksum(rec[i].p, rec[i].len, 9);
    if (!rsdp->keep_sum) {
        checksum(p, ACPI_RSDP_V1_LEN, 8);
        if (v2 && rsdp->len >= 33)
            checksum(p, rsdp->len, 32);
    }
}

/* The record at `addr` with signature `sig`, or fails. */
static void expect_table(uint64_t addr, const char *sig, const char *what)
{
    for (unsigned i = 0; i < nrec; i++)
        if (addr_of(&rec[i]) == addr) {
            FUZZ_CHECK(rec[i].len >= 4 && sig_is(&rec[i], sig), "%s at 0x%lx is not a %s table", what,
                       (unsigned long)addr, sig);
            return;
        }
    fuzz_fail("%s address 0x%lx is not a table the firmware gave", what, (unsigned long)addr);
}

static bool printable4(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s[i] < 0x20 || s[i] >= 0x7f)
            return false;
    return s[4] == 0;
}

static bool reg_ok(const struct acpi_reg *r)
{
    if (!r->present)
        return true;
    return r->address != 0 &&
           ((r->space == ACPI_GAS_IO && r->address <= 0xffff) || r->space == ACPI_GAS_MEMORY);
}

static void check_info(const struct acpi_info *a, int rc)
{
    FUZZ_CHECK(rc == 0 || rc == -1, "acpi_parse returned %d", rc);
    if (rc) {
        FUZZ_CHECK(!a->have_madt && !a->have_fadt && !a->have_hpet && !a->have_mcfg, "tables used without a root");
        return;
    }
    FUZZ_CHECK(a->rsdp == addr_of(&rec[0]), "RSDP address");
    for (int i = 0; i < 6; i++)
        FUZZ_CHECK(a->oem_id[i] >= 0x20 && a->oem_id[i] < 0x7f, "OEM id not printable");
    FUZZ_CHECK(a->oem_id[6] == 0, "OEM id not terminated");
    expect_table(a->root_table, a->use_xsdt ? "XSDT" : "RSDT", "root table");
    for (uint32_t i = 0; i < MIN(a->table_count, (uint32_t)ACPI_MAX_TABLES); i++)
        if (a->tables[i].address)
            FUZZ_CHECK(printable4(a->tables[i].signature), "table %u signature not printable", i);

    FUZZ_CHECK(a->cpu_count <= ACPI_MAX_CPUS && a->ioapic_count <= ACPI_MAX_IOAPICS && a->iso_count <= ACPI_MAX_ISOS &&
                   a->nmi_count <= ACPI_MAX_NMIS && a->mcfg_count <= ACPI_MAX_MCFG,
               "a count beyond its array");
    if (a->have_madt) {
        expect_table(a->madt_address, "APIC", "MADT");
        FUZZ_CHECK(a->cpus_enabled <= a->cpus_listed && a->cpu_count + a->cpus_dropped <= a->cpus_listed,
                   "CPU counts: listed %u, enabled %u, kept %u, dropped %u", a->cpus_listed, a->cpus_enabled,
                   a->cpu_count, a->cpus_dropped);
        for (uint32_t i = 0; i < a->cpu_count; i++) {
            const struct acpi_cpu *c = &a->cpus[i];
            FUZZ_CHECK(c->enabled != c->online_capable, "CPU %u is enabled %d, online-capable %d", i, c->enabled,
                       c->online_capable);
            for (uint32_t j = 0; j < i; j++)
                FUZZ_CHECK(a->cpus[j].apic_id != c->apic_id, "APIC id %u kept twice", c->apic_id);
        }
        for (uint32_t i = 0; i < a->nmi_count; i++)
            FUZZ_CHECK(a->nmis[i].lint <= 1, "NMI on LINT%u", a->nmis[i].lint);
        FUZZ_CHECK(!a->lapic_overridden || a->lapic_address, "override to address 0");
    } else {
        FUZZ_CHECK(a->cpu_count == 0 && a->cpus_listed == 0 && a->ioapic_count == 0 && a->iso_count == 0 &&
                       a->nmi_count == 0,
                   "MADT data without a MADT");
    }
    if (a->have_hpet) {
        FUZZ_CHECK(a->hpet_address != 0, "HPET at 0");
    }
    if (a->have_mcfg) {
        FUZZ_CHECK(a->mcfg_count >= 1, "MCFG used with no entry");
        for (uint32_t i = 0; i < a->mcfg_count; i++) {
            const struct acpi_mcfg_seg *m = &a->mcfg[i];
            FUZZ_CHECK(m->start_bus <= m->end_bus && m->base && !(m->base & 0xfffff) &&
                           m->base + ((uint64_t)m->end_bus + 1) * (1u << 20) > m->base,
                       "MCFG entry %u: buses %u-%u at 0x%lx", i, m->start_bus, m->end_bus, (unsigned long)m->base);
        }
    } else {
        FUZZ_CHECK(a->mcfg_count == 0, "MCFG entries without a usable MCFG");
    }
    if (a->have_fadt) {
        expect_table(a->fadt_address, "FACP", "FADT");
        FUZZ_CHECK(reg_ok(&a->pm1a_cnt) && reg_ok(&a->pm1b_cnt) && reg_ok(&a->pm_timer), "an unusable PM register kept");
        FUZZ_CHECK(!a->s5_valid || (a->slp_typ_a <= 7 && a->slp_typ_b <= 7), "SLP_TYP %u/%u", a->slp_typ_a,
                   a->slp_typ_b);
        FUZZ_CHECK(!a->s5_valid || a->dsdt_address, "\\_S5_ without a DSDT");
        if (a->s5_valid)
            expect_table(a->dsdt_address, "DSDT", "DSDT");
        FUZZ_CHECK(!a->reset_supported || (a->reset_reg.present && (a->reset_reg.space == ACPI_GAS_IO ||
                                                                    a->reset_reg.space == ACPI_GAS_MEMORY ||
                                                                    a->reset_reg.space == ACPI_GAS_PCI_CONFIG)),
                   "unusable reset register kept");
    } else {
        FUZZ_CHECK(!a->s5_valid && !a->reset_supported && !a->pm1a_cnt.present, "FADT data without a FADT");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!window)
        setup();
    sink_reset();
    size_t used = place(data, size);
    if (nrec == 0)
        return 0;
    make_consistent();
    static struct acpi_info info;
    int rc = acpi_parse(addr_of(&rec[0]), &info);
    check_info(&info, rc);
    acpi_report(&info);
    ASAN_POISON_MEMORY_REGION(window, used);
    return 0;
}
