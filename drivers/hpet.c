/* HPET main counter (see hpet.h). */
#include "drivers/hpet.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"

#define HPET_GCAP_ID 0x000
#define HPET_GEN_CONF 0x010
#define HPET_MAIN_COUNTER 0x0f0
#define HPET_MMIO_SIZE 0x400

#define HPET_CONF_ENABLE BIT(0)

static hva_t hpet_base;
static struct hpet_caps caps;
static bool present;
static bool we_enabled;

bool hpet_init(hpa_t base)
{
    present = false;
    if (base == 0 || (base & 7)) {
        kprintf("HPET: bad base address 0x%llx, not using it\n", (unsigned long long)base);
        return false;
    }
    if (!paging_map_mmio(base, HPET_MMIO_SIZE)) {
        kprintf("HPET: cannot map 0x%llx, not using it\n", (unsigned long long)base);
        return false;
    }
    hpet_base = (hva_t)base;

    const char *why = hpet_caps_decode(mmio_read64(hpet_base + HPET_GCAP_ID), &caps);
    if (why) {
        kprintf("HPET: at 0x%llx unusable: %s\n", (unsigned long long)base, why);
        return false;
    }

    uint64_t conf = mmio_read64(hpet_base + HPET_GEN_CONF);
    we_enabled = !(conf & HPET_CONF_ENABLE);
    if (we_enabled)
        mmio_write64(hpet_base + HPET_GEN_CONF, conf | HPET_CONF_ENABLE);

    uint64_t khz = FS_PER_SEC / caps.period_fs / 1000;
    kprintf("HPET: at 0x%llx, %llu.%03llu MHz, %u timers, %s counter%s\n",
            (unsigned long long)base, (unsigned long long)(khz / 1000),
            (unsigned long long)(khz % 1000), caps.timers, caps.counter64 ? "64-bit" : "32-bit",
            we_enabled ? ", started by Keel" : "");
    present = true;
    return true;
}

bool hpet_present(void)
{
    return present;
}

const struct hpet_caps *hpet_caps(void)
{
    return present ? &caps : NULL;
}

uint64_t hpet_read(void)
{
    if (caps.counter64)
        return mmio_read64(hpet_base + HPET_MAIN_COUNTER);
    return mmio_read32(hpet_base + HPET_MAIN_COUNTER);
}

uint64_t hpet_ticks_between(uint64_t start, uint64_t end)
{
    if (caps.counter64)
        return end - start;
    return (uint32_t)((uint32_t)end - (uint32_t)start);
}

void hpet_restore(void)
{
    if (!present || !we_enabled)
        return;
    uint64_t conf = mmio_read64(hpet_base + HPET_GEN_CONF);
    mmio_write64(hpet_base + HPET_GEN_CONF, conf & ~HPET_CONF_ENABLE);
    we_enabled = false;
}
