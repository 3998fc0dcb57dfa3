/* Host tests for the local APIC's IPI destination encoding (arch/x86/lapic.h): in x2APIC
 * mode the whole 32-bit APIC ID reaches the ICR, so CPUs with IDs above 255 can be
 * started; in xAPIC mode only IDs up to 254 are addressable at all.
 * SOURCES:
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/lapic.h"

#define ICR_INIT_ASSERT 0x4500u
#define ICR_SIPI_ASSERT(v) (0x4600u | (v))

static void test_x2apic_destination_is_32_bits(void **state)
{
    (void)state;
    static const uint32_t ids[] = {0, 1, 254, 255, 256, 300, 0x1234, 0x00abcdef, 0xfffffffe};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        uint64_t icr = lapic_x2apic_icr(ids[i], ICR_SIPI_ASSERT(0x9e));
        assert_int_equal(icr >> 32, ids[i]);
        assert_int_equal((uint32_t)icr, ICR_SIPI_ASSERT(0x9e)); /* vector and type intact */
        assert_true(ids[i] <= lapic_max_apic_id_in(LAPIC_MODE_X2APIC));
    }
    assert_int_equal(lapic_x2apic_icr(0x10000, ICR_INIT_ASSERT), 0x0001000000004500ull);
}

static void test_xapic_destination_is_8_bits(void **state)
{
    (void)state;
    assert_int_equal(lapic_xapic_icr_high(0), 0);
    assert_int_equal(lapic_xapic_icr_high(254), 0xfe000000u);
    /* Bits beyond the field never leak into the reserved low bits. */
    assert_int_equal(lapic_xapic_icr_high(0x1fe) & 0x00ffffffu, 0);
    assert_int_equal(lapic_max_apic_id_in(LAPIC_MODE_XAPIC), 254);
    /* 255 is the broadcast ID; above it xAPIC cannot name a CPU. */
    assert_true(255 > lapic_max_apic_id_in(LAPIC_MODE_XAPIC));
    assert_true(300 > lapic_max_apic_id_in(LAPIC_MODE_XAPIC));
    assert_int_equal(lapic_max_apic_id_in(LAPIC_MODE_NONE), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_x2apic_destination_is_32_bits),
        cmocka_unit_test(test_xapic_destination_is_8_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
