/* ACPI static table parser. Firmware tables are untrusted input: each is checked for
 * signature, length bounds and checksum before a byte of it is used, and every
 * variable-length structure inside is bounds-checked against the table's length.
 * A bad table is reported and skipped; the others are still used. */
#include "drivers/acpi.h"
#include "drivers/acpi_tables.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define RSDP_MAX_LEN 1024 /* v2 is 36 bytes; anything far above that is garbage */

static const void *phys(hpa_t pa)
{
    return (const void *)(uintptr_t)pa;
}

static uint8_t sum_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t s = 0;
    while (n--)
        s = (uint8_t)(s + *b++);
    return s;
}

/* Signatures of unknown tables come from firmware: keep them printable. */
static void printable_sig(char out[5], const char *sig)
{
    for (int i = 0; i < 4; i++)
        out[i] = (sig[i] >= 0x20 && sig[i] < 0x7f) ? sig[i] : '?';
    out[4] = 0;
}

/* Returns the table at `pa` if its signature is `want`, its length lies in
 * [min_len, max_len] and its checksum is right; otherwise says why and returns NULL. */
static const struct acpi_sdt_header *check_table(hpa_t pa, const char *want, const char *name,
                                                 uint32_t min_len, uint32_t max_len)
{
    if (!pa) {
        kprintf("ACPI: %s: address is 0, skipped\n", name);
        return NULL;
    }
    const struct acpi_sdt_header *h = phys(pa);
    if (memcmp(h->signature, want, 4) != 0) {
        char got[5];
        printable_sig(got, h->signature);
        kprintf("ACPI: %s at 0x%lx: signature is \"%s\", skipped\n", name, pa, got);
        return NULL;
    }
    uint32_t len = h->length;
    if (len < min_len) {
        kprintf("ACPI: %s at 0x%lx: length %u is below the minimum %u, skipped\n", name, pa, len,
                min_len);
        return NULL;
    }
    if (len > max_len) {
        kprintf("ACPI: %s at 0x%lx: length %u is above the limit %u, skipped\n", name, pa, len,
                max_len);
        return NULL;
    }
    if (pa + len < pa) {
        kprintf("ACPI: %s at 0x%lx: length %u wraps the address space, skipped\n", name, pa, len);
        return NULL;
    }
    uint8_t s = sum_bytes(h, len);
    if (s != 0) {
        kprintf("ACPI: %s at 0x%lx: bad checksum (bytes sum to 0x%02x), skipped\n", name, pa, s);
        return NULL;
    }
    return h;
}

/* ---- MADT ---------------------------------------------------------------------- */

static void madt_add_cpu(struct acpi_info *o, uint32_t apic_id, uint32_t uid, uint32_t flags,
                         bool x2apic)
{
    for (uint32_t i = 0; i < o->cpu_count; i++) {
        if (o->cpus[i].apic_id == apic_id) {
            kprintf("ACPI: MADT: APIC id %u listed twice, second entry ignored\n", apic_id);
            return;
        }
    }
    bool enabled = flags & ACPI_MADT_CPU_ENABLED;
    bool online_capable = !enabled && (flags & ACPI_MADT_CPU_ONLINE_CAPABLE);
    o->cpus_listed++;
    if (enabled)
        o->cpus_enabled++;
    if (!enabled && !online_capable)
        return;
    if (o->cpu_count == ACPI_MAX_CPUS) {
        o->cpus_dropped++;
        return;
    }
    struct acpi_cpu *c = &o->cpus[o->cpu_count++];
    c->apic_id = apic_id;
    c->uid = uid;
    c->enabled = enabled;
    c->online_capable = online_capable;
    c->x2apic_entry = x2apic;
}

static void madt_add_nmi(struct acpi_info *o, uint32_t uid, uint8_t lint, uint16_t flags)
{
    if (lint > 1) {
        kprintf("ACPI: MADT: NMI entry for LINT%u ignored (only LINT0/1 exist)\n", lint);
        return;
    }
    if (o->nmi_count == ACPI_MAX_NMIS) {
        kprintf("ACPI: MADT: more than %u NMI entries, extra ignored\n", ACPI_MAX_NMIS);
        return;
    }
    o->nmis[o->nmi_count++] = (struct acpi_nmi){.uid = uid, .lint = lint, .flags = flags};
}

