/* The PC's 8254 interval timer (ports 0x40-0x43, 1.193182 MHz) and the port 0x61
 * bits that belong to it (channel 2's gate and output, the speaker enable, the
 * refresh toggle), which kernels use to calibrate their clocks.
 *
 * Emulated: channels 0-2, modes 0-5 (a new count in modes 2 and 3 waits for the end
 * of the current period; the gate pauses modes 0 and 4, restarts 2 and 3, triggers 1
 * and 5), LSB/MSB/both access with the byte flip-flops, counter latch, read-back
 * (count and status, with OUT and NULL COUNT), binary and BCD counting. Everything is
 * computed from the VM clock when the guest looks. Channel 0's OUT drives IRQ 0.
 * Channel 1 (DRAM refresh) counts, but drives nothing; the speaker makes no sound.
 * Timing is to the PIT tick, counted from the write of the count (a real counter
 * loads on the next tick).
 *
 * IRQ 0: each rising edge of channel 0's OUT is an edge on line 0. The VM asks for
 * pit8254_deadline() and calls pit8254_poll() at or after it; a poll delivers at most
 * one edge, however many periods passed, and counts the others as coalesced. The
 * deadline is never sooner than PIT8254_MIN_IRQ_GAP_NS after the last delivered edge,
 * so the shortest period a guest can program costs one poll per gap, not one per
 * period. */
#ifndef KEEL_VMM_DEV_PIT8254_H
#define KEEL_VMM_DEV_PIT8254_H

#include "vmm/dev/bus.h"
#include "vmm/dev/clock.h"
#include "vmm/dev/irq.h"

#define PIT8254_HZ 1193182ull
#define PIT8254_BASE 0x40
#define PIT8254_PORT61 0x61
#define PIT8254_IRQ 0
#define PIT8254_MIN_IRQ_GAP_NS 50000ull /* 20 kHz: above any HZ a kernel uses */
#define PIT8254_REFRESH_NS 15085ull     /* half-period of port 0x61 bit 4 */

/* The count register and CE of one channel. Times are in PIT ticks of the VM clock. */
struct pit_regime {
    uint64_t load; /* the tick at which the counter held n (d = 0) */
    uint32_t n;    /* 1 to 0x10000 (binary) or 10000 (BCD) */
};

struct pit_channel {
    uint8_t mode, rw, bcd; /* rw: 1 LSB, 2 MSB, 3 LSB then MSB */
    bool programmed;       /* a control word was written */
    bool has_count;        /* ... and a full count after it */
    bool gate;
    bool running;          /* the CE counts: cur is live */
    bool triggered;        /* modes 1 and 5: a gate edge started the count */
    bool has_prev;         /* modes 2 and 3: prev runs until cur.load */
    struct pit_regime cur, prev;
    uint64_t held_d;       /* while not running: the elapsed ticks the counter shows */
    uint32_t written;      /* the last count written, for the next load */
    uint64_t loads_at;     /* the tick the written count reaches the CE (NULL COUNT until then) */
    uint8_t write_lsb;
    bool write_msb_next, read_msb_next;
    uint8_t latched;       /* 0, or the rw state of a latched count: 1, 2, 3 (LSB then MSB) */
    uint16_t latch;
    bool status_latched;
    uint8_t status;
};

enum pit8254_logged {
    PIT_LOG_COUNT1 = BIT(0),   /* a count of 1 in mode 2 or 3 */
    PIT_LOG_BCD = BIT(1),      /* a BCD count with a digit above 9 */
    PIT_LOG_CONTROL_READ = BIT(2),
    PIT_LOG_READBACK = BIT(3), /* a read-back selecting no channel */
    PIT_LOG_UNPROGRAMMED = BIT(4), /* a count before any control word */
};

struct pit8254 {
    struct pit_channel ch[3];
    struct dev_clock clock;
    struct irq_sink irq;
    const char *vm_name;
    uint8_t port61; /* bits 1-3 as written (bit 0 is ch[2].gate) */
    uint64_t irq_tick;       /* channel 0 edges up to this tick are accounted for */
    uint64_t last_irq_ns;    /* when the last edge was delivered */
    bool irq_sent;
    uint64_t pending_edges;  /* accounted for, not yet delivered */
    uint64_t irq_delivered;  /* edges delivered on line 0 */
    uint64_t irq_coalesced;  /* edges merged into a later delivery */
    uint32_t logged;         /* enum pit8254_logged */
};

/* Resets the PIT (no channel programmed, channel 2's gate low) and registers ports
 * 0x40-0x43 and 0x61, byte-wide. clock and irq are copied. Returns 0 or a negative bus
 * error. */
int pit8254_attach(struct pit8254 *pit, struct vm_bus *bus, const struct dev_clock *clock,
                   const struct irq_sink *irq, const char *vm_name);

void pit8254_reset(struct pit8254 *pit);

/* VM time (ns) at which pit8254_poll() next has an edge to deliver, or CLOCK_NEVER. */
uint64_t pit8254_deadline(struct pit8254 *pit);

/* Delivers channel 0's edges since the last poll as one edge on IRQ 0 (if any). */
void pit8254_poll(struct pit8254 *pit);

/* Channel i's OUT now (for tests and the vCPU side's diagnostics). */
bool pit8254_out(struct pit8254 *pit, unsigned i);

#endif
