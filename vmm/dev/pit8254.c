/* The 8254 computed from the VM clock (Intel 8254 datasheet, "Mode definitions" and
 * "Read-back command"). A running channel is a regime: the tick its counter held n;
 * its count and OUT at any later tick follow from the mode. A new count in modes 2
 * and 3 starts a second regime at the end of the current period, while the first one
 * keeps going until then. Channel 0's edges are counted from the regimes, so missed
 * periods cost one division, never a loop. */
#include "vmm/dev/pit8254.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/time_math.h"

#define CTRL_PORT 3
#define CTRL_READBACK 0xc0
#define RB_NO_COUNT 0x20
#define RB_NO_STATUS 0x10
#define RW_LATCH 0
#define RW_LSB 1
#define RW_MSB 2
#define RW_BOTH 3
#define LATCH_MSB_NEXT 4 /* a latched two-byte count whose LSB was read */
#define P61_GATE2 0x01
#define P61_WRITABLE 0x0e /* speaker data, parity and channel-check enables */
#define P61_REFRESH 0x10
#define P61_OUT2 0x20
#define NEVER_TICK UINT64_MAX

static void PRINTF_LIKE(3, 4) log_once(struct pit8254 *pit, uint32_t what, const char *fmt, ...)
{
    if (pit->logged & what)
        return;
    pit->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: PIT: ", pit->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

static uint64_t now_tick(const struct pit8254 *pit)
{
    return muldiv64(clock_now_ns(&pit->clock), PIT8254_HZ, NS_PER_SEC);
}

/* The first nanosecond at which now_tick() reaches tick. */
static uint64_t tick_ns(uint64_t tick)
{
    uint64_t ns = muldiv64(tick, NS_PER_SEC, PIT8254_HZ);
    if (ns != UINT64_MAX && muldiv64(ns, PIT8254_HZ, NS_PER_SEC) < tick)
        ns++;
    return ns;
}

static uint32_t modulus(const struct pit_channel *c)
{
    return c->bcd ? 10000 : 0x10000;
}

static bool periodic(const struct pit_channel *c)
{
    return c->mode == 2 || c->mode == 3;
}

/* The regime the counter follows at tick now, and its elapsed ticks. */
static const struct pit_regime *active(const struct pit_channel *c, uint64_t now, uint64_t *d)
{
    if (!c->running) {
        *d = c->held_d;
        return &c->cur;
    }
    const struct pit_regime *r = (c->has_prev && now < c->cur.load) ? &c->prev : &c->cur;
    *d = now - r->load;
    return r;
}

static uint32_t counter_value(const struct pit_channel *c, uint64_t now)
{
    uint64_t d;
    const struct pit_regime *r = active(c, now, &d);
    uint32_t n = r->n, m = modulus(c), v;
    switch (c->mode) {
    case 2: v = n - (uint32_t)(d % n); break;
    case 3: {
        /* Counts down by two through each half; an odd count spends one tick more in
         * the high half. */
        uint32_t p = (uint32_t)(d % n), high = (n + 1) / 2;
        v = (n & ~1u) - 2 * (p < high ? p : p - high);
        break;
    }
    default: v = (uint32_t)((n + m - d % m) % m); break; /* one-shot modes wrap and go on */
    }
    v %= m;
    if (c->bcd)
        v = (v / 1000) << 12 | (v / 100 % 10) << 8 | (v / 10 % 10) << 4 | (v % 10);
    return v & 0xffff;
}

static bool channel_out(const struct pit_channel *c, uint64_t now)
{
    if (!c->programmed)
        return true;
    if (!c->has_count)
        return c->mode != 0; /* the control word sets OUT low in mode 0, high otherwise */
    uint64_t d;
    const struct pit_regime *r = active(c, now, &d);
    uint64_t n = r->n;
    switch (c->mode) {
    case 0: return d >= n;
    case 1: return !c->triggered || d >= n;
    case 2: return !c->gate || !c->running || d % n != n - 1;
    case 3: return !c->gate || !c->running || d % n < (n + 1) / 2;
    case 4: return d != n;
    default: return !c->triggered || d != n;
    }
}

/* Rising edges of OUT at ticks load + k * n, k >= 1, inside (a, b]. */
static uint64_t periodic_edges(const struct pit_regime *r, uint64_t a, uint64_t b)
{
    if (b <= r->load)
        return 0;
    uint64_t fa = a <= r->load ? 0 : (a - r->load) / r->n;
    return (b - r->load) / r->n - fa;
}

/* The tick of a one-shot mode's single rising edge. */
static uint64_t oneshot_edge(const struct pit_channel *c)
{
    /* Modes 0 and 1 rise at the terminal count; 4 and 5 strobe low for one tick there. */
    return c->cur.load + c->cur.n + (c->mode >= 4 ? 1 : 0);
}

static uint64_t edges_between(const struct pit_channel *c, uint64_t a, uint64_t b)
{
    if (!c->running || a >= b)
        return 0;
    if (!periodic(c)) {
        uint64_t e = oneshot_edge(c);
        return a < e && e <= b;
    }
    if (!c->has_prev)
        return periodic_edges(&c->cur, a, b);
    uint64_t n = periodic_edges(&c->prev, a, MIN(b, c->cur.load));
    if (b > c->cur.load)
        n += periodic_edges(&c->cur, MAX(a, c->cur.load), b);
    return n;
}

static uint64_t next_edge(const struct pit_channel *c, uint64_t now)
{
    if (!c->running)
        return NEVER_TICK;
    if (!periodic(c)) {
        uint64_t e = oneshot_edge(c);
        return e > now ? e : NEVER_TICK;
    }
    const struct pit_regime *r = (c->has_prev && now < c->cur.load) ? &c->prev : &c->cur;
    if (now < r->load)
        return r->load + r->n;
    return r->load + ((now - r->load) / r->n + 1) * r->n;
}

/* Accounts channel 0's edges up to now, before anything changes its regimes. */
static void sync_irq(struct pit8254 *pit, uint64_t now)
{
    pit->pending_edges += edges_between(&pit->ch[0], pit->irq_tick, now);
    pit->irq_tick = now;
}

static void latch_count(struct pit_channel *c, uint64_t now)
{
    if (c->latched)
        return; /* a second latch before the first is read is ignored */
    c->latch = (uint16_t)counter_value(c, now);
    c->latched = c->rw;
}

static void latch_status(struct pit_channel *c, uint64_t now)
{
    if (c->status_latched)
        return;
    bool null_count = now <= c->loads_at;
    c->status = (uint8_t)(channel_out(c, now) << 7 | null_count << 6 | c->rw << 4 | c->mode << 1 | c->bcd);
    c->status_latched = true;
}

static uint32_t decode_count(struct pit8254 *pit, struct pit_channel *c, uint16_t raw)
{
    uint32_t n = raw;
    if (c->bcd) {
        if (((raw & 0xf) > 9) || ((raw >> 4 & 0xf) > 9) || ((raw >> 8 & 0xf) > 9) || (raw >> 12) > 9)
            log_once(pit, PIT_LOG_BCD, "BCD count 0x%04x has a digit above 9; counted as written", raw);
        n = (raw >> 12) * 1000 + (raw >> 8 & 0xf) * 100 + (raw >> 4 & 0xf) * 10 + (raw & 0xf);
        n %= 10000;
    }
    if (n == 0)
        n = modulus(c);
    if (n == 1 && periodic(c)) {
        log_once(pit, PIT_LOG_COUNT1, "count 1 is illegal in mode %u; 2 used", c->mode);
        n = 2;
    }
    return n;
}

static void load_count(struct pit8254 *pit, struct pit_channel *c, uint16_t raw, uint64_t now)
{
    uint32_t n = decode_count(pit, c, raw);
    bool first = !c->has_count;
    c->written = n;
    c->has_count = true;
    switch (c->mode) {
    case 1:
    case 5:
        /* Loaded by the next gate trigger. */
        if (first)
            c->cur = (struct pit_regime){.load = now, .n = n};
        c->loads_at = NEVER_TICK;
        return;
    case 2:
    case 3:
        if (c->running && !first) {
            /* The new count takes over at the end of the current period. */
            if (!(c->has_prev && now < c->cur.load)) {
                uint64_t end = c->cur.load + ((now - c->cur.load) / c->cur.n + 1) * c->cur.n;
                c->prev = c->cur;
                c->has_prev = true;
                c->cur.load = end;
            }
            c->cur.n = n;
            c->loads_at = c->cur.load;
            return;
        }
        break;
    default: break;
    }
    c->cur = (struct pit_regime){.load = now, .n = n};
    c->has_prev = false;
    c->running = c->gate;
    c->held_d = 0;
    c->loads_at = c->gate ? now : NEVER_TICK;
}

static void set_gate(struct pit_channel *c, bool gate, uint64_t now)
{
    if (gate == c->gate)
        return;
    c->gate = gate;
    if (!c->has_count)
        return;
    uint64_t d;
    if (gate) {
        switch (c->mode) {
        case 0:
        case 4:
            if (!c->running) {
                c->cur.load = now - c->held_d;
                c->running = true;
            }
            break;
        default: /* 2, 3 restart; 1, 5 trigger: with the last count written */
            c->cur = (struct pit_regime){.load = now, .n = c->written};
            c->has_prev = false;
            c->running = true;
            c->triggered = true;
            break;
        }
        if (c->loads_at > now)
            c->loads_at = now;
    } else if (c->mode != 1 && c->mode != 5 && c->running) {
        const struct pit_regime *r = active(c, now, &d);
        c->cur.n = r->n;
        c->held_d = d;
        c->has_prev = false;
        c->running = false;
    }
}

static void control_write(struct pit8254 *pit, uint8_t v, uint64_t now)
{
    if ((v & CTRL_READBACK) == CTRL_READBACK) {
        if (!(v & 0x0e))
            log_once(pit, PIT_LOG_READBACK, "read-back 0x%02x selects no counter", v);
        for (unsigned i = 0; i < 3; i++) {
            if (!(v & (2u << i)))
                continue;
            if (!(v & RB_NO_STATUS))
                latch_status(&pit->ch[i], now);
            if (!(v & RB_NO_COUNT))
                latch_count(&pit->ch[i], now);
        }
        return;
    }
    unsigned i = v >> 6;
    struct pit_channel *c = &pit->ch[i];
    unsigned rw = v >> 4 & 3;
    if (rw == RW_LATCH) {
        latch_count(c, now);
        return;
    }
    if (i == 0)
        sync_irq(pit, now);
    unsigned mode = v >> 1 & 7;
    c->mode = (uint8_t)(mode > 5 ? mode - 4 : mode);
    c->rw = (uint8_t)rw;
    c->bcd = v & 1;
    c->programmed = true;
    c->has_count = c->running = c->triggered = c->has_prev = false;
    c->held_d = 0;
    c->loads_at = NEVER_TICK;
    c->write_msb_next = c->read_msb_next = false;
    c->latched = 0;
    c->status_latched = false;
}

static void data_write(struct pit8254 *pit, unsigned i, uint8_t v, uint64_t now)
{
    struct pit_channel *c = &pit->ch[i];
    if (!c->programmed) {
        log_once(pit, PIT_LOG_UNPROGRAMMED, "channel %u written before any control word; ignored", i);
        return;
    }
    if (i == 0)
        sync_irq(pit, now);
    switch (c->rw) {
    case RW_LSB: load_count(pit, c, v, now); break;
    case RW_MSB: load_count(pit, c, (uint16_t)(v << 8), now); break;
    default:
        if (!c->write_msb_next) {
            c->write_lsb = v;
            c->write_msb_next = true;
            /* Mode 0: the first byte stops the count and sets OUT low. */
            if (c->mode == 0 && c->has_count) {
                c->running = false;
                c->held_d = 0;
            }
        } else {
            c->write_msb_next = false;
            load_count(pit, c, (uint16_t)(c->write_lsb | v << 8), now);
        }
        break;
    }
}

static uint8_t data_read(struct pit_channel *c, uint64_t now)
{
    if (c->status_latched) {
        c->status_latched = false;
        return c->status;
    }
    if (c->latched) {
        switch (c->latched) {
        case RW_LSB: c->latched = 0; return (uint8_t)c->latch;
        case RW_MSB: c->latched = 0; return (uint8_t)(c->latch >> 8);
        case RW_BOTH: c->latched = LATCH_MSB_NEXT; return (uint8_t)c->latch;
        default: c->latched = 0; return (uint8_t)(c->latch >> 8);
        }
    }
    uint32_t v = counter_value(c, now);
    switch (c->rw) {
    case RW_LSB: return (uint8_t)v;
    case RW_MSB: return (uint8_t)(v >> 8);
    default:
        c->read_msb_next = !c->read_msb_next;
        return (uint8_t)(c->read_msb_next ? v : v >> 8);
    }
}

static struct bus_result pit_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    struct pit8254 *pit = dev;
    if (offset == CTRL_PORT) {
        log_once(pit, PIT_LOG_CONTROL_READ, "the control port 0x43 read; it is write-only");
        *value = 0xff;
        return BUS_OK;
    }
    *value = data_read(&pit->ch[offset], now_tick(pit));
    return BUS_OK;
}