/* Minimum entry length for each type Keel reads; 0 for types it skips. */
static uint8_t madt_entry_min(uint8_t type)
{
    switch (type) {
    case MADT_LAPIC: return sizeof(struct acpi_madt_lapic);
    case MADT_IOAPIC: return sizeof(struct acpi_madt_ioapic);
    case MADT_ISO: return sizeof(struct acpi_madt_iso);
    case MADT_LAPIC_NMI: return sizeof(struct acpi_madt_lapic_nmi);
    case MADT_LAPIC_OVERRIDE: return sizeof(struct acpi_madt_lapic_override);
    case MADT_X2APIC: return sizeof(struct acpi_madt_x2apic);
    case MADT_X2APIC_NMI: return sizeof(struct acpi_madt_x2apic_nmi);
    default: return 0;
    }
}

static void madt_entry(struct acpi_info *o, const uint8_t *e)
{
    switch (e[0]) {
    case MADT_LAPIC: {
        const struct acpi_madt_lapic *l = (const void *)e;
        madt_add_cpu(o, l->apic_id, l->uid, l->flags, false);
        break;
    }
    case MADT_X2APIC: {
        const struct acpi_madt_x2apic *x = (const void *)e;
        madt_add_cpu(o, x->x2apic_id, x->uid, x->flags, true);
        break;
    }
    case MADT_IOAPIC: {
        const struct acpi_madt_ioapic *io = (const void *)e;
        if (o->ioapic_count == ACPI_MAX_IOAPICS) {
            kprintf("ACPI: MADT: more than %u IOAPICs, IOAPIC id %u ignored\n", ACPI_MAX_IOAPICS,
                    io->id);
            break;
        }
        o->ioapics[o->ioapic_count++] = (struct acpi_ioapic){
            .id = io->id, .address = io->address, .gsi_base = io->gsi_base};
        break;
    }
    case MADT_ISO: {
        const struct acpi_madt_iso *iso = (const void *)e;
        if (o->iso_count == ACPI_MAX_ISOS) {
            kprintf("ACPI: MADT: more than %u interrupt overrides, IRQ %u ignored\n",
                    ACPI_MAX_ISOS, iso->source);
            break;
        }
        o->isos[o->iso_count++] = (struct acpi_iso){
            .bus = iso->bus, .source_irq = iso->source, .gsi = iso->gsi, .flags = iso->flags};
        break;
    }
    case MADT_LAPIC_NMI: {
        const struct acpi_madt_lapic_nmi *n = (const void *)e;
        madt_add_nmi(o, n->uid == 0xFF ? ACPI_UID_ALL : n->uid, n->lint, n->flags);
        break;
    }
    case MADT_X2APIC_NMI: {
        const struct acpi_madt_x2apic_nmi *n = (const void *)e;
        madt_add_nmi(o, n->uid, n->lint, n->flags);
        break;
    }
    case MADT_LAPIC_OVERRIDE: {
        const struct acpi_madt_lapic_override *ov = (const void *)e;
        if (ov->address) {
            o->lapic_address = ov->address;
            o->lapic_overridden = true;
        }
        break;
    }
    default:
        break;
    }
}

static bool parse_madt(struct acpi_info *o, hpa_t pa, const struct acpi_sdt_header *h)
{
    const struct acpi_madt *m = (const void *)h;
    const uint8_t *t = (const void *)h;
    uint32_t len = h->length;

    o->madt_address = pa;
    o->pcat_compat = m->flags & ACPI_MADT_PCAT_COMPAT;
    o->lapic_address = m->lapic_address;

    /* A broken entry makes every later offset meaningless: keep what came before. */
    uint32_t off = sizeof(struct acpi_madt);
    while (off < len) {
        if (len - off < sizeof(struct acpi_madt_entry)) {
            kprintf("ACPI: MADT at 0x%lx: %u stray bytes at offset %u ignored\n", pa, len - off,
                    off);
            break;
        }
        uint8_t type = t[off], elen = t[off + 1];
        if (elen < sizeof(struct acpi_madt_entry)) {
            kprintf("ACPI: MADT at 0x%lx: entry type %u at offset %u has length %u, rest of "
                    "table ignored\n", pa, type, off, elen);
            break;
        }
        if (elen > len - off) {
            kprintf("ACPI: MADT at 0x%lx: entry type %u at offset %u (length %u) runs past the "
                    "end of the table (length %u), rest of table ignored\n", pa, type, off, elen,
                    len);
            break;
        }
        uint8_t need = madt_entry_min(type);
        if (elen < need)
            kprintf("ACPI: MADT at 0x%lx: entry type %u at offset %u is %u bytes, needs %u, "
                    "skipped\n", pa, type, off, elen, need);
        else
            madt_entry(o, t + off);
        off += elen;
    }

    if (o->cpus_dropped)
        kprintf("ACPI: MADT: %u usable CPUs beyond the limit of %u ignored\n", o->cpus_dropped,
                ACPI_MAX_CPUS);
    if (o->cpu_count == 0)
        kprintf("ACPI: MADT at 0x%lx: lists no usable CPU\n", pa);
    if (!o->lapic_address)
        kprintf("ACPI: MADT at 0x%lx: local APIC address is 0\n", pa);
    return true;
}

