#include "guest.h"
#include "acpi.h"
#include "report.h"
#include "timing.h"

#define SDT_HEADER 36u
#define TABLE_MAX (1u << 20) /* no table of these kinds is anywhere near 1 MiB */
#define BDA_EBDA_SEGMENT 0x40E
#define EBDA_SCAN_BYTES 1024u
#define BIOS_AREA_START 0xE0000u
#define BIOS_AREA_END 0x100000u

/* FADT field offsets (ACPI 6.5, 5.2.9). */
#define FADT_DSDT 40
#define FADT_SMI_CMD 48
#define FADT_ACPI_ENABLE 52
#define FADT_PM1A_CNT 64
#define FADT_PM1B_CNT 68
#define FADT_PM_TMR 76
#define FADT_PM_TMR_LEN 91
#define FADT_FLAGS 112
#define FADT_X_DSDT 140
#define FADT_FLAG_TMR_VAL_EXT (1u << 8)

#define PM1_SCI_EN 0x0001u
#define PM1_SLP_TYP_SHIFT 10
#define PM1_SLP_EN (1u << 13)

/* Tables are at arbitrary alignment in identity-mapped memory (paging is off). */
static uint8_t rd8(uint32_t a) { return *(volatile const uint8_t *)(uintptr_t)a; }
static uint16_t rd16(uint32_t a) { uint16_t v; memcpy(&v, (const void *)(uintptr_t)a, 2); return v; }
static uint32_t rd32(uint32_t a) { uint32_t v; memcpy(&v, (const void *)(uintptr_t)a, 4); return v; }
static uint64_t rd64(uint32_t a) { uint64_t v; memcpy(&v, (const void *)(uintptr_t)a, 8); return v; }

static uint8_t sum(uint32_t a, uint32_t len)
{
    uint8_t s = 0;
    while (len--)
        s = (uint8_t)(s + rd8(a++));
    return s;
}

static bool sig_is(uint32_t a, const char *sig, uint32_t n)
{
    return !strncmp((const char *)(uintptr_t)a, sig, n);
}