static struct bus_result pit_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    struct pit8254 *pit = dev;
    uint64_t now = now_tick(pit);
    if (offset == CTRL_PORT)
        control_write(pit, (uint8_t)value, now);
    else
        data_write(pit, (unsigned)offset, (uint8_t)value, now);
    return BUS_OK;
}

static struct bus_result port61_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)offset;
    (void)width;
    struct pit8254 *pit = dev;
    uint64_t ns = clock_now_ns(&pit->clock);
    uint64_t now = muldiv64(ns, PIT8254_HZ, NS_PER_SEC);
    *value = (pit->ch[2].gate ? P61_GATE2 : 0) | pit->port61 | ((ns / PIT8254_REFRESH_NS) & 1 ? P61_REFRESH : 0) |
             (channel_out(&pit->ch[2], now) ? P61_OUT2 : 0);
    return BUS_OK;
}

static struct bus_result port61_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct pit8254 *pit = dev;
    /* Bits 4-7 are status: kernels write back what they read, which is no mistake. */
    pit->port61 = (uint8_t)value & P61_WRITABLE;
    set_gate(&pit->ch[2], value & P61_GATE2, now_tick(pit));
    return BUS_OK;
}

static const struct bus_ops pit_ops = {.read = pit_read, .write = pit_write};
static const struct bus_ops port61_ops = {.read = port61_read, .write = port61_write};