/* ---- HPET ---------------------------------------------------------------------- */

static bool parse_hpet(struct acpi_info *o, hpa_t pa, const struct acpi_sdt_header *h)
{
    const struct acpi_hpet *t = (const void *)h;
    if (t->base.space_id != ACPI_GAS_MEMORY || t->base.address == 0) {
        kprintf("ACPI: HPET at 0x%lx: base is not a memory address (space %u, address 0x%lx), "
                "skipped\n", pa, t->base.space_id, (uint64_t)t->base.address);
        return false;
    }
    o->hpet_address = t->base.address;
    o->hpet_id = t->event_timer_block_id;
    o->hpet_number = t->hpet_number;
    o->hpet_min_tick = t->min_tick;
    return true;
}

/* ---- MCFG ---------------------------------------------------------------------- */

static bool parse_mcfg(struct acpi_info *o, hpa_t pa, const struct acpi_sdt_header *h)
{
    uint32_t body = h->length - sizeof(struct acpi_mcfg);
    uint32_t n = body / sizeof(struct acpi_mcfg_entry);
    if (body % sizeof(struct acpi_mcfg_entry))
        kprintf("ACPI: MCFG at 0x%lx: %u trailing bytes after the last entry ignored\n", pa,
                (uint32_t)(body % sizeof(struct acpi_mcfg_entry)));
    const struct acpi_mcfg_entry *e =
        (const void *)((const uint8_t *)h + sizeof(struct acpi_mcfg));
    for (uint32_t i = 0; i < n; i++, e++) {
        uint64_t base = e->base;
        uint16_t seg = e->segment;
        uint8_t start = e->start_bus, end = e->end_bus;
        if (start > end || base == 0 || (base & ((1u << 20) - 1))) {
            kprintf("ACPI: MCFG at 0x%lx: entry %u (segment %u buses %u-%u at 0x%lx) is "
                    "invalid, skipped\n", pa, i, seg, start, end, base);
            continue;
        }
        /* Bus b's window is at base + (b << 20); it must not wrap. */
        if (base + ((uint64_t)end + 1) * (1u << 20) < base) {
            kprintf("ACPI: MCFG at 0x%lx: entry %u wraps the address space, skipped\n", pa, i);
            continue;
        }
        if (o->mcfg_count == ACPI_MAX_MCFG) {
            kprintf("ACPI: MCFG: more than %u entries, segment %u ignored\n", ACPI_MAX_MCFG, seg);
            continue;
        }
        o->mcfg[o->mcfg_count++] =
            (struct acpi_mcfg_seg){.base = base, .segment = seg, .start_bus = start, .end_bus = end};
    }
    if (o->mcfg_count == 0) {
        kprintf("ACPI: MCFG at 0x%lx: no usable entry\n", pa);
        return false;
    }
    return true;
}

/* ---- FADT + DSDT ----------------------------------------------------------------- */

