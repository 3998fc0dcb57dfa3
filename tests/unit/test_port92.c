/* System control port A (vmm/dev/port92.c): the A20 bit reads back, bit 0 rising resets
 * the VM, clearing A20 is logged once. */
/* SOURCES: vmm/dev/port92.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/port92.h"
#include "tests/unit/console_capture.h"

static struct vm_bus *bus;
static struct port92 p92;

static struct bus_result write92(uint8_t v)
{
    uint64_t x = v;
    return vm_bus_pio(bus, PORT92_PORT, 1, true, &x);
}

static uint8_t read92(void)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, PORT92_PORT, 1, false, &v)), BUS_DONE);
    return (uint8_t)v;
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    capture_reset();
    assert_int_equal(port92_attach(&p92, bus, "pc"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_a20_reads_back(void **state)
{
    (void)state;
    assert_int_equal(read92(), PORT92_A20);
    /* The usual fast-A20 sequence: read, set bit 1, clear bit 0, write. */
    assert_int_equal(bus_action(write92((read92() | PORT92_A20) & ~PORT92_RESET)), BUS_DONE);
    assert_int_equal(read92(), PORT92_A20);
    assert_int_equal(capture_count(), 0);
    /* Other bits are not stored. */
    assert_int_equal(bus_action(write92(0xf2)), BUS_DONE);
    assert_int_equal(read92(), PORT92_A20);
    /* A20 off: stored, logged once. */
    assert_int_equal(bus_action(write92(0)), BUS_DONE);
    assert_int_equal(bus_action(write92(0)), BUS_DONE);
    assert_int_equal(read92(), 0);
    assert_int_equal(capture_count(), 1);
    assert_logged("VM pc: port 0x92: A20 gate cleared");
}

static void test_fast_reset_on_rising_bit0(void **state)
{
    (void)state;
    struct bus_result r = write92(PORT92_A20 | PORT92_RESET);
    assert_int_equal(bus_action(r), BUS_RESET);
    assert_string_equal(r.why, "port 0x92 fast reset");
    /* After the reset the bit reads clear, so the next write of 1 resets again. */
    assert_int_equal(read92(), PORT92_A20);
    assert_int_equal(bus_action(write92(PORT92_A20 | PORT92_RESET)), BUS_RESET);
    port92_reset(&p92);
    assert_int_equal(read92(), PORT92_A20);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_a20_reads_back),
        T(test_fast_reset_on_rising_bit0),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
