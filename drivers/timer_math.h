/* Timer arithmetic and register decoding with no hardware access, so calibration
 * maths can be host-tested. The core links no libgcc, so nothing here may divide a
 * 128-bit number with the compiler's help. */
#ifndef KEEL_DRIVERS_TIMER_MATH_H
#define KEEL_DRIVERS_TIMER_MATH_H

#include "vmm/lib/types.h"

#define FS_PER_SEC 1000000000000000ull
#define NS_PER_SEC 1000000000ull
#define PIT_HZ 1193182ull

/* The HPET spec caps the tick period at 100 ns. */
#define HPET_MAX_PERIOD_FS 100000000ull

/* floor(a * b / c) with a 128-bit intermediate; UINT64_MAX when c is 0 or the
 * quotient does not fit in 64 bits. */
uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c);

/* Rate of a counter that advanced `counted` ticks while a reference clock measured
 * `elapsed_fs` femtoseconds; 0 when elapsed_fs is 0. */
uint64_t hz_from_window(uint64_t counted, uint64_t elapsed_fs);

/* Converts counts of one clock to another with a multiply and a shift, for hot paths
 * (time_ns) where a 64-step division would be too slow. The shift is as large as
 * keeps mult below 2^63, so the rounding error is negligible next to calibration's. */
struct tick_scale {
    uint64_t mult; /* to_hz * 2^shift / from_hz */
    uint32_t shift;
};
void tick_scale_init(struct tick_scale *s, uint64_t from_hz, uint64_t to_hz);
/* Saturates at UINT64_MAX. */
uint64_t tick_scale_apply(const struct tick_scale *s, uint64_t v);

/* The HPET General Capabilities and ID register, decoded. */
struct hpet_caps {
    uint64_t period_fs;
    uint16_t vendor;
    uint8_t rev;
    uint8_t timers; /* comparators, NUM_TIM_CAP + 1 */
    bool counter64;
    bool legacy_route;
};
/* Returns NULL when the register describes a usable HPET, else why not. */
const char *hpet_caps_decode(uint64_t gcap, struct hpet_caps *out);

#endif
