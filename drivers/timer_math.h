/* Calibration arithmetic and register decoding with no hardware access, so calibration
 * maths can be host-tested. */
#ifndef KEEL_DRIVERS_TIMER_MATH_H
#define KEEL_DRIVERS_TIMER_MATH_H

#include "vmm/lib/time_math.h"

#define PIT_HZ 1193182ull

/* The HPET spec caps the tick period at 100 ns. */
#define HPET_MAX_PERIOD_FS 100000000ull

/* Rate of a counter that advanced `counted` ticks while a reference clock measured
 * `elapsed_fs` femtoseconds; 0 when elapsed_fs is 0. */
uint64_t hz_from_window(uint64_t counted, uint64_t elapsed_fs);

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
