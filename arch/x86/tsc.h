/* Keel's clock: the TSC. Its rate is measured once at boot by drivers/timer.c, which
 * then calls tsc_set_rate; until then a deliberately high guess makes early delays last
 * at least as long as asked. Assumes an invariant TSC that firmware started in step on
 * every CPU. */
#ifndef KEEL_ARCH_X86_TSC_H
#define KEEL_ARCH_X86_TSC_H

#include "vmm/lib/types.h"

/* Records the measured rate; time_ns counts from this call. */
void tsc_set_rate(uint64_t hz);
bool tsc_calibrated(void);
/* TSC ticks per second (the guess before calibration). */
uint64_t tsc_hz(void);
uint64_t tsc_to_ns(uint64_t ticks);
uint64_t ns_to_tsc(uint64_t ns);
/* Nanoseconds since calibration (0 before). */
uint64_t time_ns(void);
/* Busy-waits at least `us` microseconds. */
void udelay(uint64_t us);

#endif