/* A printable copy of the 4-character signature at a. */
static const char *sig4(uint32_t a, char out[5])
{
    for (int i = 0; i < 4; i++) {
        char c = (char)rd8(a + (uint32_t)i);
        out[i] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    out[4] = '\0';
    return out;
}

/* Checks the header and checksum of the table at addr, which must carry `sig`; the
 * failure is reported under `what`. Returns the table's length, 0 when it is bad. */
static uint32_t table_check(uint64_t addr64, const char *sig, const char *what)
{
    char s[5];
    if (!addr64 || addr64 + SDT_HEADER > 0x100000000ull) {
        fail(what, "table address 0x%llx is not in the low 4 GiB", addr64);
        return 0;
    }
    uint32_t a = (uint32_t)addr64;
    if (!sig_is(a, sig, 4)) {
        fail(what, "table at 0x%x has signature \"%s\", want \"%s\"", a, sig4(a, s), sig);
        return 0;
    }
    uint32_t len = rd32(a + 4);
    if (len < SDT_HEADER || len > TABLE_MAX || (uint64_t)a + len > 0x100000000ull) {
        fail(what, "%s at 0x%x has implausible length %u", sig, a, len);
        return 0;
    }
    uint8_t c = sum(a, len);
    if (c) {
        fail(what, "%s at 0x%x (%u bytes): checksum byte 0x%02x leaves a sum of 0x%02x",
             sig, a, len, rd8(a + 9), c);
        return 0;
    }
    return len;
}

static uint32_t scan_rsdp(uint32_t start, uint32_t end)
{
    for (uint32_t a = start; a + 20 <= end; a += 16)
        if (sig_is(a, "RSD PTR ", 8) && sum(a, 20) == 0)
            return a;
    return 0;
}

/* Root table walk: the entries of the XSDT (8 bytes each) or RSDT (4). */
struct root {
    uint32_t addr, len, entry_size;
};

static uint64_t root_entry(const struct root *r, uint32_t i)
{
    uint32_t a = r->addr + SDT_HEADER + i * r->entry_size;
    return r->entry_size == 8 ? rd64(a) : rd32(a);
}

static uint32_t root_count(const struct root *r)
{
    return r->len ? (r->len - SDT_HEADER) / r->entry_size : 0;
}

static uint64_t root_find(const struct root *r, const char *sig)
{
    for (uint32_t i = 0; i < root_count(r); i++) {
        uint64_t e = root_entry(r, i);
        if (e && e < 0x100000000ull && sig_is((uint32_t)e, sig, 4))
            return e;
    }
    return 0;
}

static bool check_root(struct root *r, uint32_t addr, uint32_t entry_size, const char *sig,
                       const char *what)
{
    r->addr = addr;
    r->entry_size = entry_size;
    r->len = table_check(addr, sig, what);
    if (!r->len)
        return false;
    char list[8 * 5 + 4] = "", s[5];
    uint32_t n = root_count(r), used = 0;
    for (uint32_t i = 0; i < n && i < 8; i++) {
        uint64_t e = root_entry(r, i);
        const char *name = e && e < 0x100000000ull ? sig4((uint32_t)e, s) : "????";
        memcpy(list + used, name, 4);
        list[used + 4] = ' ';
        used += 5;
    }
    list[used ? used - 1 : 0] = '\0';
    ok("%s: at 0x%x, %u bytes, checksum valid, %u tables: %s%s", what, addr, r->len, n, list,
       n > 8 ? " ..." : "");
    return true;
}

static void check_madt(uint64_t addr, struct acpi_info *info)
{
    uint32_t len = table_check(addr, "APIC", "madt");
    if (!len)
        return;
    uint32_t a = (uint32_t)addr, end = a + len;
    info->lapic_addr = rd32(a + 36);
    uint32_t total = 0, ioapics = 0, overrides = 0;
    bool irq0_override = false, bad = false;
    for (uint32_t p = a + 44; p + 2 <= end;) {
        uint8_t type = rd8(p), elen = rd8(p + 1);
        if (elen < 2 || p + elen > end) {
            fail("madt", "entry at offset %u (type %u) has length %u past the table's end",
                 p - a, type, elen);
            bad = true;
            break;
        }
        uint32_t id = ~0u, flags = 0;
        if (type == 0 && elen >= 8) {
            id = rd8(p + 3);
            flags = rd32(p + 4);
        } else if (type == 9 && elen >= 16) {
            id = rd32(p + 4);
            flags = rd32(p + 8);
        } else if (type == 1 && elen >= 12) {
            if (!ioapics++) {
                info->ioapic_addr = rd32(p + 4);
                info->ioapic_gsi_base = rd32(p + 8);
            }
        } else if (type == 2 && elen >= 10) {
            overrides++;
            if (rd8(p + 2) == 0 && rd8(p + 3) == 0) {
                irq0_override = true;
                info->irq0_gsi = rd32(p + 4);
                info->irq0_flags = rd16(p + 8);
            }
        }
        if (id != ~0u) {
            total++;
            if (flags & 1) {
                if (info->ncpus < ACPI_MAX_CPUS)
                    info->apic_ids[info->ncpus] = id;
                info->ncpus++;
            }
        }
        p += elen;
    }
    if (bad)
        return;
    if (!info->ncpus) {
        fail("madt", "no enabled processor among %u entries", total);
        return;
    }
    if (info->ncpus > ACPI_MAX_CPUS) {
        fail("madt", "%u enabled processors, more than this guest handles (%u)", info->ncpus,
             ACPI_MAX_CPUS);
        return;
    }
    info->madt_ok = true;
    ok("madt: at 0x%x, checksum valid, %u enabled processors of %u, local APIC at 0x%x",
       a, info->ncpus, total, info->lapic_addr);
    if (!ioapics)
        fail("madt-ioapic", "the MADT lists no IOAPIC");
    else
        ok("madt-ioapic: IOAPIC at 0x%x, GSI base %u (%u IOAPICs)", info->ioapic_addr,
           info->ioapic_gsi_base, ioapics);
    if (irq0_override)
        ok("madt-irq0: IRQ0 -> GSI %u, flags 0x%x (%u overrides)", info->irq0_gsi,
           info->irq0_flags, overrides);
    else
        ok("madt-irq0: no override for IRQ0: GSI 0, ISA defaults (%u overrides)", overrides);
}

/* Reads one integer element of an AML package; returns its length, 0 if it is not
 * a constant this guest decodes. */
static uint32_t aml_int(uint32_t p, uint32_t end, uint32_t *val)
{
    if (p >= end)
        return 0;
    switch (rd8(p)) {
    case 0x00: *val = 0; return 1;                                 /* ZeroOp */
    case 0x01: *val = 1; return 1;                                 /* OneOp */
    case 0x0A: if (p + 2 > end) return 0; *val = rd8(p + 1); return 2;  /* BytePrefix */
    case 0x0B: if (p + 3 > end) return 0; *val = rd16(p + 1); return 3; /* WordPrefix */
    case 0x0C: if (p + 5 > end) return 0; *val = rd32(p + 1); return 5; /* DWordPrefix */
    default: return 0;
    }
}

/* The _S5_ object the way small OSes find it: the name preceded by NameOp (optionally
 * with a root prefix), then a Package whose first two elements are SLP_TYPa and b. */
static void find_s5(uint32_t dsdt, uint32_t len, struct acpi_info *info)
{
    uint32_t end = dsdt + len;
    for (uint32_t p = dsdt + SDT_HEADER + 1; p + 4 < end; p++) {
        if (!sig_is(p, "_S5_", 4))
            continue;
        bool named = rd8(p - 1) == 0x08 || (rd8(p - 1) == '\\' && p >= dsdt + SDT_HEADER + 2 &&
                                            rd8(p - 2) == 0x08);
        uint32_t q = p + 4;
        if (!named || rd8(q) != 0x12) /* PackageOp */
            continue;
        q++;
        q += 1 + (rd8(q) >> 6); /* PkgLength: bits 7:6 of the lead byte count extra bytes */
        q++;                    /* NumElements */
        uint32_t a, b, n;
        if (!(n = aml_int(q, end, &a)) || !aml_int(q + n, end, &b)) {
            fail("s5", "_S5_ at DSDT offset %u: package elements are not constants",
                 p - dsdt);
            return;
        }
        if (a > 7 || b > 7) {
            fail("s5", "_S5_ SLP_TYPa %u / SLP_TYPb %u do not fit the 3-bit field", a, b);
            return;
        }
        info->slp_typa = (uint8_t)a;
        info->slp_typb = (uint8_t)b;
        info->s5_ok = true;
        ok("s5: _S5_ at DSDT offset %u: SLP_TYPa %u, SLP_TYPb %u", p - dsdt, a, b);
        return;
    }
    fail("s5", "no Name(_S5_, Package) in the DSDT");
}

static void check_fadt(uint64_t addr, struct acpi_info *info)
{
    uint32_t len = table_check(addr, "FACP", "fadt");
    if (!len)
        return;
    uint32_t a = (uint32_t)addr;
    if (len < FADT_FLAGS + 4) {
        fail("fadt", "FADT of %u bytes is too short for the PM fields", len);
        return;
    }
    info->pm1a_cnt = (uint16_t)rd32(a + FADT_PM1A_CNT);
    info->pm1b_cnt = (uint16_t)rd32(a + FADT_PM1B_CNT);
    info->pm_tmr = (uint16_t)rd32(a + FADT_PM_TMR);
    info->pm_tmr_ext = rd32(a + FADT_FLAGS) & FADT_FLAG_TMR_VAL_EXT;
    info->smi_cmd = rd32(a + FADT_SMI_CMD);
    info->acpi_enable = rd8(a + FADT_ACPI_ENABLE);
    if (!info->pm1a_cnt || !info->pm_tmr || rd8(a + FADT_PM_TMR_LEN) != 4) {
        fail("fadt", "PM1a_CNT_BLK 0x%x, PM_TMR_BLK 0x%x (length %u): need both, timer "
             "length 4", info->pm1a_cnt, info->pm_tmr, rd8(a + FADT_PM_TMR_LEN));
        return;
    }
    info->fadt_ok = true;
    ok("fadt: at 0x%x, revision %u, checksum valid, PM1a_CNT 0x%x, PM_TMR 0x%x (%u-bit), "
       "SMI_CMD 0x%x", a, rd8(a + 8), info->pm1a_cnt, info->pm_tmr,
       info->pm_tmr_ext ? 32 : 24, info->smi_cmd);

    uint64_t dsdt = rd32(a + FADT_DSDT);
    if (len >= FADT_X_DSDT + 8 && rd64(a + FADT_X_DSDT))
        dsdt = rd64(a + FADT_X_DSDT);
    uint32_t dlen = table_check(dsdt, "DSDT", "dsdt");
    if (!dlen)
        return;
    ok("dsdt: at 0x%x, %u bytes, checksum valid", (uint32_t)dsdt, dlen);
    find_s5((uint32_t)dsdt, dlen, info);
}

void acpi_check(struct acpi_info *info)
{
    memset(info, 0, sizeof(*info));
    uint32_t ebda = (uint32_t)rd16(BDA_EBDA_SEGMENT) << 4, rsdp = 0;
    const char *where = "EBDA";
    if (ebda >= 0x80000 && ebda < 0xA0000)
        rsdp = scan_rsdp(ebda, ebda + EBDA_SCAN_BYTES);
    if (!rsdp) {
        rsdp = scan_rsdp(BIOS_AREA_START, BIOS_AREA_END);
        where = "BIOS area 0xE0000-0xFFFFF";
    }
    if (!rsdp) {
        fail("rsdp", "no \"RSD PTR \" with a valid checksum in the EBDA (0x%x) or "
             "0xE0000-0xFFFFF", ebda);
        return;
    }
    uint8_t rev = rd8(rsdp + 15);
    char oem[7];
    memcpy(oem, (const void *)(uintptr_t)(rsdp + 9), 6);
    oem[6] = '\0';
    uint32_t xlen = rd32(rsdp + 20);
    if (rev >= 2 && (xlen < 36 || xlen > 4096 || sum(rsdp, xlen))) {
        fail("rsdp", "at 0x%x: revision %u, extended checksum over %u bytes is bad", rsdp,
             rev, xlen);
        return;
    }
    ok("rsdp: at 0x%x in the %s, revision %u, OEM \"%s\", checksum%s valid", rsdp, where, rev,
       oem, rev >= 2 ? "s" : "");

    struct root rsdt = { 0 }, xsdt = { 0 }, *root = NULL;
    if (check_root(&rsdt, rd32(rsdp + 16), 4, "RSDT", "rsdt"))
        root = &rsdt;
    uint64_t xaddr = rev >= 2 ? rd64(rsdp + 24) : 0;
    if (!xaddr)
        skip("xsdt: RSDP revision %u points to no XSDT", rev);
    else if (xaddr >= 0x100000000ull)
        fail("xsdt", "XSDT at 0x%llx is beyond 4 GiB", xaddr);
    else if (check_root(&xsdt, (uint32_t)xaddr, 8, "XSDT", "xsdt"))
        root = &xsdt; /* ACPI 2.0+: the XSDT wins over the RSDT */
    if (!root)
        return;

    uint64_t madt = root_find(root, "APIC"), fadt = root_find(root, "FACP");
    if (madt)
        check_madt(madt, info);
    else
        fail("madt", "no APIC table in the %s", root == &xsdt ? "XSDT" : "RSDT");
    if (fadt)
        check_fadt(fadt, info);
    else
        fail("fadt", "no FACP table in the %s", root == &xsdt ? "XSDT" : "RSDT");
}

void acpi_enable_check(const struct acpi_info *info)
{
    if (!info->fadt_ok)
        return;
    uint16_t cnt = inw(info->pm1a_cnt);
    if (cnt & PM1_SCI_EN) {
        ok("acpi-mode: SCI_EN already set in PM1a_CNT (0x%x)", cnt);
        return;
    }
    if (!info->smi_cmd || !info->acpi_enable) {
        fail("acpi-mode", "SCI_EN clear and no SMI_CMD/ACPI_ENABLE to set it (0x%x/0x%x)",
             info->smi_cmd, info->acpi_enable);
        return;
    }
    outb((uint16_t)info->smi_cmd, info->acpi_enable);
    uint64_t dl = deadline_ms(500);
    while (!((cnt = inw(info->pm1a_cnt)) & PM1_SCI_EN) && !expired(dl))
        delay_us(1000);
    if (cnt & PM1_SCI_EN)
        ok("acpi-mode: ACPI_ENABLE 0x%x to SMI_CMD 0x%x set SCI_EN", info->acpi_enable,
           info->smi_cmd);
    else
        fail("acpi-mode", "SCI_EN still clear 500 ms after ACPI_ENABLE 0x%x to SMI_CMD 0x%x",
             info->acpi_enable, info->smi_cmd);
}

void acpi_poweroff(const struct acpi_info *info)
{
    if (!info->fadt_ok || !info->s5_ok) {
        fail("poweroff", "no PM1a_CNT or _S5_ to power off with");
        return;
    }
    uart_drain();
    /* The order ACPICA writes them in: A, then B when the chipset has one. */
    outw(info->pm1a_cnt, (uint16_t)((inw(info->pm1a_cnt) & PM1_SCI_EN) |
                                     (info->slp_typa << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN));
    if (info->pm1b_cnt)
        outw(info->pm1b_cnt, (uint16_t)((inw(info->pm1b_cnt) & PM1_SCI_EN) |
                                         (info->slp_typb << PM1_SLP_TYP_SHIFT) | PM1_SLP_EN));
    uint64_t dl = deadline_ms(1000);
    while (!expired(dl))
        delay_us(1000);
    fail("poweroff", "still running 1 s after SLP_TYP %u | SLP_EN to PM1a_CNT 0x%x",
         info->slp_typa, info->pm1a_cnt);
}