bool pit8254_out(struct pit8254 *pit, unsigned i)
{
    return i < 3 && channel_out(&pit->ch[i], now_tick(pit));
}

uint64_t pit8254_deadline(struct pit8254 *pit)
{
    uint64_t now = now_tick(pit);
    sync_irq(pit, now);
    uint64_t ns;
    if (pit->pending_edges) {
        ns = clock_now_ns(&pit->clock);
    } else {
        uint64_t tick = next_edge(&pit->ch[0], now);
        if (tick == NEVER_TICK)
            return CLOCK_NEVER;
        ns = tick_ns(tick);
    }
    if (pit->irq_sent && ns < pit->last_irq_ns + PIT8254_MIN_IRQ_GAP_NS)
        ns = pit->last_irq_ns + PIT8254_MIN_IRQ_GAP_NS;
    return ns;
}

void pit8254_poll(struct pit8254 *pit)
{
    uint64_t ns = clock_now_ns(&pit->clock);
    sync_irq(pit, muldiv64(ns, PIT8254_HZ, NS_PER_SEC));
    if (!pit->pending_edges || (pit->irq_sent && ns < pit->last_irq_ns + PIT8254_MIN_IRQ_GAP_NS))
        return;
    irq_pulse(&pit->irq, PIT8254_IRQ);
    pit->irq_delivered++;
    pit->irq_coalesced += pit->pending_edges - 1;
    pit->pending_edges = 0;
    pit->last_irq_ns = ns;
    pit->irq_sent = true;
}