/* Reads an AML integer constant at aml[*p], not past `end`. */
static bool aml_integer(const uint8_t *aml, size_t *p, size_t end, uint64_t *v)
{
    if (*p >= end)
        return false;
    uint8_t op = aml[(*p)++];
    size_t n;
    switch (op) {
    case AML_ZERO_OP: *v = 0; return true;
    case AML_ONE_OP: *v = 1; return true;
    case AML_ONES_OP: *v = ~0ull; return true;
    case AML_BYTE_PREFIX: n = 1; break;
    case AML_WORD_PREFIX: n = 2; break;
    case AML_DWORD_PREFIX: n = 4; break;
    case AML_QWORD_PREFIX: n = 8; break;
    default: return false;
    }
    if (end - *p < n)
        return false;
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v |= (uint64_t)aml[*p + i] << (8 * i);
    *p += n;
    return true;
}

/* Parses Package(){...} right after "_S5_" at aml[p]. */
static const char *s5_package(const uint8_t *aml, size_t len, size_t p, uint8_t *a, uint8_t *b)
{
    if (p >= len || aml[p] != AML_PACKAGE_OP)
        return "_S5_ is not a package";
    p++;
    if (p >= len)
        return "PkgLength is truncated";
    /* PkgLength: bits 7:6 of the lead byte count the bytes that follow; with followers
     * the lead keeps only 4 bits. The length counts itself but not the opcode. */
    uint8_t lead = aml[p];
    size_t follow = lead >> 6;
    if (len - p < 1 + follow)
        return "PkgLength is truncated";
    size_t pkglen;
    if (follow == 0) {
        pkglen = lead & 0x3f;
    } else {
        if (lead & 0x30)
            return "PkgLength has reserved bits set";
        pkglen = lead & 0x0f;
        for (size_t i = 0; i < follow; i++)
            pkglen |= (size_t)aml[p + 1 + i] << (4 + 8 * i);
    }
    if (pkglen < 1 + follow + 1)
        return "PkgLength is too small";
    if (pkglen > len - p)
        return "package length runs past the end of the DSDT";
    size_t end = p + pkglen;
    p += 1 + follow;
    uint8_t count = aml[p++];
    if (count == 0)
        return "package is empty";

    uint64_t v0, v1;
    if (!aml_integer(aml, &p, end, &v0))
        return "SLP_TYPa is not an integer constant";
    if (count == 1) {
        /* Old firmware packs both values into one integer: a in byte 0, b in byte 1. */
        v1 = (v0 >> 8) & 0xff;
        v0 &= 0xff;
    } else if (!aml_integer(aml, &p, end, &v1)) {
        return "SLP_TYPb is not an integer constant";
    }
    if (v0 > 7 || v1 > 7)
        return "SLP_TYP value does not fit in 3 bits";
    *a = (uint8_t)v0;
    *b = (uint8_t)v1;
    return NULL;
}

enum acpi_s5_result acpi_find_s5(const uint8_t *aml, size_t len, uint8_t *a, uint8_t *b,
                                 const char **why)
{
    const char *first_error = NULL;
    for (size_t i = 1; i + 4 <= len; i++) {
        if (memcmp(aml + i, "_S5_", 4) != 0)
            continue;
        /* Only a definition counts: NameOp, optionally a root prefix, then the name. */
        bool named = aml[i - 1] == AML_NAME_OP ||
                     (i >= 2 && aml[i - 1] == AML_ROOT_CHAR && aml[i - 2] == AML_NAME_OP);
        if (!named)
            continue;
        const char *err = s5_package(aml, len, i + 4, a, b);
        if (!err)
            return ACPI_S5_FOUND;
        if (!first_error)
            first_error = err;
    }
    if (first_error) {
        if (why)
            *why = first_error;
        return ACPI_S5_MALFORMED;
    }
    return ACPI_S5_ABSENT;
}

static void parse_dsdt(struct acpi_info *o)
{
    const struct acpi_sdt_header *h =
        check_table(o->dsdt_address, "DSDT", "DSDT", sizeof(struct acpi_sdt_header), ACPI_MAX_DSDT_LEN);
    if (!h) {
        kprintf("ACPI: no usable DSDT, so no \\_S5_ sleep type for ACPI power-off\n");
        return;
    }
    const uint8_t *aml = (const uint8_t *)h + sizeof *h;
    size_t len = h->length - sizeof *h;
    const char *why = NULL;
    switch (acpi_find_s5(aml, len, &o->slp_typ_a, &o->slp_typ_b, &why)) {
    case ACPI_S5_FOUND:
        o->s5_valid = true;
        break;
    case ACPI_S5_ABSENT:
        kprintf("ACPI: DSDT at 0x%lx: no \\_S5_ object, ACPI power-off unavailable\n",
                o->dsdt_address);
        break;
    case ACPI_S5_MALFORMED:
        kprintf("ACPI: DSDT at 0x%lx: malformed \\_S5_ (%s), ACPI power-off unavailable\n",
                o->dsdt_address, why);
        break;
    }
}

