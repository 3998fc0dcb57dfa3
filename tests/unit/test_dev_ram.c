/* A VM's RAM as devices and the core reach it (vmm/dev/dev_ram.h): the PC layout's split
 * at 3584 MiB, and dev_ram_span's refusal of every range not wholly inside one part:
 * the device area, the end of either part, a range across the hole, wrap-around. */
/* SOURCES: */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/dev/dev_ram.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* Host addresses are only computed, never touched: any distinct values do. */
static uint8_t low_block[16], high_block[16];
static const struct dev_ram ram = {.hva = low_block, .size = 3584 * MiB, .high_hva = high_block, .high_size = 2 * GiB};

static void test_layout(void **state)
{
    (void)state;
    assert_int_equal(guest_ram_low(64 * MiB, 0), 64 * MiB);
    assert_int_equal(guest_ram_high(64 * MiB, 0), 0);
    assert_int_equal(guest_ram_low(3584 * MiB, 0), 3584 * MiB);
    assert_int_equal(guest_ram_high(3584 * MiB, 0), 0);
    assert_int_equal(guest_ram_low(3584 * MiB + 4096, 0), 3584 * MiB);
    assert_int_equal(guest_ram_high(3584 * MiB + 4096, 0), 4096);
    assert_int_equal(guest_ram_low(256 * GiB, 0) + guest_ram_high(256 * GiB, 0), 256 * GiB);
    assert_int_equal(GUEST_RAM_LOW_MAX, 0xE0000000ull);
    /* memory_below_4g: less below, the rest at 4 GiB; never more than the PC allows. */
    assert_int_equal(guest_ram_low(128 * MiB, 64 * MiB), 64 * MiB);
    assert_int_equal(guest_ram_high(128 * MiB, 64 * MiB), 64 * MiB);
    assert_int_equal(guest_ram_low(32 * MiB, 64 * MiB), 32 * MiB);
    assert_int_equal(guest_ram_high(32 * MiB, 64 * MiB), 0);
    assert_int_equal(guest_ram_low(8 * GiB, 4 * GiB), 3584 * MiB);
}

static void test_spans(void **state)
{
    (void)state;
    assert_ptr_equal(dev_ram_span(&ram, 0, 1), low_block);
    assert_ptr_equal(dev_ram_span(&ram, 3584 * MiB - 8, 8), low_block + 3584 * MiB - 8);
    assert_ptr_equal(dev_ram_span(&ram, 4 * GiB, 4096), high_block);
    assert_ptr_equal(dev_ram_span(&ram, 6 * GiB - 1, 1), high_block + 2 * GiB - 1);
    /* The device area, both ends of the high part, a range across the hole. */
    assert_null(dev_ram_span(&ram, 3584 * MiB, 1));
    assert_null(dev_ram_span(&ram, 3584 * MiB - 4, 8));
    assert_null(dev_ram_span(&ram, 0xFEE00000ull, 4));
    assert_null(dev_ram_span(&ram, 4 * GiB - 1, 2));
    assert_null(dev_ram_span(&ram, 3 * GiB, 2 * GiB));
    assert_null(dev_ram_span(&ram, 6 * GiB, 1));
    assert_null(dev_ram_span(&ram, 6 * GiB - 4, 8));
    /* Lengths and addresses that wrap. */
    assert_null(dev_ram_span(&ram, 4 * GiB, UINT64_MAX));
    assert_null(dev_ram_span(&ram, UINT64_MAX, 2));
    assert_null(dev_ram_span(&ram, 16, UINT64_MAX - 8));
    assert_true(dev_ram_holds(&ram, 4 * GiB));
    assert_false(dev_ram_holds(&ram, 4 * GiB - 4096));
}

static void test_without_high_ram(void **state)
{
    (void)state;
    const struct dev_ram small = {.hva = low_block, .size = 32 * MiB};
    assert_non_null(dev_ram_span(&small, 32 * MiB - 1, 1));
    assert_null(dev_ram_span(&small, 32 * MiB, 1));
    /* No high part: 4 GiB is not RAM, whatever the (NULL) pointer would give. */
    assert_null(dev_ram_span(&small, 4 * GiB, 1));
    assert_null(dev_ram_span(&small, 4 * GiB, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_without_high_ram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
