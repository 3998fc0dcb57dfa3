/* The host's battery-backed clock (MC146818 CMOS RTC at 0x70/0x71): read once at boot,
 * so each VM's virtual RTC starts at the host's time of day. */
#ifndef KEEL_DRIVERS_CMOS_CLOCK_H
#define KEEL_DRIVERS_CMOS_CLOCK_H

#include "vmm/lib/types.h"

struct wall_time {
    uint16_t year; /* 1900-2999 */
    uint8_t month, day, hour, minute, second;
};

/* False when the clock reads nonsense (no RTC, a flat battery): then *t is a fixed
 * date (2026-01-01 00:00:00) and the caller says so. */
bool cmos_clock_read(struct wall_time *t);

#endif