void pit8254_reset(struct pit8254 *pit)
{
    for (unsigned i = 0; i < 3; i++) {
        struct pit_channel *c = &pit->ch[i];
        memset(c, 0, sizeof(*c));
        c->cur.n = 0x10000;
        c->written = 0x10000;
        c->loads_at = NEVER_TICK;
        c->gate = i != 2; /* channels 0 and 1 are gated on by the board; 2 by port 0x61 */
    }
    pit->port61 = 0;
    pit->irq_tick = now_tick(pit);
    pit->pending_edges = 0;
    pit->irq_sent = false;
}

int pit8254_attach(struct pit8254 *pit, struct vm_bus *bus, const struct dev_clock *clock,
                   const struct irq_sink *irq, const char *vm_name)
{
    memset(pit, 0, sizeof(*pit));
    pit->clock = *clock;
    pit->irq = *irq;
    pit->vm_name = vm_name;
    pit8254_reset(pit);
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = PIT8254_BASE, .len = 4,
                                                  .widths = BUS_WIDTH_1, .ops = &pit_ops, .dev = pit,
                                                  .owner = "PIT"});
    if (id < 0)
        return id;
    id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = PIT8254_PORT61, .len = 1,
                                              .widths = BUS_WIDTH_1, .ops = &port61_ops, .dev = pit,
                                              .owner = "PIT port 0x61"});
    return id < 0 ? id : 0;
}
