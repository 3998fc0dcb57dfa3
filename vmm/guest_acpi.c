/* Guest ACPI tables (see guest_acpi.h). Layouts are those of drivers/acpi_tables.h,
 * the ones Keel's own parser reads, written field by field into a zeroed buffer; each
 * table's checksum is set last, once its bytes are final. */
#include "vmm/guest_acpi.h"
#include "drivers/acpi_tables.h"
#include "vmm/dev/acpi_pm.h"
#include "vmm/dev/rtc_cmos.h"
#include "vmm/dev/pci_endpoint.h"
#include "vmm/lib/string.h"

#define OEM_ID "KEEL  "
#define OEM_TABLE_ID "KEELVPC "
#define OEM_REVISION 1
#define CREATOR_ID 0x4c45454bu /* "KEEL" */
#define CREATOR_REVISION 1

#define MADT_REVISION 3
#define FADT_REVISION 3
#define FADT_REV3_LEN 244 /* ACPI 2.0: up to X_GPE1_BLK */
#define DSDT_REVISION 2   /* 64-bit integers */
#define RSDT_REVISION 1
#define XSDT_REVISION 1
#define FACS_LEN 64
#define FACS_VERSION 2

/* FADT flags (ACPI 6.x table 5.10). */
#define FADT_WBINVD BIT(0)
#define FADT_PROC_C1 BIT(2)
#define FADT_SLP_BUTTON BIT(5) /* no fixed-feature sleep button */
/* IAPC_BOOT_ARCH: no VGA behind the usual ports and memory. */
#define BOOT_ARCH_VGA_NOT_PRESENT BIT(2)
/* C2 and C3 latencies above 100 and 1000 us say the states are not supported. */
#define P_LVL2_NONE 0x0fff
#define P_LVL3_NONE 0x0fff

/* MPS INTI flags of the overrides: polarity in bits 1:0, trigger mode in bits 3:2. */
#define INTI_ACTIVE_HIGH 0x1
#define INTI_LEVEL 0xc
#define ISA_TIMER_IRQ 0
#define ISA_TIMER_GSI 2
#define LAPIC_NMI_ALL 0xff
#define LAPIC_NMI_LINT1 1

#define GAS_ACCESS_BYTE 1
#define GAS_ACCESS_WORD 2
#define GAS_ACCESS_DWORD 3

#define FACS_ALIGN 64
#define TABLE_ALIGN 16

/* AML (ACPI 6.x chapter 20): the opcodes are acpi_tables.h's. */
#define S5_ELEMENTS 4

STATIC_ASSERT(sizeof(struct acpi_fadt) >= FADT_REV3_LEN, "the FADT struct covers revision 3");
STATIC_ASSERT(ACPI_PM1_EVT_LEN * 8 == 32 && ACPI_PM1_CNT_LEN * 8 == 16 && ACPI_PM_TMR_LEN * 8 == 32,
              "the X_ block widths below follow acpi_pm's block lengths");

static uint8_t checksum(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *b++);
    return (uint8_t)-s;
}

static void header(struct acpi_sdt_header *h, const char *sig, uint32_t len, uint8_t revision)
{
    memcpy(h->signature, sig, 4);
    h->length = len;
    h->revision = revision;
    memcpy(h->oem_id, OEM_ID, 6);
    memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
    h->oem_revision = OEM_REVISION;
    h->creator_id = CREATOR_ID;
    h->creator_revision = CREATOR_REVISION;
}

static void seal(struct acpi_sdt_header *h)
{
    h->checksum = 0;
    h->checksum = checksum(h, h->length);
}

static struct acpi_gas io_gas(uint16_t port, uint8_t bits, uint8_t access)
{
    return (struct acpi_gas){.space_id = ACPI_GAS_IO, .bit_width = bits, .access_size = access, .address = port};
}

/* An AML integer constant for v < 256: ZeroOp and OneOp are one byte, the rest a
 * BytePrefix and the byte, as iasl encodes them. */
static size_t aml_byte_const(uint8_t *p, uint8_t v)
{
    if (v <= 1) {
        p[0] = v;
        return 1;
    }
    p[0] = AML_BYTE_PREFIX;
    p[1] = v;
    return 2;
}