static struct acpi_reg gas_reg(const struct acpi_gas *g)
{
    return (struct acpi_reg){.present = g->address != 0,
                             .space = g->space_id,
                             .bit_width = g->bit_width,
                             .bit_offset = g->bit_offset,
                             .access_size = g->access_size,
                             .address = g->address};
}

static struct acpi_reg io_reg(uint32_t port, uint8_t bits)
{
    return (struct acpi_reg){
        .present = port != 0, .space = ACPI_GAS_IO, .bit_width = bits, .address = port};
}

/* The 64-bit X_ block replaces the legacy port when the firmware filled it in. */
static struct acpi_reg pick_reg(const struct acpi_gas *x, uint32_t legacy_port, uint8_t bits)
{
    return x->address ? gas_reg(x) : io_reg(legacy_port, bits);
}

static bool reg_usable(const struct acpi_reg *r)
{
    if (!r->present)
        return false;
    if (r->space == ACPI_GAS_IO)
        return r->address <= 0xffff;
    return r->space == ACPI_GAS_MEMORY;
}

/* Zeroes the field at [off, off + size) of the FADT copy when the table's first `len`
 * bytes hold only part of it. */
static void fadt_drop_partial(struct acpi_fadt *f, uint32_t len, size_t off, size_t size)
{
    if (off < len && off + size > len)
        memset((uint8_t *)f + off, 0, size);
}

static bool parse_fadt(struct acpi_info *o, hpa_t pa, const struct acpi_sdt_header *h)
{
    /* Copy into a zeroed full-size struct: fields past an older, shorter FADT read as
     * 0, which every X_ field and the reset register treat as "absent". */
    struct acpi_fadt f;
    memset(&f, 0, sizeof f);
    uint32_t len = MIN(h->length, (uint32_t)sizeof f);
    memcpy(&f, h, len);
    /* A field the length cuts in two is absent too, not half a value: a partial
     * X_DSDT or reset register would send Keel to a wrong address. */
    fadt_drop_partial(&f, len, __builtin_offsetof(struct acpi_fadt, reset_reg), sizeof f.reset_reg);
    fadt_drop_partial(&f, len, __builtin_offsetof(struct acpi_fadt, x_dsdt), sizeof f.x_dsdt);
    fadt_drop_partial(&f, len, __builtin_offsetof(struct acpi_fadt, x_pm1a_cnt_blk), sizeof f.x_pm1a_cnt_blk);
    fadt_drop_partial(&f, len, __builtin_offsetof(struct acpi_fadt, x_pm1b_cnt_blk), sizeof f.x_pm1b_cnt_blk);
    fadt_drop_partial(&f, len, __builtin_offsetof(struct acpi_fadt, x_pm_tmr_blk), sizeof f.x_pm_tmr_blk);

    o->fadt_address = pa;
    o->fadt_revision = f.h.revision;
    o->fadt_flags = f.flags;
    o->hw_reduced = f.flags & ACPI_FADT_HW_REDUCED;
    o->sci_irq = f.sci_int;
    o->smi_cmd = f.smi_cmd;
    o->acpi_enable = f.acpi_enable;
    o->acpi_disable = f.acpi_disable;
    o->dsdt_address = f.x_dsdt ? f.x_dsdt : f.dsdt;

    o->pm1a_cnt = pick_reg(&f.x_pm1a_cnt_blk, f.pm1a_cnt_blk, 16);
    o->pm1b_cnt = pick_reg(&f.x_pm1b_cnt_blk, f.pm1b_cnt_blk, 16);
    if (o->pm1a_cnt.present && !reg_usable(&o->pm1a_cnt)) {
        kprintf("ACPI: FADT at 0x%lx: PM1a_CNT (space %u, address 0x%lx) unusable\n", pa,
                o->pm1a_cnt.space, o->pm1a_cnt.address);
        o->pm1a_cnt.present = false;
    }
    if (o->pm1b_cnt.present && !reg_usable(&o->pm1b_cnt)) {
        kprintf("ACPI: FADT at 0x%lx: PM1b_CNT (space %u, address 0x%lx) unusable\n", pa,
                o->pm1b_cnt.space, o->pm1b_cnt.address);
        o->pm1b_cnt.present = false;
    }
    o->pm_timer = pick_reg(&f.x_pm_tmr_blk, f.pm_tmr_blk, 32);
    if (!reg_usable(&o->pm_timer))
        o->pm_timer.present = false;
    o->pm_timer_32bit = f.flags & ACPI_FADT_TMR_VAL_EXT;

    /* The reset register arrived with FADT revision 2; RESET_REG_SUP says it works. */
    o->reset_reg = gas_reg(&f.reset_reg);
    o->reset_value = f.reset_value;
    bool space_ok = f.reset_reg.space_id == ACPI_GAS_IO || f.reset_reg.space_id == ACPI_GAS_MEMORY ||
                    f.reset_reg.space_id == ACPI_GAS_PCI_CONFIG;
    o->reset_supported = (f.flags & ACPI_FADT_RESET_REG_SUP) && o->reset_reg.present && space_ok;
    if ((f.flags & ACPI_FADT_RESET_REG_SUP) && !o->reset_supported)
        kprintf("ACPI: FADT at 0x%lx: reset register (space %u, address 0x%lx) unusable\n", pa,
                f.reset_reg.space_id, (uint64_t)f.reset_reg.address);

    /* IAPC_BOOT_ARCH was reserved before FADT revision 2: assume a PC then. */
    o->boot_arch = f.iapc_boot_arch;
    o->has_8042 = f.h.revision < 2 || (f.iapc_boot_arch & ACPI_BOOT_ARCH_8042);

    parse_dsdt(o);
    return true;
}

