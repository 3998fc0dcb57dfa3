/* Calibration arithmetic: the 128-bit mul/div the core does without libgcc, window
 * rates for the HPET and PIT references, TSC<->ns scaling, and HPET capability checks. */
/* SOURCES: drivers/timer_math.c vmm/lib/time_math.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "drivers/timer_math.h"

static uint64_t ref_muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    if (c == 0)
        return UINT64_MAX;
    unsigned __int128 q = (unsigned __int128)a * b / c;
    return q > UINT64_MAX ? UINT64_MAX : (uint64_t)q;
}

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void muldiv_matches_reference(void **state)
{
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000; i++) {
        /* Mix full-width and narrower operands so both saturating and exact cases occur. */
        uint64_t a = xorshift(&s) >> (xorshift(&s) % 64);
        uint64_t b = xorshift(&s) >> (xorshift(&s) % 64);
        uint64_t c = xorshift(&s) >> (xorshift(&s) % 64);
        assert_int_equal(muldiv64(a, b, c), ref_muldiv(a, b, c));
    }
}

static void muldiv_edges(void **state)
{
    (void)state;
    assert_int_equal(muldiv64(5, 7, 0), UINT64_MAX);
    assert_int_equal(muldiv64(0, UINT64_MAX, 1), 0);
    assert_int_equal(muldiv64(UINT64_MAX, UINT64_MAX, UINT64_MAX), UINT64_MAX);
    assert_int_equal(muldiv64(UINT64_MAX, 3, 2), UINT64_MAX); /* quotient needs 65 bits */
    assert_int_equal(muldiv64(UINT64_MAX, 2, 3), 12297829382473034410ull);
    assert_int_equal(muldiv64(1ull << 63, 4, 8), 1ull << 62);
    assert_int_equal(muldiv64(10, 10, 3), 33);
    /* Remainder that needs the 65th bit during division. */
    assert_int_equal(muldiv64(UINT64_MAX, UINT64_MAX - 1, UINT64_MAX), UINT64_MAX - 1);
}

static void hpet_window_gives_tsc_rate(void **state)
{
    (void)state;
    const uint64_t period = 69841279; /* 14.31818 MHz, the classic HPET */
    uint64_t ticks = 50000000000000ull / period;
    uint64_t fs = ticks * period;
    uint64_t tsc = muldiv64(2400000000ull, fs, FS_PER_SEC);
    uint64_t lapic = muldiv64(1000000000ull, fs, FS_PER_SEC);
    uint64_t hz = hz_from_window(tsc, fs);
    assert_true(hz <= 2400000000ull && 2400000000ull - hz < 100);
    hz = hz_from_window(lapic, fs);
    assert_true(hz <= 1000000000ull && 1000000000ull - hz < 100);
}

static void pit_window_gives_bochs_ips(void **state)
{
    (void)state;
    /* Under Bochs the TSC counts instructions: a 100M ips run must report ~100 MHz. */
    uint64_t count = PIT_HZ * 50 / 1000;
    uint64_t fs = muldiv64(count, FS_PER_SEC, PIT_HZ);
    assert_true(fs > 49990000000000ull && fs < 50010000000000ull);
    uint64_t tsc = muldiv64(100000000ull, count, PIT_HZ);
    uint64_t hz = hz_from_window(tsc, fs);
    assert_true(hz > 100000000ull - 100 && hz <= 100000000ull);
}

static void zero_window_is_no_rate(void **state)
{
    (void)state;
    assert_int_equal(hz_from_window(12345, 0), 0);
    assert_int_equal(hz_from_window(0, 50000000000000ull), 0);
}

static void tick_scale_tsc_to_ns(void **state)
{
    (void)state;
    struct tick_scale s;
    tick_scale_init(&s, 2400000000ull, NS_PER_SEC);
    assert_int_equal(tick_scale_apply(&s, 0), 0);
    uint64_t ns = tick_scale_apply(&s, 2400000000ull);
    assert_true(ns <= NS_PER_SEC && NS_PER_SEC - ns <= 1);
    /* A year at 2.4 GHz is still exact to the nanosecond. */
    uint64_t year = 365ull * 24 * 3600;
    ns = tick_scale_apply(&s, 2400000000ull * year);
    assert_true(ns <= year * NS_PER_SEC && year * NS_PER_SEC - ns <= 1);
    /* An awkward measured rate against the exact quotient. */
    tick_scale_init(&s, 2399987654ull, NS_PER_SEC);
    uint64_t v = 123456789012345ull;
    uint64_t exact = muldiv64(v, NS_PER_SEC, 2399987654ull);
    ns = tick_scale_apply(&s, v);
    assert_true(ns <= exact && exact - ns <= 1);
    /* Odd rate: 1 MHz (a very slow Bochs), 1 tick = 1000 ns. */
    tick_scale_init(&s, 1000000, NS_PER_SEC);
    assert_int_equal(tick_scale_apply(&s, 7), 7000);
}

