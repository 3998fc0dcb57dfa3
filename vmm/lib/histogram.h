/* Durations (TSC ticks, 32 bits) as a summary and a log-linear histogram, the way
 * HdrHistogram keeps them: values below 16 have a bucket each; from 16 on, every power
 * of two is cut into 8 equal sub-buckets, so a bucket is at most 1/8 as wide as its
 * lower bound and the whole 32-bit range fits in 240 buckets of constant memory.
 *
 * Recording sits on Keel's VM-exit path, so it is a handful of instructions with no
 * branch on the value: the bucket of v is (s << 3) + (v >> s), where s is how far v's
 * highest set bit lies above bit 3 (0 for v < 16). Everything else (percentiles,
 * merging, bounds) is off that path. */
#ifndef KEEL_VMM_LIB_HISTOGRAM_H
#define KEEL_VMM_LIB_HISTOGRAM_H

#include "vmm/lib/types.h"

#define HIST_SUB_BITS 3
#define HIST_SUB_BUCKETS (1u << HIST_SUB_BITS)
/* Shifts 0..28 (bit 31 is 28 above bit 3), each adding 8 buckets to the first 16. */
#define HIST_BUCKETS ((32 - HIST_SUB_BITS) * HIST_SUB_BUCKETS + HIST_SUB_BUCKETS)

struct histogram {
    uint64_t bucket[HIST_BUCKETS];
};

/* One kind of event's durations: their sum, extremes and histogram. The count of
 * events lives with whoever counts them (a vCPU counts exits on exit, before their
 * duration is known); hist_count() is the number of durations recorded. */
struct latency {
    uint64_t total;
    uint32_t min; /* UINT32_MAX while empty: latency_clear sets it */
    uint32_t max;
    struct histogram hist;
};

static inline __attribute__((always_inline)) uint32_t hist_bucket_of(uint32_t v)
{
    /* v | 15 has its top bit at 3 or above, and BSR of it is defined. */
    uint32_t shift = ((uint32_t)__builtin_clz(v | 15u) ^ 31u) - HIST_SUB_BITS;
    return (shift << HIST_SUB_BITS) + (v >> shift);
}

static inline __attribute__((always_inline)) void latency_record(struct latency *l, uint32_t v)
{
    l->total += v;
    if (v < l->min)
        l->min = v;
    if (v > l->max)
        l->max = v;
    l->hist.bucket[hist_bucket_of(v)]++;
}

/* The smallest value bucket i holds, and one past its largest (as 64 bits: the last
 * bucket ends at 2^32). */
uint32_t hist_bucket_low(uint32_t i);
uint64_t hist_bucket_end(uint32_t i);

void latency_clear(struct latency *l);
uint64_t hist_count(const struct histogram *h);
/* Adds src's durations into dst (per-vCPU figures into a VM's). */
void latency_merge(struct latency *dst, const struct latency *src);
/* The value at or below which `per_10000` ten-thousandths of the recorded durations lie
 * (5000: the median, 9990: p99.9), as the highest value of the bucket holding it,
 * clamped to the exact min and max; 0 when nothing was recorded. */
uint32_t latency_percentile(const struct latency *l, uint32_t per_10000);

#endif