/* ---- root tables ----------------------------------------------------------------- */

struct table_kind {
    const char *sig;
    const char *name; /* as the report calls it */
    uint32_t min_len;
    bool (*parse)(struct acpi_info *o, hpa_t pa, const struct acpi_sdt_header *h);
};

static const struct table_kind kinds[] = {
    {"APIC", "MADT", sizeof(struct acpi_madt), parse_madt},
    {"FACP", "FADT", ACPI_FADT_V1_LEN, parse_fadt},
    {"HPET", "HPET", sizeof(struct acpi_hpet), parse_hpet},
    {"MCFG", "MCFG", sizeof(struct acpi_mcfg), parse_mcfg},
};

static bool *have_flag(struct acpi_info *o, size_t kind)
{
    switch (kind) {
    case 0: return &o->have_madt;
    case 1: return &o->have_fadt;
    case 2: return &o->have_hpet;
    default: return &o->have_mcfg;
    }
}

static void clear_kind(struct acpi_info *o, size_t kind)
{
    /* A table rejected halfway must not leave half its data behind. */
    switch (kind) {
    case 0:
        o->madt_address = o->lapic_address = 0;
        o->lapic_overridden = o->pcat_compat = false;
        o->cpus_listed = o->cpus_enabled = o->cpus_dropped = o->cpu_count = 0;
        o->ioapic_count = o->iso_count = o->nmi_count = 0;
        break;
    case 3:
        o->mcfg_count = 0;
        break;
    default:
        break;
    }
}

static void use_table(struct acpi_info *o, hpa_t pa)
{
    const struct acpi_sdt_header *peek = phys(pa);
    for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
        if (memcmp(peek->signature, kinds[k].sig, 4) != 0)
            continue;
        bool *have = have_flag(o, k);
        if (*have) {
            kprintf("ACPI: %s at 0x%lx: a valid one was already found, ignored\n", kinds[k].name,
                    pa);
            return;
        }
        const struct acpi_sdt_header *h =
            check_table(pa, kinds[k].sig, kinds[k].name, kinds[k].min_len, ACPI_MAX_TABLE_LEN);
        if (!h)
            return;
        *have = kinds[k].parse(o, pa, h);
        if (!*have)
            clear_kind(o, k);
        return;
    }
}

