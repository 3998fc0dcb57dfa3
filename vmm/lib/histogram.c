/* The cold half of vmm/lib/histogram.h: bucket bounds, merging and percentiles. */
#include "vmm/lib/histogram.h"
#include "vmm/lib/string.h"

/* Bucket i >= 16 is sub-bucket i % 8 of shift i / 8 - 1; the first 16 have shift 0. */
static uint32_t bucket_shift(uint32_t i)
{
    return i < 2 * HIST_SUB_BUCKETS ? 0 : (i >> HIST_SUB_BITS) - 1;
}

uint32_t hist_bucket_low(uint32_t i)
{
    uint32_t shift = bucket_shift(i);
    return (i - (shift << HIST_SUB_BITS)) << shift;
}

uint64_t hist_bucket_end(uint32_t i)
{
    return (uint64_t)hist_bucket_low(i) + (1ull << bucket_shift(i));
}

void latency_clear(struct latency *l)
{
    memset(l, 0, sizeof(*l));
    l->min = UINT32_MAX;
}

uint64_t hist_count(const struct histogram *h)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        n += h->bucket[i];
    return n;
}

void latency_merge(struct latency *dst, const struct latency *src)
{
    dst->total += src->total;
    dst->min = MIN(dst->min, src->min);
    dst->max = MAX(dst->max, src->max);
    for (uint32_t i = 0; i < HIST_BUCKETS; i++)
        dst->hist.bucket[i] += src->hist.bucket[i];
}

uint32_t latency_percentile(const struct latency *l, uint32_t per_10000)
{
    uint64_t n = hist_count(&l->hist);
    if (!n)
        return 0;
    per_10000 = MIN(per_10000, 10000u);
    /* The rank of the wanted duration in sorted order, from 1: ceil(n * p). Split so
     * that n * p cannot overflow for any count. */
    uint64_t rank = n / 10000 * per_10000 + (n % 10000 * per_10000 + 9999) / 10000;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < HIST_BUCKETS; i++) {
        seen += l->hist.bucket[i];
        if (seen >= rank) {
            uint32_t v = (uint32_t)(hist_bucket_end(i) - 1);
            return MAX(MIN(v, l->max), l->min);
        }
    }
    return l->max; /* not reached: the buckets sum to n */
}
