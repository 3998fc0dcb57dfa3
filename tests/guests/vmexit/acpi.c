/* The two ACPI facts the tests need, found as an OS finds them: the RSDP by the scan of
 * the EBDA's first KiB and 0xE0000-0xFFFFF, then the RSDT's FADT (the PM timer's port)
 * and MADT (the enabled CPUs' APIC IDs). Tables with a bad checksum are ignored. */
#include "vmexit.h"

#define BDA_EBDA_SEGMENT 0x40E
#define BIOS_AREA_START 0xE0000u
#define BIOS_AREA_END 0x100000u
#define RSDP_V1_BYTES 20
#define SDT_HEADER_BYTES 36
#define FADT_PM_TMR_BLK 76
#define MADT_ENTRIES 44
#define MADT_LOCAL_APIC 0
#define MADT_ENABLED 1u
#define TABLE_MAX_BYTES 65536u

static uint8_t sum(const uint8_t *p, uint32_t len)
{
    uint8_t s = 0;
    while (len--)
        s += *p++;
    return s;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const uint8_t *scan(uint32_t start, uint32_t end)
{
    for (uint32_t a = start; a + RSDP_V1_BYTES <= end; a += 16) {
        const uint8_t *p = (const uint8_t *)(uintptr_t)a;
        if (!strncmp((const char *)p, "RSD PTR ", 8) && sum(p, RSDP_V1_BYTES) == 0)
            return p;
    }
    return NULL;
}

static const uint8_t *find_rsdp(void)
{
    /* The empty asm hides the constant address from GCC, which takes a pointer this low
     * for a null-pointer offset. */
    uintptr_t bda = BDA_EBDA_SEGMENT;
    __asm__("" : "+r"(bda));
    uint32_t ebda = (uint32_t)*(volatile uint16_t *)bda << 4;
    const uint8_t *p = ebda >= 0x80000 && ebda < 0xA0000 ? scan(ebda, ebda + 1024) : NULL;
    return p ? p : scan(BIOS_AREA_START, BIOS_AREA_END);
}

/* A table of the RSDT whose checksum holds, or NULL. */
static const uint8_t *valid_table(uint32_t addr)
{
    const uint8_t *t = (const uint8_t *)(uintptr_t)addr;
    uint32_t len = get32(t + 4);
    return len >= SDT_HEADER_BYTES && len <= TABLE_MAX_BYTES && sum(t, len) == 0 ? t : NULL;
}

static void read_madt(const uint8_t *madt, struct acpi_facts *out)
{
    uint32_t len = get32(madt + 4);
    for (uint32_t off = MADT_ENTRIES; off + 2 <= len;) {
        uint8_t type = madt[off], elen = madt[off + 1];
        if (elen < 2 || off + elen > len)
            break;
        if (type == MADT_LOCAL_APIC && elen >= 8 && (get32(madt + off + 4) & MADT_ENABLED) &&
            out->ncpus < ACPI_MAX_CPUS)
            out->apic_ids[out->ncpus++] = madt[off + 3];
        off += elen;
    }
}

void acpi_find(struct acpi_facts *out)
{
    *out = (struct acpi_facts){ 0 };
    const uint8_t *rsdp = find_rsdp();
    const uint8_t *rsdt = rsdp ? valid_table(get32(rsdp + 16)) : NULL;
    if (!rsdt) {
        printf("vmexit: note: no ACPI RSDP/RSDT found\n");
        return;
    }
    uint32_t n = (get32(rsdt + 4) - SDT_HEADER_BYTES) / 4;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *t = valid_table(get32(rsdt + SDT_HEADER_BYTES + 4 * i));
        if (!t)
            continue;
        if (!strncmp((const char *)t, "FACP", 4) && get32(t + 4) >= FADT_PM_TMR_BLK + 4)
            out->pm_timer_port = (uint16_t)get32(t + FADT_PM_TMR_BLK);
        else if (!strncmp((const char *)t, "APIC", 4))
            read_madt(t, out);
    }
}