static int walk_root(struct acpi_info *o, hpa_t pa, bool xsdt)
{
    const char *sig = xsdt ? "XSDT" : "RSDT";
    size_t esize = xsdt ? 8 : 4;
    const struct acpi_sdt_header *h =
        check_table(pa, sig, sig, sizeof(struct acpi_sdt_header), ACPI_MAX_TABLE_LEN);
    if (!h)
        return -1;
    size_t body = h->length - sizeof *h;
    if (body % esize)
        kprintf("ACPI: %s at 0x%lx: %zu trailing bytes after the last entry ignored\n", sig, pa,
                body % esize);
    size_t n = body / esize;
    const uint8_t *entries = (const uint8_t *)h + sizeof *h;

    o->use_xsdt = xsdt;
    o->root_table = pa;
    o->table_count = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        uint64_t addr = 0;
        memcpy(&addr, entries + i * esize, esize); /* little-endian, maybe unaligned */
        if (!addr) {
            kprintf("ACPI: %s at 0x%lx: entry %zu is a null pointer, skipped\n", sig, pa, i);
            continue;
        }
        const struct acpi_sdt_header *t = phys(addr);
        if (i < ACPI_MAX_TABLES) {
            printable_sig(o->tables[i].signature, t->signature);
            o->tables[i].address = addr;
        }
        use_table(o, addr);
    }
    return 0;
}

int acpi_parse(hpa_t rsdp_pa, struct acpi_info *o)
{
    memset(o, 0, sizeof *o);
    if (!rsdp_pa) {
        kprintf("ACPI: no RSDP: the boot loader found none, ACPI tables unavailable\n");
        return -1;
    }
    const struct acpi_rsdp *r = phys(rsdp_pa);
    if (memcmp(r->signature, ACPI_RSDP_SIGNATURE, 8) != 0) {
        kprintf("ACPI: RSDP at 0x%lx: bad signature, ACPI tables unavailable\n", rsdp_pa);
        return -1;
    }
    uint8_t s = sum_bytes(r, ACPI_RSDP_V1_LEN);
    if (s != 0) {
        kprintf("ACPI: RSDP at 0x%lx: bad checksum (first 20 bytes sum to 0x%02x), ACPI tables "
                "unavailable\n", rsdp_pa, s);
        return -1;
    }
    o->rsdp = rsdp_pa;
    o->rsdp_revision = r->revision;
    memcpy(o->oem_id, r->oem_id, 6);
    for (int i = 0; i < 6; i++)
        if (o->oem_id[i] < 0x20 || o->oem_id[i] >= 0x7f)
            o->oem_id[i] = '?';
    uint32_t rsdt = r->rsdt_address;

    bool try_xsdt = false;
    hpa_t xsdt = 0;
    if (r->revision >= 2) {
        /* Only now may bytes past the first 20 be read. */
        uint32_t len = r->length;
        if (len < sizeof *r || len > RSDP_MAX_LEN) {
            kprintf("ACPI: RSDP at 0x%lx: length %u invalid, using the RSDT\n", rsdp_pa, len);
        } else if ((s = sum_bytes(r, len)) != 0) {
            kprintf("ACPI: RSDP at 0x%lx: bad extended checksum (sum 0x%02x), using the RSDT\n",
                    rsdp_pa, s);
        } else if (r->xsdt_address == 0) {
            kprintf("ACPI: RSDP at 0x%lx: XSDT address is 0, using the RSDT\n", rsdp_pa);
        } else {
            try_xsdt = true;
            xsdt = r->xsdt_address;
        }
    }

    if (try_xsdt) {
        if (walk_root(o, xsdt, true) == 0)
            return 0;
        kprintf("ACPI: XSDT unusable, falling back to the RSDT\n");
    }
    if (!rsdt) {
        kprintf("ACPI: RSDP at 0x%lx: no usable root table (RSDT address 0)\n", rsdp_pa);
        return -1;
    }
    if (walk_root(o, rsdt, false) != 0) {
        kprintf("ACPI: RSDP at 0x%lx: no usable root table, ACPI tables unavailable\n", rsdp_pa);
        return -1;
    }
    return 0;
}

/* ---- report ---------------------------------------------------------------------- */

static const char *space_name(uint8_t space)
{
    switch (space) {
    case ACPI_GAS_IO: return "io";
    case ACPI_GAS_MEMORY: return "mem";
    case ACPI_GAS_PCI_CONFIG: return "pci";
    default: return "?";
    }
}

