/* A VM's sense of time for its device models: nanoseconds since the VM was created.
 * Devices compute their state (a PIT counter, the RTC's seconds, the PM timer) from
 * it when the guest looks, rather than ticking, so an idle VM costs nothing. A device
 * with a future event (a PIT period, a LAPIC timer) reports its deadline; the VM
 * calls the device's poll at or after it. Host tests drive a simulated clock. */
#ifndef KEEL_VMM_DEV_CLOCK_H
#define KEEL_VMM_DEV_CLOCK_H

#include "vmm/lib/types.h"

#define CLOCK_NEVER UINT64_MAX

struct dev_clock {
    uint64_t (*now_ns)(void *ctx);
    void *ctx;
};

static inline uint64_t clock_now_ns(const struct dev_clock *c)
{
    return c->now_ns(c->ctx);
}

#endif