static void tick_scale_ns_to_tsc(void **state)
{
    (void)state;
    struct tick_scale s;
    tick_scale_init(&s, NS_PER_SEC, 100000000ull);
    uint64_t t = tick_scale_apply(&s, 1000);
    assert_true(t >= 99 && t <= 100);
    tick_scale_init(&s, NS_PER_SEC, 5000000000ull);
    t = tick_scale_apply(&s, 10000000); /* 10 ms at 5 GHz */
    assert_true(t <= 50000000ull && 50000000ull - t <= 1);
}

static void tick_scale_saturates(void **state)
{
    (void)state;
    struct tick_scale s;
    tick_scale_init(&s, NS_PER_SEC, 100000000000ull);
    assert_int_equal(tick_scale_apply(&s, UINT64_MAX), UINT64_MAX);
    assert_int_equal(tick_scale_apply(&s, UINT64_MAX / 100), UINT64_MAX / 100 * 100);
    /* A ratio beyond 2^63 cannot be represented: the result saturates, never wraps. */
    tick_scale_init(&s, 1, UINT64_MAX);
    assert_int_equal(tick_scale_apply(&s, 3), UINT64_MAX);
    tick_scale_init(&s, 0, NS_PER_SEC); /* unknown rate: nothing, not a division by zero */
    assert_int_equal(tick_scale_apply(&s, 12345), 0);
}

static void hpet_caps_qemu(void **state)
{
    (void)state;
    struct hpet_caps c;
    /* QEMU: 10 ns period, Intel vendor, legacy route, 64-bit, 3 comparators, rev 1. */
    assert_null(hpet_caps_decode(0x008086a201ull | (10000000ull << 32), &c));
    assert_int_equal(c.period_fs, 10000000);
    assert_int_equal(c.vendor, 0x8086);
    assert_int_equal(c.rev, 1);
    assert_int_equal(c.timers, 3);
    assert_true(c.counter64);
    assert_true(c.legacy_route);
}

static void hpet_caps_classic_32bit(void **state)
{
    (void)state;
    struct hpet_caps c;
    assert_null(hpet_caps_decode(0x0429b17f80860201ull, &c));
    assert_int_equal(c.period_fs, 69841279);
    assert_false(c.counter64);
    assert_int_equal(c.timers, 3);
}

static void hpet_caps_rejects_bad_registers(void **state)
{
    (void)state;
    struct hpet_caps c;
    const char *why = hpet_caps_decode(0x000000008086a201ull, &c);
    assert_non_null(why);
    assert_non_null(strstr(why, "period is 0"));
    why = hpet_caps_decode(0x008086a201ull | ((HPET_MAX_PERIOD_FS + 1) << 32), &c);
    assert_non_null(why);
    assert_non_null(strstr(why, "100 ns"));
    assert_null(hpet_caps_decode(0x008086a201ull | (HPET_MAX_PERIOD_FS << 32), &c));
    why = hpet_caps_decode(~0ull, &c);
    assert_non_null(why);
    assert_non_null(strstr(why, "no device"));
    assert_non_null(hpet_caps_decode(0x0429b17fffffffffull, &c));
    why = hpet_caps_decode(0x0429b17f8086a200ull, &c);
    assert_non_null(why);
    assert_non_null(strstr(why, "revision"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(muldiv_matches_reference),
        cmocka_unit_test(muldiv_edges),
        cmocka_unit_test(hpet_window_gives_tsc_rate),
        cmocka_unit_test(pit_window_gives_bochs_ips),
        cmocka_unit_test(zero_window_is_no_rate),
        cmocka_unit_test(tick_scale_tsc_to_ns),
        cmocka_unit_test(tick_scale_ns_to_tsc),
        cmocka_unit_test(tick_scale_saturates),
        cmocka_unit_test(hpet_caps_qemu),
        cmocka_unit_test(hpet_caps_classic_32bit),
        cmocka_unit_test(hpet_caps_rejects_bad_registers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