static void format_reg(char *buf, size_t size, const struct acpi_reg *r)
{
    if (!r->present)
        ksnprintf(buf, size, "none");
    else
        ksnprintf(buf, size, "%s 0x%lx", space_name(r->space), r->address);
}

void acpi_report(const struct acpi_info *a)
{
    if (!a->rsdp) {
        kprintf("ACPI: no tables\n");
        return;
    }
    kprintf("ACPI: RSDP at 0x%lx: revision %u, OEM \"%s\", %s at 0x%lx with %u tables\n", a->rsdp,
            a->rsdp_revision, a->oem_id, a->use_xsdt ? "XSDT" : "RSDT", a->root_table,
            a->table_count);

    char line[CONSOLE_LINE_MAX];
    size_t pos = ksnprintf(line, sizeof line, "ACPI: tables:");
    for (uint32_t i = 0; i < a->table_count && i < ACPI_MAX_TABLES && pos < sizeof line; i++)
        if (a->tables[i].address)
            pos += ksnprintf(line + pos, sizeof line - pos, " %s", a->tables[i].signature);
    kprintf("%s\n", line);

    if (a->have_madt) {
        uint32_t x2 = 0, max_id = 0;
        for (uint32_t i = 0; i < a->cpu_count; i++) {
            x2 += a->cpus[i].x2apic_entry;
            max_id = MAX(max_id, a->cpus[i].apic_id);
        }
        kprintf("ACPI: MADT: %u CPUs (%u enabled; %u x2APIC entries; APIC ids up to %u), %u IOAPICs, "
                "LAPIC at 0x%lx%s, %u overrides, %u NMIs%s\n", a->cpus_listed, a->cpus_enabled, x2,
                max_id, a->ioapic_count, a->lapic_address, a->lapic_overridden ? " (override)" : "",
                a->iso_count, a->nmi_count, a->pcat_compat ? ", PC-AT 8259s" : "");
        for (uint32_t i = 0; i < a->ioapic_count; i++)
            kprintf("ACPI: IOAPIC id %u at 0x%x, GSI base %u\n", a->ioapics[i].id,
                    a->ioapics[i].address, a->ioapics[i].gsi_base);
    } else {
        kprintf("ACPI: no MADT table\n");
    }

    if (a->have_hpet)
        kprintf("ACPI: HPET: base 0x%lx, id 0x%08x (%u comparators), number %u, min tick %u\n",
                a->hpet_address, a->hpet_id, ((a->hpet_id >> 8) & 0x1f) + 1, a->hpet_number,
                a->hpet_min_tick);
    else
        kprintf("ACPI: no HPET table\n");

    if (a->have_mcfg)
        for (uint32_t i = 0; i < a->mcfg_count; i++)
            kprintf("ACPI: MCFG: segment %u buses %u-%u at 0x%lx\n", a->mcfg[i].segment,
                    a->mcfg[i].start_bus, a->mcfg[i].end_bus, a->mcfg[i].base);
    else
        kprintf("ACPI: no MCFG table\n");

    if (a->have_fadt) {
        char pm1a[32], pm1b[32], reset[32], s5[24];
        format_reg(pm1a, sizeof pm1a, &a->pm1a_cnt);
        format_reg(pm1b, sizeof pm1b, &a->pm1b_cnt);
        if (a->reset_supported)
            format_reg(reset, sizeof reset, &a->reset_reg);
        else
            ksnprintf(reset, sizeof reset, "none");
        if (a->s5_valid)
            ksnprintf(s5, sizeof s5, "%u/%u", a->slp_typ_a, a->slp_typ_b);
        else
            ksnprintf(s5, sizeof s5, "unknown");
        kprintf("ACPI: FADT: rev %u, PM1a_CNT %s, PM1b_CNT %s, S5 SLP_TYP %s, SMI_CMD 0x%x "
                "enable 0x%x, reset %s value 0x%x, SCI IRQ %u, 8042 %s%s\n", a->fadt_revision,
                pm1a, pm1b, s5, a->smi_cmd, a->acpi_enable, reset, a->reset_value, a->sci_irq,
                a->has_8042 ? "yes" : "no", a->hw_reduced ? ", hardware-reduced" : "");
    } else {
        kprintf("ACPI: no FADT table\n");
    }
}
