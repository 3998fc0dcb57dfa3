/* The 8254 PIT, channel 2 only: a one-shot countdown used as the calibration
 * reference when there is no HPET. Channel 0 belongs to whoever owns the system
 * timer interrupt (firmware, later perhaps a guest) and is never touched. */
#ifndef KEEL_DRIVERS_PIT_H
#define KEEL_DRIVERS_PIT_H

#include "vmm/lib/types.h"

/* Loads channel 2 with `count` input clocks (PIT_HZ each second) in mode 0 and opens
 * its gate, saving port 0x61 first. The speaker stays silent. */
void pit_ch2_start(uint16_t count);
/* True once the countdown has reached zero (OUT2, port 0x61 bit 5, went high). */
bool pit_ch2_expired(void);
/* Current count; a countdown that never changes means there is no working PIT. */
uint16_t pit_ch2_read(void);
/* Puts the gate and speaker bits of port 0x61 back as pit_ch2_start found them. */
void pit_ch2_stop(void);

#endif
