/* Host tests for the log-linear duration histogram (vmm/lib/histogram.h): every bucket's
 * bounds, that each value lands in the bucket whose bounds hold it, percentiles against
 * a sorted copy of random data, and that merging per-vCPU histograms equals recording
 * everything into one.
 * SOURCES: vmm/lib/histogram.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/lib/histogram.h"

static void test_bucket_bounds(void **state)
{
    (void)state;
    /* Exact below 16, then 8 buckets per power of two. */
    for (uint32_t i = 0; i < 16; i++) {
        assert_int_equal(hist_bucket_low(i), i);
        assert_int_equal(hist_bucket_end(i), i + 1);
    }
    assert_int_equal(hist_bucket_low(16), 16);
    assert_int_equal(hist_bucket_end(16), 18);
    assert_int_equal(hist_bucket_low(23), 30);
    assert_int_equal(hist_bucket_low(24), 32);
    assert_int_equal(hist_bucket_end(24), 36);
    assert_int_equal(hist_bucket_low(HIST_BUCKETS - 1), 15u << 28);
    assert_true(hist_bucket_end(HIST_BUCKETS - 1) == 1ull << 32);
    /* Buckets tile the range: each ends where the next begins, and is at most 1/8 as
     * wide as its lower bound (from 16 on). */
    for (uint32_t i = 0; i + 1 < HIST_BUCKETS; i++) {
        assert_true(hist_bucket_end(i) == hist_bucket_low(i + 1));
        uint64_t width = hist_bucket_end(i) - hist_bucket_low(i);
        if (i >= 16)
            assert_true(width * 8 <= hist_bucket_low(i));
    }
}

static void check_value(uint32_t v)
{
    uint32_t b = hist_bucket_of(v);
    assert_true(b < HIST_BUCKETS);
    assert_true(hist_bucket_low(b) <= v);
    assert_true(v < hist_bucket_end(b));
}

static void test_values_land_in_their_bucket(void **state)
{
    (void)state;
    /* Every value up to 2^16, the edges of every power of two, and the top. */
    for (uint32_t v = 0; v <= 65536; v++)
        check_value(v);
    for (uint32_t bit = 0; bit < 32; bit++) {
        uint32_t p = 1u << bit;
        check_value(p);
        check_value(p - 1);
        check_value(p + 1);
        check_value(p | (p - 1));
    }
    check_value(UINT32_MAX);
    srand(11);
    for (int i = 0; i < 200000; i++)
        check_value((uint32_t)rand() ^ ((uint32_t)rand() << 16));
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static struct latency lat, other, merged;

/* Durations shaped like exits: a tight main mode, a slower second one, rare outliers
 * over a wide range. */
static uint32_t exit_like(void)
{
    int r = rand() % 1000;
    if (r < 900)
        return 90 + (uint32_t)(rand() % 20);
    if (r < 990)
        return 2000 + (uint32_t)(rand() % 3000);
    return (uint32_t)rand() % (1u << (rand() % 31 + 1));
}

static void test_percentiles_against_sorted(void **state)
{
    (void)state;
    static const uint32_t ps[] = {1, 100, 5000, 9000, 9900, 9990, 9999, 10000};
    srand(7);
    for (int round = 0; round < 20; round++) {
        uint32_t n = 1 + (uint32_t)(rand() % 30000);
        uint32_t *v = malloc(n * sizeof(*v));
        assert_non_null(v);
        latency_clear(&lat);
        for (uint32_t i = 0; i < n; i++) {
            v[i] = round % 2 ? exit_like() : (uint32_t)rand() ^ ((uint32_t)rand() << 16);
            latency_record(&lat, v[i]);
        }
        qsort(v, n, sizeof(*v), cmp_u32);
        assert_int_equal(lat.min, v[0]);
        assert_int_equal(lat.max, v[n - 1]);
        assert_true(hist_count(&lat.hist) == n);
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++)
            total += v[i];
        assert_true(lat.total == total);
        for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
            /* The reference: the ceil(n * p)-th smallest value. */
            uint64_t rank = ((uint64_t)n * ps[k] + 9999) / 10000;
            uint32_t want = v[(rank ? rank : 1) - 1];
            uint32_t got = latency_percentile(&lat, ps[k]);
            /* Same bucket as the true value, never outside the data's range. */
            assert_int_equal(hist_bucket_of(got), hist_bucket_of(want));
            assert_true(got >= want && got >= v[0] && got <= v[n - 1]);
        }
        assert_int_equal(latency_percentile(&lat, 10000), v[n - 1]);
        free(v);
    }
}

static void test_percentile_small_cases(void **state)
{
    (void)state;
    latency_clear(&lat);
    assert_int_equal(latency_percentile(&lat, 5000), 0);
    latency_record(&lat, 1000);
    /* One value: every percentile is it (the bucket 960..1023 clamps to min/max). */
    assert_int_equal(latency_percentile(&lat, 1), 1000);
    assert_int_equal(latency_percentile(&lat, 9990), 1000);
    latency_record(&lat, 7);
    assert_int_equal(latency_percentile(&lat, 5000), 7);
    assert_int_equal(latency_percentile(&lat, 5001), 1000);
}

static void test_merge_equals_one_histogram(void **state)
{
    (void)state;
    static struct latency per_vcpu[4];
    srand(3);
    latency_clear(&lat);
    for (int c = 0; c < 4; c++)
        latency_clear(&per_vcpu[c]);
    for (int i = 0; i < 50000; i++) {
        uint32_t v = exit_like() + (uint32_t)(i % 4) * 7;
        latency_record(&per_vcpu[i % 4], v);
        latency_record(&lat, v);
    }
    latency_clear(&merged);
    for (int c = 0; c < 4; c++)
        latency_merge(&merged, &per_vcpu[c]);
    assert_memory_equal(&merged, &lat, sizeof(lat));
    /* An empty vCPU changes nothing, min included. */
    latency_clear(&other);
    latency_merge(&merged, &other);
    assert_memory_equal(&merged, &lat, sizeof(lat));
    for (uint32_t p = 0; p <= 10000; p += 125)
        assert_int_equal(latency_percentile(&merged, p), latency_percentile(&lat, p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_bounds),
        cmocka_unit_test(test_values_land_in_their_bucket),
        cmocka_unit_test(test_percentiles_against_sorted),
        cmocka_unit_test(test_percentile_small_cases),
        cmocka_unit_test(test_merge_equals_one_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
