/* Host tests for the CPU set type (arch/x86/cpumask.h): every CPU index below MAX_CPUS
 * is its own member, across word boundaries and far past 64, and nothing aliases.
 * SOURCES:
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/cpumask.h"

static void test_limits(void **state)
{
    (void)state;
    assert_true(MAX_CPUS >= 256);
    assert_int_equal(sizeof(cpumask_t) * 8, CPUMASK_WORDS * 64);
    assert_true(CPUMASK_WORDS * 64 >= MAX_CPUS);
}

static void test_each_cpu_alone(void **state)
{
    (void)state;
    for (uint32_t cpu = 0; cpu < MAX_CPUS; cpu++) {
        cpumask_t m;
        memset(&m, 0, sizeof m);
        cpumask_set(&m, cpu);
        assert_int_equal(cpumask_count(&m), 1);
        assert_true(cpumask_test(&m, cpu));
        /* Bits that a 64-bit shift would wrap onto are different CPUs. */
        assert_false(cpumask_test(&m, (cpu + 64) % MAX_CPUS));
        assert_false(cpumask_test(&m, cpu % 64 == cpu ? cpu + 1 : cpu % 64));
        assert_false(cpumask_any_but(&m, cpu));
        assert_true(cpumask_any_but(&m, (cpu + 1) % MAX_CPUS));
        cpumask_clear(&m, cpu);
        assert_int_equal(cpumask_count(&m), 0);
        assert_false(cpumask_any_but(&m, (cpu + 1) % MAX_CPUS));
    }
}

static void test_many(void **state)
{
    (void)state;
    cpumask_t m;
    memset(&m, 0, sizeof m);
    static const uint32_t cpus[] = {0, 63, 64, 127, 128, 255, 256, 300, MAX_CPUS - 1};
    for (size_t i = 0; i < sizeof cpus / sizeof cpus[0]; i++)
        cpumask_set(&m, cpus[i]);
    cpumask_set(&m, 300); /* twice is once */
    assert_int_equal(cpumask_count(&m), sizeof cpus / sizeof cpus[0]);
    for (size_t i = 0; i < sizeof cpus / sizeof cpus[0]; i++) {
        assert_true(cpumask_test(&m, cpus[i]));
        assert_true(cpumask_any_but(&m, cpus[i]));
    }
    assert_false(cpumask_test(&m, 1));
    assert_false(cpumask_test(&m, 299));
    assert_false(cpumask_test(&m, 44)); /* where 1ull << 300 lands on x86 */
}

static void test_out_of_range(void **state)
{
    (void)state;
    cpumask_t m, zero;
    memset(&m, 0, sizeof m);
    memset(&zero, 0, sizeof zero);
    cpumask_set(&m, MAX_CPUS);
    cpumask_set(&m, UINT32_MAX);
    assert_memory_equal(&m, &zero, sizeof m);
    assert_false(cpumask_test(&m, MAX_CPUS));
    cpumask_set(&m, 5);
    cpumask_clear(&m, MAX_CPUS + 5);
    assert_true(cpumask_test(&m, 5));
    /* An index outside the set excludes nothing. */
    assert_true(cpumask_any_but(&m, MAX_CPUS + 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_each_cpu_alone),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_out_of_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
