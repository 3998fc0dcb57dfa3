/* Clock arithmetic (see time_math.h). */
#include "vmm/lib/time_math.h"

uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c)
{
    if (c == 0)
        return UINT64_MAX;
    unsigned __int128 p = (unsigned __int128)a * b;
    uint64_t rem = (uint64_t)(p >> 64);
    uint64_t lo = (uint64_t)p;
    if (rem >= c)
        return UINT64_MAX;
    /* One DIVQ: rem < c, so the quotient fits in 64 bits and the instruction cannot
     * fault. (The compiler would call libgcc's __udivti3, which the core does not link;
     * the bit-by-bit division this replaces cost 64 iterations, ~200 ns.) */
    uint64_t q, r;
    __asm__("divq %4" : "=a"(q), "=d"(r) : "a"(lo), "d"(rem), "rm"(c) : "cc");
    (void)r;
    return q;
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