/* The DSDT's AML:
 *     DefinitionBlock ("", "DSDT", 2, "KEEL  ", "KEELVPC ", 1)
 *     {
 *         Name (_S5, Package (0x04) { SLP_TYP, SLP_TYP, Zero, Zero })
 *         Scope (\_SB) { Device (PCI0) { ... } }       (with pci_root, see pci0_aml)
 *     }
 * with SLP_TYP = ACPI_PM_SLP_TYP_S5, which for 0 is
 *     08 5F 53 35 5F   NameOp "_S5_"
 *     12 06 04         PackageOp, PkgLength 6 (itself, the count, four elements), 4 elements
 *     00 00 00 00      ZeroOp x 4
 * Writes at most DSDT_AML_MAX bytes; returns the count. */
#define S5_AML_MAX (5 + 3 + 4 * 2)
#define PRT_ENTRY_AML 12 /* PackageOp, PkgLength, 4, DWord address, Zero, Zero, Byte GSI */
#define PCI0_AML_MAX (8 + 8 + 10 + 6 + 10 + PCI0_CRS_BYTES + 10 + 32 * PRT_ENTRY_AML)
#define DSDT_AML_MAX (S5_AML_MAX + PCI0_AML_MAX)
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_EXT_PREFIX 0x5b
#define AML_DEVICE_OP 0x82
#define EISA_PNP0A03 0x030ad041u /* EisaId ("PNP0A03"): PCI bus */
#define PCI_INTA 0

/* PCI0._CRS, the resource descriptors of ACPI 6.x 6.4 (Word/DWord Address Space
 * descriptors: type, general flags MinFixed|MaxFixed = 0x0C, type flags, then
 * granularity, minimum, maximum, translation and length). */
#define PCI0_CRS_BYTES (16 + 8 + 16 + 16 + 26 + 2)
static size_t pci0_crs(uint8_t *p)
{
    static const uint8_t fixed[] = {
        /* WordBusNumber 0-0xFF */
        0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01,
        /* IO (Decode16, 0xCF8, 0xCF8, 1, 8): the config mechanism's own ports */
        0x47, 0x01, 0xf8, 0x0c, 0xf8, 0x0c, 0x01, 0x08,
        /* WordIO 0x0000-0x0CF7, entire range */
        0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x00, 0xf7, 0x0c, 0x00, 0x00, 0xf8, 0x0c,
        /* WordIO 0x0D00-0xFFFF */
        0x88, 0x0d, 0x00, 0x01, 0x0c, 0x03, 0x00, 0x00, 0x00, 0x0d, 0xff, 0xff, 0x00, 0x00, 0x00, 0xf3,
        /* DWordMemory, read-write, non-cacheable: the rest is filled in below */
        0x87, 0x17, 0x00, 0x00, 0x0c, 0x01,
    };
    size_t n = sizeof fixed;
    memcpy(p, fixed, n);
    const uint32_t mem[5] = {0, (uint32_t)PCI_MMIO_WINDOW_BASE, (uint32_t)(PCI_MMIO_WINDOW_END - 1), 0,
                             (uint32_t)(PCI_MMIO_WINDOW_END - PCI_MMIO_WINDOW_BASE)};
    memcpy(p + n, mem, sizeof mem);
    n += sizeof mem;
    p[n++] = 0x79; /* end tag; checksum 0: "treat as correct" */
    p[n++] = 0x00;
    return n;
}
STATIC_ASSERT(PCI0_CRS_BYTES < 256, "the _CRS buffer size is a ByteConst");

/* A package opened at `at` with two bytes reserved for its PkgLength is closed at
 * `end`: the length is written in the shortest form (ACPI 6.x 20.2.4), moving the
 * contents down a byte when one suffices. Returns the new end. */
static size_t aml_close(uint8_t *aml, size_t at, size_t end)
{
    size_t len = end - at; /* with two length bytes */
    if (len - 1 < 64) {
        memmove(aml + at + 1, aml + at + 2, end - at - 2);
        aml[at] = (uint8_t)(len - 1);
        return end - 1;
    }
    aml[at] = (uint8_t)(0x40 | (len & 0xf));
    aml[at + 1] = (uint8_t)(len >> 4);
    return end;
}

static size_t aml_name(uint8_t *p, const char *name)
{
    p[0] = AML_NAME_OP;
    memcpy(p + 1, name, 4);
    return 5;
}

static size_t aml_dword(uint8_t *p, uint32_t v)
{
    p[0] = AML_DWORD_PREFIX;
    memcpy(p + 1, &v, 4);
    return 5;
}

/*     Scope (\_SB) { Device (PCI0) {
 *         Name (_HID, EisaId ("PNP0A03"))  Name (_UID, Zero)
 *         Name (_CRS, ResourceTemplate () { ... })
 *         Name (_PRT, Package () { Package () { 0xSSSSFFFF, 0, Zero, GSI }, ... })
 *     } } */
