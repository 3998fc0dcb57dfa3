/* The TSC as Keel's clock (see tsc.h). */
#include "arch/x86/tsc.h"
#include "arch/x86/cpu.h"
#include "vmm/lib/time_math.h"

/* Until calibrated, assume a CPU faster than any real one: delays then run long. */
#define TSC_HZ_GUESS 10000000000ull

static uint64_t tsc_rate = TSC_HZ_GUESS;
static uint64_t tsc_at_calibration;
static bool calibrated;
static struct tick_scale tsc_to_ns_scale;
static struct tick_scale ns_to_tsc_scale;

void tsc_set_rate(uint64_t hz)
{
    tsc_rate = hz;
    tick_scale_init(&tsc_to_ns_scale, hz, NS_PER_SEC);
    tick_scale_init(&ns_to_tsc_scale, NS_PER_SEC, hz);
    tsc_at_calibration = rdtsc();
    calibrated = true;
}

bool tsc_calibrated(void)
{
    return calibrated;
}

uint64_t tsc_hz(void)
{
    return tsc_rate;
}

uint64_t tsc_to_ns(uint64_t ticks)
{
    return calibrated ? tick_scale_apply(&tsc_to_ns_scale, ticks) : 0;
}

uint64_t ns_to_tsc(uint64_t ns)
{
    if (!calibrated)
        return muldiv64(ns, TSC_HZ_GUESS, NS_PER_SEC);
    return tick_scale_apply(&ns_to_tsc_scale, ns);
}

uint64_t time_ns(void)
{
    return calibrated ? tsc_to_ns(rdtsc() - tsc_at_calibration) : 0;
}

void udelay(uint64_t us)
{
    uint64_t ns = us > UINT64_MAX / 1000 ? UINT64_MAX : us * 1000;
    uint64_t ticks = ns_to_tsc(ns);
    uint64_t start = rdtsc();
    while (rdtsc() - start < ticks)
        cpu_relax();
}
