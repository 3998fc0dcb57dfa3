/* The local APIC timer in one-shot, periodic and TSC-deadline mode. */
#ifndef PLATFORM_LAPIC_TIMER_H
#define PLATFORM_LAPIC_TIMER_H

void lapic_timer_check(void);

#endif
