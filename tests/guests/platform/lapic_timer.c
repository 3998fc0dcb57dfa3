#include "guest.h"
#include "intr.h"
#include "lapic_timer.h"
#include "report.h"
#include "timing.h"

#define DIVIDE_BY_16 0x3
#define CPUID1_ECX_TSC_DEADLINE (1u << 24)
#define MSR_TSC_DEADLINE 0x6E0u
#define ONESHOT_MS 10
#define PERIOD_MS 5
#define PERIODS 5

static uint32_t lapic_khz;

/* A timer that was due after `want_us` fired in a sane time: not much early, and not
 * more than twice as late plus 20 ms for an emulator's host thread to be scheduled. */
static bool sane(uint32_t got_us, uint32_t want_us)
{
    return got_us >= want_us - want_us / 5 && got_us <= 2 * want_us + 20000;
}

/* Waits with interrupts on until the timer has fired `n` times since `before`, then
 * `quiet_ms` longer; returns microseconds from t0 to the n-th interrupt, -1 if it did
 * not come within `ms`. */
static int32_t wait_timer(uint32_t before, uint32_t n, uint64_t t0, uint32_t ms,
                          uint32_t quiet_ms, uint32_t *total)
{
    uint64_t dl = deadline_ms(ms), at = 0;
    sti();
    while (counts.timer - before < n && !expired(dl))
        __asm__ volatile("pause");
    at = counts.timer_tsc;
    bool arrived = counts.timer - before >= n;
    if (arrived && quiet_ms) {
        dl = deadline_ms(quiet_ms);
        while (!expired(dl))
            __asm__ volatile("pause");
    }
    cli();
    *total = counts.timer - before;
    return arrived ? (int32_t)tsc_to_us(at - t0) : -1;
}

static bool calibrate(void)
{
    lapic_write(LAPIC_TIMER_DIV, DIVIDE_BY_16);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0xFFFFFFFFu);
    uint32_t c0 = lapic_read(LAPIC_TIMER_CUR);
    uint64_t t0 = rdtsc();
    delay_us(50000);
    uint32_t c1 = lapic_read(LAPIC_TIMER_CUR);
    uint64_t cycles = rdtsc() - t0;
    lapic_write(LAPIC_TIMER_INIT, 0);
    if (c1 >= c0) {
        fail("lapic-timer-oneshot", "the current count did not go down (0x%x then 0x%x)", c0,
             c1);
        return false;
    }
    lapic_khz = (uint32_t)udiv64_32((uint64_t)(c0 - c1) * tsc_khz, (uint32_t)
                                    (cycles > 0xFFFFFFFFull ? 0xFFFFFFFFull : cycles));
    if (!lapic_khz) {
        fail("lapic-timer-oneshot", "counts at under 1 kHz (divide by 16)");
        return false;
    }
    return true;
}

static void oneshot(void)
{
    uint32_t want = ONESHOT_MS * 1000, total, before = counts.timer;
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER);
    uint64_t t0 = rdtsc();
    lapic_write(LAPIC_TIMER_INIT, lapic_khz * ONESHOT_MS);
    int32_t us = wait_timer(before, 1, t0, 1000, 3 * ONESHOT_MS, &total);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    if (us < 0)
        fail("lapic-timer-oneshot", "no interrupt within 1 s of arming %u ms", ONESHOT_MS);
    else if (total != 1)
        fail("lapic-timer-oneshot", "%u interrupts from one one-shot count", total);
    else if (!sane((uint32_t)us, want))
        fail("lapic-timer-oneshot", "armed for %u us, fired after %d us", want, us);
    else
        ok("lapic-timer-oneshot: counts at %u kHz (divide by 16); armed for %u us, fired "
           "once after %d us", lapic_khz, want, us);
}

static void periodic(void)
{
    uint32_t want = PERIOD_MS * PERIODS * 1000, total, before = counts.timer;
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_PERIODIC);
    uint64_t t0 = rdtsc();
    lapic_write(LAPIC_TIMER_INIT, lapic_khz * PERIOD_MS);
    int32_t us = wait_timer(before, PERIODS, t0, 2000, 0, &total);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    lapic_write(LAPIC_TIMER_INIT, 0);
    if (us < 0)
        fail("lapic-timer-periodic", "%u of %u interrupts within 2 s at a %u ms period", total,
             PERIODS, PERIOD_MS);
    else if (!sane((uint32_t)us, want))
        fail("lapic-timer-periodic", "%u periods of %u ms took %d us", PERIODS, PERIOD_MS, us);
    else
        ok("lapic-timer-periodic: %u interrupts at a %u ms period in %d us (want %u)", PERIODS,
           PERIOD_MS, us, want);
}

static void tsc_deadline(void)
{
    if (!(cpuid(1, 0).ecx & CPUID1_ECX_TSC_DEADLINE)) {
        skip("tsc-deadline: CPUID.1:ECX[24] is clear");
        return;
    }
    uint32_t want = ONESHOT_MS * 1000, total, before = counts.timer;
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER | LVT_TIMER_TSC_DEADLINE);
    /* The SDM asks for a serialising step between the LVT write and the MSR write. */
    __asm__ volatile("mfence" ::: "memory");
    uint64_t t0 = rdtsc();
    wrmsr(MSR_TSC_DEADLINE, t0 + (uint64_t)tsc_khz * ONESHOT_MS);
    int32_t us = wait_timer(before, 1, t0, 1000, 3 * ONESHOT_MS, &total);
    wrmsr(MSR_TSC_DEADLINE, 0);
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_TIMER);
    if (us < 0)
        fail("tsc-deadline", "no interrupt within 1 s of a deadline %u ms ahead", ONESHOT_MS);
    else if (total != 1)
        fail("tsc-deadline", "%u interrupts from one deadline", total);
    else if (!sane((uint32_t)us, want))
        fail("tsc-deadline", "deadline %u us ahead, fired after %d us", want, us);
    else
        ok("tsc-deadline: deadline %u us ahead, fired once after %d us", want, us);
}

void lapic_timer_check(void)
{
    if (!calibrate())
        return;
    oneshot();
    periodic();
    tsc_deadline();
}
