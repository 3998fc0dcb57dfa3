/* Timer arithmetic and HPET capability decoding (see timer_math.h). */
#include "drivers/timer_math.h"

uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c)
{
    if (c == 0)
        return UINT64_MAX;
    unsigned __int128 p = (unsigned __int128)a * b;
    uint64_t rem = (uint64_t)(p >> 64);
    uint64_t lo = (uint64_t)p;
    if (rem >= c)
        return UINT64_MAX;
    /* Restoring long division of rem:lo by c. rem < c throughout, so the quotient
     * fits in 64 bits; a bit shifted out of rem means rem was >= 2^64 > c. */
    uint64_t q = 0;
    for (int i = 0; i < 64; i++) {
        bool carry = rem >> 63;
        rem = (rem << 1) | (lo >> 63);
        lo <<= 1;
        q <<= 1;
        if (carry || rem >= c) {
            rem -= c;
            q |= 1;
        }
    }
    return q;
}

uint64_t hz_from_window(uint64_t counted, uint64_t elapsed_fs)
{
    if (elapsed_fs == 0)
        return 0;
    return muldiv64(counted, FS_PER_SEC, elapsed_fs);
}

void tick_scale_init(struct tick_scale *s, uint64_t from_hz, uint64_t to_hz)
{
    s->mult = 0;
    s->shift = 0;
    if (from_hz == 0)
        return;
    for (uint32_t shift = 63;; shift--) {
        uint64_t m = muldiv64(to_hz, 1ull << shift, from_hz);
        if (m < (1ull << 63) || shift == 0) {
            s->mult = m;
            s->shift = shift;
            return;
        }
    }
}

uint64_t tick_scale_apply(const struct tick_scale *s, uint64_t v)
{
    unsigned __int128 r = ((unsigned __int128)v * s->mult) >> s->shift;
    return (r >> 64) ? UINT64_MAX : (uint64_t)r;
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