static size_t pci0_aml(uint8_t *aml, uint32_t slots)
{
    size_t n = 0;
    aml[n++] = AML_SCOPE_OP;
    size_t scope = n;
    n += 2;
    aml[n++] = AML_ROOT_CHAR;
    memcpy(aml + n, "_SB_", 4);
    n += 4;
    aml[n++] = AML_EXT_PREFIX;
    aml[n++] = AML_DEVICE_OP;
    size_t device = n;
    n += 2;
    memcpy(aml + n, "PCI0", 4);
    n += 4;
    n += aml_name(aml + n, "_HID");
    n += aml_dword(aml + n, EISA_PNP0A03);
    n += aml_name(aml + n, "_UID");
    aml[n++] = AML_ZERO_OP;
    n += aml_name(aml + n, "_CRS");
    aml[n++] = AML_BUFFER_OP;
    size_t buffer = n;
    n += 2;
    n += aml_byte_const(aml + n, PCI0_CRS_BYTES);
    n += pci0_crs(aml + n);
    n = aml_close(aml, buffer, n);
    n += aml_name(aml + n, "_PRT");
    aml[n++] = AML_PACKAGE_OP;
    size_t prt = n;
    n += 2;
    size_t count_at = n++;
    unsigned count = 0;
    for (unsigned d = 0; d < 32; d++) {
        if (!(slots & (1u << d)))
            continue;
        aml[n++] = AML_PACKAGE_OP;
        size_t entry = n;
        n += 2;
        aml[n++] = 4;
        n += aml_dword(aml + n, d << 16 | 0xffff); /* any function of device d */
        aml[n++] = PCI_INTA;                      /* ZeroOp: INTA# */
        aml[n++] = AML_ZERO_OP;                   /* no link device: the next field is a GSI */
        n += aml_byte_const(aml + n, (uint8_t)PCI_INTX_IRQ(d));
        n = aml_close(aml, entry, n);
        count++;
    }
    aml[count_at] = (uint8_t)count;
    n = aml_close(aml, prt, n);
    n = aml_close(aml, device, n);
    return aml_close(aml, scope, n);
}

static size_t dsdt_aml(uint8_t *aml, const struct guest_acpi_cfg *cfg)
{
    size_t n = 0;
    aml[n++] = AML_NAME_OP;
    memcpy(aml + n, "_S5_", 4);
    n += 4;
    aml[n++] = AML_PACKAGE_OP;
    size_t pkglen_at = n++;
    aml[n++] = S5_ELEMENTS;
    n += aml_byte_const(aml + n, ACPI_PM_SLP_TYP_S5);
    n += aml_byte_const(aml + n, ACPI_PM_SLP_TYP_S5);
    n += aml_byte_const(aml + n, 0);
    n += aml_byte_const(aml + n, 0);
    /* A one-byte PkgLength (< 64) counts itself and what follows it in the package. */
    aml[pkglen_at] = (uint8_t)(n - pkglen_at);
    if (cfg->pci_root)
        n += pci0_aml(aml + n, cfg->pci_slots);
    return n;
}

static uint32_t madt_len(uint32_t vcpus)
{
    return (uint32_t)(sizeof(struct acpi_madt) + vcpus * sizeof(struct acpi_madt_lapic) +
                      sizeof(struct acpi_madt_ioapic) + 2 * sizeof(struct acpi_madt_iso) +
                      sizeof(struct acpi_madt_lapic_nmi));
}

