/* HPET main counter, used as the preferred calibration reference. Keel needs only
 * the free-running counter; the comparators are left alone. */
#ifndef KEEL_DRIVERS_HPET_H
#define KEEL_DRIVERS_HPET_H

#include "vmm/lib/types.h"
#include "drivers/timer_math.h"

/* Validates the block at `base` (capabilities: nonzero period <= 100 ns) and starts
 * the main counter if firmware left it stopped. Prints one line either way.
 * Returns false, with the reason printed, when the HPET is unusable. */
bool hpet_init(hpa_t base);
bool hpet_present(void);
const struct hpet_caps *hpet_caps(void);
/* The main counter; only the low 32 bits count on a 32-bit HPET. */
uint64_t hpet_read(void);
/* Ticks from `start` to `end`, allowing for one wrap of a 32-bit counter. */
uint64_t hpet_ticks_between(uint64_t start, uint64_t end);
/* Stops the main counter again if hpet_init started it (live firmware may rely on
 * finding it as it left it). */
void hpet_restore(void);

#endif
