/* Time for the platform guest: the TSC calibrated against PIT channel 2 (the speaker
 * channel, gated through port 0x61, so that channel 0 stays free for the IRQ0 checks),
 * bounded waits on it, and the ACPI PM timer. */
#ifndef PLATFORM_TIMING_H
#define PLATFORM_TIMING_H

#include <stdbool.h>
#include <stdint.h>

#define PIT_HZ 1193182u
#define PM_TIMER_HZ 3579545u /* exactly three times the PIT's input clock */

/* TSC kHz; a guess until timing_calibrate has measured it. */
extern uint32_t tsc_khz;

/* Runs PIT channel 2 once from `count` down to 0 in mode 0 and returns the TSC cycles
 * it took (and the PM timer ticks, when pm is given and the PM timer is known); false
 * when OUT2 never rose. */
bool pit2_measure(uint16_t count, uint64_t *tsc_cycles, uint32_t *pm_ticks);

/* Measures tsc_khz against PIT channel 2 and reports the check. */
void timing_calibrate(void);

uint64_t deadline_ms(uint32_t ms);
bool expired(uint64_t deadline);
void delay_us(uint32_t us);
uint32_t tsc_to_us(uint64_t cycles);

/* The PM timer at `port`, 32 bits wide when `ext`, else 24. */
void pm_timer_init(uint16_t port, bool ext);
bool pm_timer_present(void);
uint32_t pm_timer_read(void);
/* Ticks from a to b, modulo the timer's width. */
uint32_t pm_timer_delta(uint32_t a, uint32_t b);
/* Checks the PM timer's rate against PIT channel 2. */
void pm_timer_check(void);

#endif
