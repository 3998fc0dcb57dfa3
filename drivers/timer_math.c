/* Calibration arithmetic and HPET capability decoding (see timer_math.h). */
#include "drivers/timer_math.h"

uint64_t hz_from_window(uint64_t counted, uint64_t elapsed_fs)
{
    if (elapsed_fs == 0)
        return 0;
    return muldiv64(counted, FS_PER_SEC, elapsed_fs);
}

const char *hpet_caps_decode(uint64_t gcap, struct hpet_caps *out)
{
    out->period_fs = gcap >> 32;
    out->vendor = (uint16_t)(gcap >> 16);
    out->rev = (uint8_t)gcap;
    out->timers = (uint8_t)(((gcap >> 8) & 0x1f) + 1);
    out->counter64 = (gcap >> 13) & 1;
    out->legacy_route = (gcap >> 15) & 1;

    /* Reads of absent MMIO come back as all ones. */
    if ((uint32_t)gcap == 0xffffffffu || gcap == ~0ull)
        return "no device answers at that address";
    if (out->rev == 0)
        return "revision ID is 0 (reserved value)";
    if (out->period_fs == 0)
        return "tick period is 0";
    if (out->period_fs > HPET_MAX_PERIOD_FS)
        return "tick period exceeds the 100 ns the spec allows";
    return NULL;
}
