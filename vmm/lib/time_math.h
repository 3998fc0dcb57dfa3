/* Clock arithmetic with no hardware access, for every layer that converts between
 * clocks (the TSC in arch/x86/tsc.c, calibration in drivers/timer.c). The core links no
 * libgcc, so nothing here may divide a 128-bit number with the compiler's help. */
#ifndef KEEL_VMM_LIB_TIME_MATH_H
#define KEEL_VMM_LIB_TIME_MATH_H

#include "vmm/lib/types.h"

#define FS_PER_SEC 1000000000000000ull
#define NS_PER_SEC 1000000000ull

/* floor(a * b / c) with a 128-bit intermediate; UINT64_MAX when c is 0 or the
 * quotient does not fit in 64 bits. */
uint64_t muldiv64(uint64_t a, uint64_t b, uint64_t c);

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

#endif
