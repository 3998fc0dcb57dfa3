/* ACPI PM timer, PM1 event/control, SCI and the reset control register
 * (vmm/dev/acpi_pm.c) at QEMU's 0x600 block on a real bus with a simulated clock. */
/* SOURCES: vmm/dev/acpi_pm.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/acpi_pm.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

#define SEC 1000000000ull

static struct vm_bus *bus;
static struct acpi_pm pm;

static struct bus_result io(uint16_t port, unsigned width, bool write, uint64_t *v)
{
    return vm_bus_pio(bus, port, width, write, v);
}

static void out(uint16_t port, unsigned width, uint64_t v)
{
    assert_int_equal(bus_action(io(port, width, true, &v)), BUS_DONE);
}

static uint64_t in(uint16_t port, unsigned width)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(io(port, width, false, &v)), BUS_DONE);
    return v & ((1ull << (8 * width)) - 1);
}

/* The first ns at which the timer has counted `ticks`, computed here independently. */
static uint64_t tick_ns(uint64_t ticks)
{
    return (uint64_t)(((unsigned __int128)ticks * SEC + ACPI_PM_TMR_HZ - 1) / ACPI_PM_TMR_HZ);
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    sim_reset();
    capture_reset();
    assert_int_equal(acpi_pm_attach(&pm, bus, &sim_clock, &sim_sink, ACPI_PM_BASE, "pc"), 0);
    assert_int_equal(acpi_pm_attach_rcr(&pm, bus), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_pm_timer_values(void **state)
{
    (void)state;
    assert_int_equal(in(0x608, 4), 0);
    sim_ns = SEC;
    assert_int_equal(in(0x608, 4), 3579545);
    sim_ns = 10 * SEC; /* 35795450 ticks: wrapped twice in 24 bits */
    assert_int_equal(in(0x608, 4), 35795450 - 2 * (1 << 24));
    assert_int_equal(in(0x60a, 2), (35795450 - 2 * (1 << 24)) >> 16);
    sim_ns = tick_ns((1 << 24) - 1);
    assert_int_equal(in(0x608, 4), 0xffffff);
    sim_ns = tick_ns(1 << 24);
    assert_int_equal(in(0x608, 4), 0);
    /* 279.4 ns a tick: a kernel's calibration over 50 ms sees 178977 ticks. */
    sim_ns = 100 * SEC;
    uint32_t a = (uint32_t)in(0x608, 4);
    sim_ns += 50000000;
    uint32_t b = (uint32_t)in(0x608, 4);
    assert_int_equal((b - a) & 0xffffff, 178977);
}

static void test_s5_powers_off(void **state)
{
    (void)state;
    assert_int_equal(in(0x604, 2), ACPI_PM1_SCI_EN);
    uint64_t v = 0x2000; /* outw(0x604, 0x2000): what QEMU-era test kernels do */
    struct bus_result r = io(0x604, 2, true, &v);
    assert_int_equal(bus_action(r), BUS_POWER_OFF);
    assert_string_equal(r.why, "ACPI sleep state S5 (soft off)");
    /* Byte-wide, as ACPICA may write the high byte on its own. */
    v = 0x20;
    assert_int_equal(bus_action(io(0x605, 1, true, &v)), BUS_POWER_OFF);
    assert_int_equal(capture_count(), 0);
}

static void test_other_sleep_types_refused(void **state)
{
    (void)state;
    uint64_t v = ACPI_PM1_SLP_EN | 5 << ACPI_PM1_SLP_TYP_SHIFT | ACPI_PM1_SCI_EN;
    assert_int_equal(bus_action(io(0x604, 2, true, &v)), BUS_DONE);
    assert_logged("ACPI PM: sleep type 5 refused");
    v = ACPI_PM1_SLP_EN | 1 << ACPI_PM1_SLP_TYP_SHIFT | ACPI_PM1_SCI_EN;
    assert_int_equal(bus_action(io(0x604, 2, true, &v)), BUS_DONE);
    assert_int_equal(capture_count(), 1);
    /* SLP_EN reads 0, SLP_TYP what was written. */
    assert_int_equal(in(0x604, 2), (1 << ACPI_PM1_SLP_TYP_SHIFT) | ACPI_PM1_SCI_EN);
}

static void test_timer_status_raises_sci(void **state)
{
    (void)state;
    assert_int_equal(acpi_pm_deadline(&pm), CLOCK_NEVER);
    out(0x602, 2, ACPI_PM1_TMR); /* TMR_EN */
    assert_int_equal(in(0x602, 2), ACPI_PM1_TMR);
    uint64_t d = acpi_pm_deadline(&pm);
    assert_int_equal(d, tick_ns(1 << 23)); /* bit 23 first changes 2.34 s in */
    sim_ns = d - 1;
    acpi_pm_poll(&pm);
    assert_false(sim_irq.level[ACPI_PM_SCI_IRQ]);
    sim_ns = d;
    acpi_pm_poll(&pm);
    assert_true(sim_irq.level[ACPI_PM_SCI_IRQ]);
    assert_int_equal(in(0x600, 2), ACPI_PM1_TMR);
    assert_int_equal(in(0x600, 4), ACPI_PM1_TMR | ACPI_PM1_TMR << 16);
    assert_int_equal(acpi_pm_deadline(&pm), CLOCK_NEVER); /* pending until cleared */
    out(0x600, 1, 0x01);                                   /* write 1 to clear, byte-wide */
    assert_false(sim_irq.level[ACPI_PM_SCI_IRQ]);
    assert_int_equal(in(0x600, 2), 0);
    assert_int_equal(acpi_pm_deadline(&pm), tick_ns(1 << 24));
    /* Several changes unpolled: one status bit. */
    sim_ns = tick_ns(5u << 23);
    assert_int_equal(in(0x600, 2), ACPI_PM1_TMR);
    out(0x600, 2, 0xffff);
    assert_int_equal(in(0x600, 2), 0);
}

static void test_power_button_and_sci_en(void **state)
{
    (void)state;
    acpi_pm_power_button(&pm);
    assert_false(sim_irq.level[ACPI_PM_SCI_IRQ]); /* not enabled */
    assert_int_equal(in(0x600, 2), ACPI_PM1_PWRBTN);
    out(0x602, 2, ACPI_PM1_PWRBTN);
    assert_true(sim_irq.level[ACPI_PM_SCI_IRQ]);
    out(0x604, 2, 0); /* SCI_EN off: no SCI */
    assert_false(sim_irq.level[ACPI_PM_SCI_IRQ]);
    out(0x604, 2, ACPI_PM1_SCI_EN);
    assert_true(sim_irq.level[ACPI_PM_SCI_IRQ]);
    out(0x600, 2, ACPI_PM1_PWRBTN);
    assert_false(sim_irq.level[ACPI_PM_SCI_IRQ]);
}

static void test_reset_control(void **state)
{
    (void)state;
    uint64_t v = 0x02; /* SYS_RST alone: no reset yet */
    assert_int_equal(bus_action(io(0xcf9, 1, true, &v)), BUS_DONE);
    assert_int_equal(in(0xcf9, 1), 0x02);
    v = ACPI_PM_RESET_VALUE;
    struct bus_result r = io(0xcf9, 1, true, &v);
    assert_int_equal(bus_action(r), BUS_RESET);
    assert_string_equal(r.why, "reset control register (port 0xCF9)");
    v = 0x04; /* a soft reset is a reset too */
    assert_int_equal(bus_action(io(0xcf9, 1, true, &v)), BUS_RESET);
}

static void test_bad_writes_logged_once(void **state)
{
    (void)state;
    out(0x608, 4, 0x1234);
    out(0x608, 4, 0x1234);
    assert_logged("PM timer written (0x1234); it is read-only");
    out(0x602, 2, 0xffff);
    assert_int_equal(in(0x602, 2), ACPI_PM1_TMR | ACPI_PM1_GBL | ACPI_PM1_PWRBTN | ACPI_PM1_SLPBTN | ACPI_PM1_RTC);
    assert_logged("PM1_EN write sets reserved bits 0x");
    out(0x604, 2, 0x4001);
    assert_int_equal(in(0x604, 2), ACPI_PM1_SCI_EN);
    assert_int_equal(capture_count(), 2);
    /* 0x606-0x607 belong to nobody: the bus's unclaimed-port policy. */
    assert_int_equal(in(0x606, 2), 0xffff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pm_timer_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_s5_powers_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_sleep_types_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_status_raises_sci, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_button_and_sci_en, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reset_control, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_writes_logged_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
