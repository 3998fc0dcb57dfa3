#include "guest.h"
#include "fwcfg.h"
#include "report.h"

#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05

#define MIB (1ull << 20)

static void fwcfg_read(uint16_t key, void *buf, uint32_t len)
{
    uint8_t *b = buf;
    outw(FW_CFG_SELECTOR, key);
    while (len--)
        *b++ = inb(FW_CFG_DATA);
}

struct mmap_sum {
    uint64_t available, end;
};

static void add_entry(const struct mb_mmap_entry *e, void *arg)
{
    struct mmap_sum *s = arg;
    if (e->type != MB_MMAP_AVAILABLE)
        return;
    s->available += e->len;
    if (e->addr + e->len > s->end)
        s->end = e->addr + e->len;
}

/* RAM the firmware keeps for itself (EBDA, ACPI tables, its own data near the top of
 * low RAM) is missing from the map; it is a few hundred KiB on QEMU. */
static uint64_t ram_slack(uint64_t ram)
{
    return ram / 16 > 8 * MIB ? ram / 16 : 8 * MIB;
}

static void check_ram(uint64_t ram)
{
    uint32_t lower, upper;
    if (!mb_memory(&lower, &upper)) {
        fail("fwcfg-ram", "no Multiboot memory information to compare with");
        return;
    }
    uint64_t upper_end = MIB + (uint64_t)upper * 1024;
    /* mem_upper ends at the first hole: only below 3 GiB is it the whole RAM. */
    bool upper_ok = upper_end <= ram && (ram > 3ull * 1024 * MIB || upper_end + ram_slack(ram) >= ram);
    struct mmap_sum s = { 0, 0 };
    int n = mb_mmap_walk(add_entry, &s);
    bool map_ok = n < 0 || (s.available <= ram && s.available + ram_slack(ram) >= ram);
    if (!upper_ok || !map_ok) {
        fail("fwcfg-ram", "fw_cfg RAM %llu MiB, but mem_upper ends at %llu KiB and the map "
             "has %llu KiB available", ram / MIB, upper_end / 1024, s.available / 1024);
        return;
    }
    if (n < 0)
        ok("fwcfg-ram: %llu MiB; mem_upper ends at %llu KiB (no memory map)", ram / MIB,
           upper_end / 1024);
    else
        ok("fwcfg-ram: %llu MiB; mem_upper ends at %llu KiB, the memory map has %llu KiB "
           "available in %d entries", ram / MIB, upper_end / 1024, s.available / 1024, n);
}

void fwcfg_check(const struct acpi_info *acpi)
{
    char sig[5] = "";
    fwcfg_read(FW_CFG_SIGNATURE, sig, 4);
    if (strncmp(sig, "QEMU", 4)) {
        for (int i = 0; i < 4; i++)
            if (sig[i] < 0x20 || sig[i] > 0x7e)
                sig[i] = '?';
        fail("fwcfg", "signature at port 0x%x reads \"%s\", want \"QEMU\"", FW_CFG_DATA, sig);
        return;
    }
    ok("fwcfg: signature \"QEMU\" at ports 0x%x/0x%x", FW_CFG_SELECTOR, FW_CFG_DATA);

    uint16_t cpus = 0;
    fwcfg_read(FW_CFG_NB_CPUS, &cpus, sizeof(cpus));
    if (!acpi->madt_ok)
        fail("fwcfg-cpus", "fw_cfg says %u CPUs; no valid MADT to compare with", cpus);
    else if (cpus != acpi->ncpus)
        fail("fwcfg-cpus", "fw_cfg says %u CPUs, the MADT enables %u", cpus, acpi->ncpus);
    else
        ok("fwcfg-cpus: %u, as in the MADT", cpus);

    uint64_t ram = 0;
    fwcfg_read(FW_CFG_RAM_SIZE, &ram, sizeof(ram));
    check_ram(ram);
}