static void build_madt(uint8_t *t, const struct guest_acpi_cfg *cfg)
{
    struct acpi_madt *m = (struct acpi_madt *)t;
    uint32_t len = madt_len(cfg->vcpus);
    header(&m->h, "APIC", len, MADT_REVISION);
    m->lapic_address = (uint32_t)cfg->lapic_base;
    m->flags = ACPI_MADT_PCAT_COMPAT;
    uint8_t *p = t + sizeof *m;
    for (uint32_t i = 0; i < cfg->vcpus; i++) {
        struct acpi_madt_lapic e = {.e = {MADT_LAPIC, sizeof e}, .uid = (uint8_t)i, .apic_id = (uint8_t)i,
                                    .flags = ACPI_MADT_CPU_ENABLED};
        memcpy(p, &e, sizeof e);
        p += sizeof e;
    }
    struct acpi_madt_ioapic io = {.e = {MADT_IOAPIC, sizeof io}, .id = cfg->ioapic_id,
                                  .address = (uint32_t)cfg->ioapic_base, .gsi_base = 0};
    memcpy(p, &io, sizeof io);
    p += sizeof io;
    /* The PIT's IRQ 0 reaches IOAPIC pin 2, as on QEMU's PC (flags 0: as the bus, edge). */
    struct acpi_madt_iso timer = {.e = {MADT_ISO, sizeof timer}, .bus = 0, .source = ISA_TIMER_IRQ,
                                  .gsi = ISA_TIMER_GSI, .flags = 0};
    memcpy(p, &timer, sizeof timer);
    p += sizeof timer;
    /* The SCI is level-triggered, active high (ACPI 6.x 5.2.12.5). */
    struct acpi_madt_iso sci = {.e = {MADT_ISO, sizeof sci}, .bus = 0, .source = ACPI_PM_SCI_IRQ,
                                .gsi = ACPI_PM_SCI_IRQ, .flags = INTI_ACTIVE_HIGH | INTI_LEVEL};
    memcpy(p, &sci, sizeof sci);
    p += sizeof sci;
    struct acpi_madt_lapic_nmi nmi = {.e = {MADT_LAPIC_NMI, sizeof nmi}, .uid = LAPIC_NMI_ALL, .flags = 0,
                                      .lint = LAPIC_NMI_LINT1};
    memcpy(p, &nmi, sizeof nmi);
    seal(&m->h);
}

static void build_fadt(uint8_t *t, const struct guest_acpi_cfg *cfg, gpa_t facs, gpa_t dsdt)
{
    struct acpi_fadt f;
    memset(&f, 0, sizeof f);
    header(&f.h, "FACP", FADT_REV3_LEN, FADT_REVISION);
    f.firmware_ctrl = (uint32_t)facs; /* X_FIRMWARE_CTRL stays 0: one of the two, as ACPI asks */
    f.dsdt = (uint32_t)dsdt;
    f.x_dsdt = dsdt;
    f.sci_int = ACPI_PM_SCI_IRQ;
    uint16_t evt = (uint16_t)(cfg->pm_base + ACPI_PM1_EVT_OFF);
    uint16_t cnt = (uint16_t)(cfg->pm_base + ACPI_PM1_CNT_OFF);
    uint16_t tmr = (uint16_t)(cfg->pm_base + ACPI_PM_TMR_OFF);
    f.pm1a_evt_blk = evt;
    f.pm1a_cnt_blk = cnt;
    f.pm_tmr_blk = tmr;
    f.pm1_evt_len = ACPI_PM1_EVT_LEN;
    f.pm1_cnt_len = ACPI_PM1_CNT_LEN;
    f.pm_tmr_len = ACPI_PM_TMR_LEN;
    f.p_lvl2_lat = P_LVL2_NONE;
    f.p_lvl3_lat = P_LVL3_NONE;
    f.century = RTC_CMOS_CENTURY;
    f.iapc_boot_arch = ACPI_BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_VGA_NOT_PRESENT |
                       (cfg->i8042 ? ACPI_BOOT_ARCH_8042 : 0);
    /* 24-bit PM timer: TMR_VAL_EXT stays clear. */
    f.flags = FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | ACPI_FADT_RESET_REG_SUP;
    f.reset_reg = io_gas(ACPI_PM_RCR_PORT, 8, GAS_ACCESS_BYTE);
    f.reset_value = ACPI_PM_RESET_VALUE;
    f.x_pm1a_evt_blk = io_gas(evt, ACPI_PM1_EVT_LEN * 8, GAS_ACCESS_WORD);
    f.x_pm1a_cnt_blk = io_gas(cnt, ACPI_PM1_CNT_LEN * 8, GAS_ACCESS_WORD);
    f.x_pm_tmr_blk = io_gas(tmr, ACPI_PM_TMR_LEN * 8, GAS_ACCESS_DWORD);
    memcpy(t, &f, FADT_REV3_LEN);
    seal((struct acpi_sdt_header *)t);
}

static void build_facs(uint8_t *t)
{
    memcpy(t, "FACS", 4);
    uint32_t len = FACS_LEN;
    memcpy(t + 4, &len, 4);
    t[32] = FACS_VERSION; /* the rest (signature, waking vectors, lock, flags) is 0 */
}

static void build_dsdt(uint8_t *t, const struct guest_acpi_cfg *cfg)
{
    struct acpi_sdt_header *h = (struct acpi_sdt_header *)t;
    size_t aml = dsdt_aml(t + sizeof *h, cfg);
    header(h, "DSDT", (uint32_t)(sizeof *h + aml), DSDT_REVISION);
    seal(h);
}

