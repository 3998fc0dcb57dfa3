#include "guest.h"
#include "report.h"
#include "timing.h"

#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PORT_B 0x61
#define PORT_B_GATE2 0x01
#define PORT_B_SPEAKER 0x02
#define PORT_B_OUT2 0x20
#define PIT_CMD_CH2_LOHI_MODE0 0xB0

#define PIT_50MS 59659u
/* Polls of OUT2 before giving up on a countdown that should take 50 ms: enough even
 * when every port read is a slow VM exit, bounded when the PIT is missing. */
#define PIT_POLL_LIMIT 5000000u

uint32_t tsc_khz = 1000000; /* 1 GHz until measured */

static uint16_t pm_port;
static uint32_t pm_mask;

bool pit2_measure(uint16_t count, uint64_t *tsc_cycles, uint32_t *pm_ticks)
{
    outb(PORT_B, (uint8_t)((inb(PORT_B) & ~PORT_B_SPEAKER) | PORT_B_GATE2));
    outb(PIT_CMD, PIT_CMD_CH2_LOHI_MODE0);
    outb(PIT_CH2, (uint8_t)count);
    uint32_t pm0 = pm_port ? pm_timer_read() : 0;
    uint64_t t0 = rdtsc();
    outb(PIT_CH2, (uint8_t)(count >> 8)); /* the countdown starts with the high byte */
    for (uint32_t i = 0; i < PIT_POLL_LIMIT; i++) {
        if (inb(PORT_B) & PORT_B_OUT2) {
            *tsc_cycles = rdtsc() - t0;
            if (pm_ticks)
                *pm_ticks = pm_port ? pm_timer_delta(pm0, pm_timer_read()) : 0;
            return true;
        }
    }
    return false;
}

/* Of several countdowns the shortest: a host that deschedules the vCPU while it polls
 * only ever makes a measurement longer. */
static uint64_t min3(const uint64_t v[3])
{
    uint64_t m = v[0] < v[1] ? v[0] : v[1];
    return m < v[2] ? m : v[2];
}

void timing_calibrate(void)
{
    uint64_t d[3];
    for (int i = 0; i < 3; i++) {
        if (!pit2_measure(PIT_50MS, &d[i], NULL)) {
            fail("tsc-calibration", "PIT channel 2 OUT (port 0x61 bit 5) never rose in "
                 "%u polls; assuming a 1 GHz TSC", PIT_POLL_LIMIT);
            return;
        }
    }
    uint64_t cycles = min3(d);
    uint64_t khz = udiv64_32(cycles * PIT_HZ, PIT_50MS * 1000u);
    if (khz < 1000 || khz > 0xFFFFFFFFull) {
        fail("tsc-calibration", "TSC ran %llu cycles in 50 ms of PIT time", cycles);
        return;
    }
    tsc_khz = (uint32_t)khz;
    ok("tsc-calibration: TSC %u.%03u MHz against PIT channel 2 (shortest of 3 x 50 ms)",
       tsc_khz / 1000, tsc_khz % 1000);
}

uint64_t deadline_ms(uint32_t ms)
{
    return rdtsc() + (uint64_t)ms * tsc_khz;
}

bool expired(uint64_t deadline)
{
    return (int64_t)(rdtsc() - deadline) >= 0;
}

void delay_us(uint32_t us)
{
    uint64_t end = rdtsc() + udiv64_32((uint64_t)us * tsc_khz, 1000);
    while ((int64_t)(rdtsc() - end) < 0)
        __asm__ volatile("pause");
}

uint32_t tsc_to_us(uint64_t cycles)
{
    uint64_t us = udiv64_32(cycles * 1000, tsc_khz);
    return us > 0xFFFFFFFFull ? 0xFFFFFFFFu : (uint32_t)us;
}

void pm_timer_init(uint16_t port, bool ext)
{
    pm_port = port;
    pm_mask = ext ? 0xFFFFFFFFu : 0x00FFFFFFu;
}

bool pm_timer_present(void)
{
    return pm_port != 0;
}

uint32_t pm_timer_read(void)
{
    return inl(pm_port) & pm_mask;
}

uint32_t pm_timer_delta(uint32_t a, uint32_t b)
{
    return (b - a) & pm_mask;
}

void pm_timer_check(void)
{
    if (!pm_port) {
        fail("pm-timer", "no PM timer port (FADT PM_TMR_BLK missing)");
        return;
    }
    uint64_t ticks[3], cycles;
    for (int i = 0; i < 3; i++) {
        uint32_t t;
        if (!pit2_measure(PIT_50MS, &cycles, &t)) {
            fail("pm-timer", "PIT channel 2 did not count down");
            return;
        }
        ticks[i] = t;
    }
    uint32_t got = (uint32_t)min3(ticks);
    uint32_t want = PIT_50MS * 3; /* PM_TIMER_HZ / PIT_HZ is 3.0000 */
    uint32_t hz = (uint32_t)udiv64_32((uint64_t)got * PIT_HZ, PIT_50MS);
    if (got < want - want / 20 || got > want + want / 20)
        fail("pm-timer", "port 0x%x advanced %u ticks in 50 ms of PIT time, want %u "
             "(+-5%%): %u Hz, not %u", pm_port, got, want, hz, PM_TIMER_HZ);
    else
        ok("pm-timer: port 0x%x runs at %u Hz against the PIT (want %u, +-5%%)", pm_port,
           hz, PM_TIMER_HZ);
}
