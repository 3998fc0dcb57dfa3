/* Host-test stand-ins for a VM's clock and interrupt router: a clock the test sets
 * (struct dev_clock) and an irq_sink that records every level change, for the device
 * models in vmm/dev/. Header-only: each test binary gets its own state. */
#ifndef KEEL_TESTS_UNIT_SIM_CLOCK_H
#define KEEL_TESTS_UNIT_SIM_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/dev/clock.h"
#include "vmm/dev/irq.h"

static uint64_t sim_ns;

static uint64_t sim_now(void *ctx)
{
    (void)ctx;
    return sim_ns;
}

static const struct dev_clock sim_clock = {.now_ns = sim_now};

#define SIM_IRQ_EVENTS 4096

struct sim_irq_event {
    unsigned line;
    bool high;
    uint64_t ns;
};

struct sim_irq {
    struct sim_irq_event ev[SIM_IRQ_EVENTS];
    unsigned count;   /* events seen, including any beyond SIM_IRQ_EVENTS */
    bool level[VM_IRQ_LINES];
    unsigned rises[VM_IRQ_LINES];
};

static struct sim_irq sim_irq;

static void sim_irq_set(void *ctx, unsigned line, bool high)
{
    struct sim_irq *s = ctx;
    if (s->count < SIM_IRQ_EVENTS)
        s->ev[s->count] = (struct sim_irq_event){.line = line, .high = high, .ns = sim_ns};
    s->count++;
    if (line < VM_IRQ_LINES) {
        if (high && !s->level[line])
            s->rises[line]++;
        s->level[line] = high;
    }
}

static const struct irq_sink sim_sink = {.set = sim_irq_set, .ctx = &sim_irq};

static void sim_reset(void)
{
    sim_ns = 0;
    __builtin_memset(&sim_irq, 0, sizeof(sim_irq));
}

#endif