static void build_root(uint8_t *t, const char *sig, bool wide, const gpa_t *tables, unsigned n)
{
    struct acpi_sdt_header *h = (struct acpi_sdt_header *)t;
    unsigned entry = wide ? 8 : 4;
    header(h, sig, (uint32_t)(sizeof *h + n * entry), wide ? XSDT_REVISION : RSDT_REVISION);
    for (unsigned i = 0; i < n; i++) {
        uint64_t a = tables[i];
        memcpy(t + sizeof *h + i * entry, &a, entry); /* little-endian: the low bytes first */
    }
    seal(h);
}

static void build_rsdp(uint8_t *t, gpa_t rsdt, gpa_t xsdt)
{
    struct acpi_rsdp r;
    memset(&r, 0, sizeof r);
    memcpy(r.signature, ACPI_RSDP_SIGNATURE, 8);
    memcpy(r.oem_id, OEM_ID, 6);
    r.revision = 2;
    r.rsdt_address = (uint32_t)rsdt;
    r.length = sizeof r;
    r.xsdt_address = xsdt;
    r.checksum = checksum(&r, ACPI_RSDP_V1_LEN);
    r.extended_checksum = checksum(&r, sizeof r);
    memcpy(t, &r, sizeof r);
}

/* Where each table goes, as offsets from base; `end` is the bytes used. */
struct layout {
    size_t rsdp, facs, dsdt, fadt, madt, rsdt, xsdt, end;
};

/* Next offset at or after off whose guest-physical address is align-aligned. */
static size_t aligned(gpa_t base, size_t off, size_t align)
{
    return (size_t)(ALIGN_UP(base + off, align) - base);
}

static struct layout plan(gpa_t base, const struct guest_acpi_cfg *cfg)
{
    uint32_t vcpus = cfg->vcpus;
    struct layout L;
    uint8_t aml[DSDT_AML_MAX];
    L.rsdp = 0;
    L.facs = aligned(base, L.rsdp + sizeof(struct acpi_rsdp), FACS_ALIGN);
    L.dsdt = aligned(base, L.facs + FACS_LEN, TABLE_ALIGN);
    L.fadt = aligned(base, L.dsdt + sizeof(struct acpi_sdt_header) + dsdt_aml(aml, cfg), TABLE_ALIGN);
    L.madt = aligned(base, L.fadt + FADT_REV3_LEN, TABLE_ALIGN);
    L.rsdt = aligned(base, L.madt + madt_len(vcpus), TABLE_ALIGN);
    L.xsdt = aligned(base, L.rsdt + sizeof(struct acpi_sdt_header) + 2 * 4, TABLE_ALIGN);
    L.end = L.xsdt + sizeof(struct acpi_sdt_header) + 2 * 8;
    return L;
}

int guest_acpi_build(void *buf, size_t size, gpa_t base, const struct guest_acpi_cfg *cfg, gpa_t *rsdp)
{
    if (!buf || !cfg || cfg->vcpus == 0 || cfg->vcpus > GUEST_ACPI_MAX_VCPUS)
        return GUEST_ACPI_EINVAL;
    if (cfg->lapic_base > UINT32_MAX || cfg->ioapic_base > UINT32_MAX || cfg->pm_base > 0xffffu - ACPI_PM_TMR_OFF)
        return GUEST_ACPI_EINVAL;
    /* The RSDP scan looks on 16-byte boundaries inside the BIOS area only. */
    if (base % TABLE_ALIGN || base < GUEST_ACPI_AREA || base >= GUEST_ACPI_AREA_END ||
        size > GUEST_ACPI_AREA_END - base)
        return GUEST_ACPI_EINVAL;
    struct layout L = plan(base, cfg);
    if (L.end > size)
        return GUEST_ACPI_ENOSPC;

    uint8_t *b = buf;
    memset(b, 0, L.end);
    build_facs(b + L.facs);
    build_dsdt(b + L.dsdt, cfg);
    build_fadt(b + L.fadt, cfg, base + L.facs, base + L.dsdt);
    build_madt(b + L.madt, cfg);
    const gpa_t tables[] = {base + L.fadt, base + L.madt};
    build_root(b + L.rsdt, "RSDT", false, tables, ARRAY_SIZE(tables));
    build_root(b + L.xsdt, "XSDT", true, tables, ARRAY_SIZE(tables));
    build_rsdp(b + L.rsdp, base + L.rsdt, base + L.xsdt);
    if (rsdp)
        *rsdp = base + L.rsdp;
    return (int)L.end;
}
