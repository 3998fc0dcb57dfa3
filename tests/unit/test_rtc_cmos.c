/* The CMOS RTC (vmm/dev/rtc_cmos.c) on a real bus with a simulated clock: the time of
 * day in BCD and binary, 12 and 24 hours, UIP's window before each update, SET and the
 * divider reset, register C and IRQ 8 for the update, periodic and alarm interrupts,
 * and the NVRAM bytes QEMU sets for a RAM size. */
/* SOURCES: vmm/dev/rtc_cmos.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/rtc_cmos.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

#define MS 1000000ull
#define SEC 1000000000ull

static struct vm_bus *bus;
static struct rtc_cmos rtc;

/* A Tuesday, two seconds before midnight. */
static const struct rtc_cmos_config cfg = {
    .time = {.year = 2026, .month = 12, .day = 1, .hour = 23, .minute = 59, .second = 58},
    .ram_below_4g = 3ull << 30,
    .ram_above_4g = 1ull << 30,
    .cpus = 4,
};

static void out8(uint16_t port, uint8_t v)
{
    uint64_t value = v;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, 1, true, &value)), BUS_DONE);
}

static uint8_t in8(uint16_t port)
{
    uint64_t value = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, 1, false, &value)), BUS_DONE);
    return (uint8_t)value;
}

static uint8_t cmos(uint8_t reg)
{
    out8(0x70, reg);
    return in8(0x71);
}

static void cmos_set(uint8_t reg, uint8_t v)
{
    out8(0x70, reg);
    out8(0x71, v);
}

static int attach_at(uint64_t ns, const struct rtc_cmos_config *c)
{
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    sim_reset();
    capture_reset();
    sim_ns = ns;
    return rtc_cmos_attach(&rtc, bus, &sim_clock, &sim_sink, c, "pc");
}

static int setup(void **state)
{
    (void)state;
    assert_int_equal(attach_at(0, &cfg), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_bcd_time_and_rollover(void **state)
{
    (void)state;
    assert_int_equal(cmos(0x0a), 0x26);
    assert_int_equal(cmos(0x0b), 0x02);
    assert_int_equal(cmos(0x0d), 0x80);
    assert_int_equal(cmos(0x00), 0x58);
    assert_int_equal(cmos(0x02), 0x59);
    assert_int_equal(cmos(0x04), 0x23);
    assert_int_equal(cmos(0x06), 3); /* Tuesday, Sunday being 1 */
    assert_int_equal(cmos(0x07), 0x01);
    assert_int_equal(cmos(0x08), 0x12);
    assert_int_equal(cmos(0x09), 0x26);
    assert_int_equal(cmos(0x32), 0x20);
    sim_ns = SEC - 1;
    assert_int_equal(cmos(0x00), 0x58);
    sim_ns = SEC;
    assert_int_equal(cmos(0x00), 0x59);
    sim_ns = 2 * SEC;
    assert_int_equal(cmos(0x00), 0x00);
    assert_int_equal(cmos(0x04), 0x00);
    assert_int_equal(cmos(0x07), 0x02);
    assert_int_equal(cmos(0x06), 4);
    /* 30 days and 10 s on: new year, new year digits. */
    sim_ns = 2 * SEC + (30ull * 86400 + 10) * SEC;
    assert_int_equal(cmos(0x09), 0x27);
    assert_int_equal(cmos(0x08), 0x01);
    assert_int_equal(cmos(0x07), 0x01);
    assert_int_equal(cmos(0x00), 0x10);
    assert_int_equal(cmos(0x06), 6); /* Friday */
}

static void test_binary_and_12_hour(void **state)
{
    (void)state;
    cmos_set(0x0b, 0x04); /* binary, 12-hour */
    assert_int_equal(cmos(0x04), 0x80 | 11);
    assert_int_equal(cmos(0x00), 58);
    assert_int_equal(cmos(0x09), 26);
    assert_int_equal(cmos(0x32), 20);
    sim_ns = 2 * SEC;
    assert_int_equal(cmos(0x04), 12); /* midnight is 12 AM */
    cmos_set(0x0b, 0x00);             /* BCD, 12-hour */
    assert_int_equal(cmos(0x04), 0x12);
    cmos_set(0x04, 0x81); /* 1 PM */
    cmos_set(0x0b, 0x02);
    assert_int_equal(cmos(0x04), 0x13);
}

static void test_uip_window(void **state)
{
    (void)state;
    /* Updates at each whole second after attach; UIP for 8 cycles of 32.768 kHz before. */
    sim_ns = 999755859;
    assert_int_equal(cmos(0x0a) & 0x80, 0);
    sim_ns = 999755860;
    assert_int_equal(cmos(0x0a) & 0x80, 0x80);
    assert_int_equal(cmos(0x00), 0x58); /* not updated yet */
    sim_ns = SEC;
    assert_int_equal(cmos(0x0a) & 0x80, 0);
    assert_int_equal(cmos(0x00), 0x59);
    /* Linux's read: wait for UIP to clear, then read. Took at most 244 us. */
    sim_ns = 5 * SEC - 100000;
    unsigned spins = 0;
    while (cmos(0x0a) & 0x80) {
        sim_ns += 1000;
        spins++;
    }
    assert_int_equal(spins, 100);
    assert_int_equal(cmos(0x00), 0x03);
    /* SET stops updates, and UIP with them. */
    sim_ns = 6 * SEC - 1000;
    cmos_set(0x0b, 0x82);
    assert_int_equal(cmos(0x0a) & 0x80, 0);
}

static void test_set_freezes_and_takes_new_time(void **state)
{
    (void)state;
    sim_ns = 300 * MS;
    cmos_set(0x0b, 0x82);
    cmos_set(0x07, 0x31); /* 31 February for a moment: legal while SET */
    cmos_set(0x08, 0x02);
    cmos_set(0x08, 0x03);
    cmos_set(0x09, 0x30);
    cmos_set(0x04, 0x10);
    cmos_set(0x02, 0x20);
    cmos_set(0x00, 0x30);
    sim_ns = 5700 * MS;
    assert_int_equal(cmos(0x00), 0x30);
    cmos_set(0x0b, 0x02);
    sim_ns = 5999 * MS;
    assert_int_equal(cmos(0x00), 0x30);
    sim_ns = 6000 * MS; /* the divider kept its phase: the update comes on the second */
    assert_int_equal(cmos(0x00), 0x31);
    assert_int_equal(cmos(0x07), 0x31);
    assert_int_equal(cmos(0x08), 0x03);
    assert_int_equal(cmos(0x09), 0x30);
    assert_int_equal(cmos(0x06), 1 + 0); /* 2030-03-31 is a Sunday */
    assert_int_equal(capture_count(), 0);
}

static void test_divider_reset(void **state)
{
    (void)state;
    sim_ns = 1200 * MS;
    cmos_set(0x0a, 0x70); /* Linux's set_time: divider held */
    cmos_set(0x02, 0x10);
    sim_ns = 9 * SEC + 100 * MS;
    assert_int_equal(cmos(0x00), 0x59);
    cmos_set(0x0a, 0x26);
    sim_ns = 9 * SEC + 599 * MS;
    assert_int_equal(cmos(0x00), 0x59);
    sim_ns = 9 * SEC + 600 * MS; /* 500 ms after release */
    assert_int_equal(cmos(0x00), 0x00);
    assert_int_equal(cmos(0x02), 0x11);
    sim_ns = 10 * SEC + 600 * MS;
    assert_int_equal(cmos(0x00), 0x01);
}

static void test_update_interrupt(void **state)
{
    (void)state;
    sim_ns = 100 * MS;
    assert_int_equal(rtc_cmos_deadline(&rtc), CLOCK_NEVER);
    cmos_set(0x0b, 0x12); /* UIE */
    assert_int_equal(rtc_cmos_deadline(&rtc), SEC);
    sim_ns = SEC;
    rtc_cmos_poll(&rtc);
    assert_true(sim_irq.level[8]);
    assert_int_equal(sim_irq.rises[8], 1);
    assert_int_equal(rtc_cmos_deadline(&rtc), CLOCK_NEVER); /* the line is still high */
    sim_ns = 3 * SEC;
    /* IRQF and UF, and the flags whose interrupts are off: PF (register A's 1024 Hz
     * runs regardless) and AF (the alarm registers, all zero, matched midnight). */
    assert_int_equal(cmos(0x0c), 0xf0);
    assert_false(sim_irq.level[8]);
    assert_int_equal(cmos(0x0c), 0x00);
    assert_int_equal(rtc_cmos_deadline(&rtc), 4 * SEC);
    /* Flags are set without their enable bits, but raise nothing. */
    cmos_set(0x0b, 0x02);
    sim_ns = 5 * SEC;
    rtc_cmos_poll(&rtc);
    assert_int_equal(sim_irq.rises[8], 1);
    assert_int_equal(cmos(0x0c), 0x50);
}

static void test_periodic_interrupt(void **state)
{
    (void)state;
    sim_ns = 100 * MS;
    cmos_set(0x0b, 0x42); /* PIE at register A's 1024 Hz */
    /* PF was already set by the ticks so far: the enable raises IRQ 8 at once. */
    assert_true(sim_irq.level[8]);
    assert_int_equal(cmos(0x0c), 0xc0);
    /* Ticks every 32 cycles of 32.768 kHz: 976562.5 ns. */
    uint64_t d = rtc_cmos_deadline(&rtc);
    assert_int_equal(d, 100 * MS + 585938); /* tick 103 at 100.5859375 ms */
    sim_ns = d - 1;
    rtc_cmos_poll(&rtc);
    assert_false(sim_irq.level[8]);
    sim_ns = d;
    rtc_cmos_poll(&rtc);
    assert_true(sim_irq.level[8]);
    assert_int_equal(cmos(0x0c), 0xc0);
    assert_int_equal(rtc_cmos_deadline(&rtc), 101562500); /* tick 104, exactly */
    /* Rate 15: 2 Hz. */
    cmos_set(0x0a, 0x2f);
    assert_int_equal(rtc_cmos_deadline(&rtc), 500 * MS);
    cmos_set(0x0a, 0x20); /* rate 0: off */
    assert_int_equal(rtc_cmos_deadline(&rtc), CLOCK_NEVER);
}

static void test_alarm(void **state)
{
    (void)state;
    cmos_set(0x01, 0x05);
    cmos_set(0x03, 0x00);
    cmos_set(0x05, 0x00);
    cmos_set(0x0b, 0x22); /* AIE */
    assert_int_equal(rtc_cmos_deadline(&rtc), 7 * SEC); /* 23:59:58 -> 00:00:05 */
    sim_ns = 7 * SEC;
    rtc_cmos_poll(&rtc);
    assert_true(sim_irq.level[8]);
    assert_int_equal(cmos(0x0c), 0xf0); /* IRQF, AF, UF, and PF (1024 Hz, not enabled) */
    /* Don't-care hours and minutes: every minute at :30. */
    cmos_set(0x01, 0x30);
    cmos_set(0x03, 0xff);
    cmos_set(0x05, 0xc0);
    assert_int_equal(rtc_cmos_deadline(&rtc), 32 * SEC);
    sim_ns = 33 * SEC;
    assert_int_equal(cmos(0x0c), 0xf0);
    assert_int_equal(rtc_cmos_deadline(&rtc), 92 * SEC);
    /* Unpolled for two days: the alarm still happened. */
    cmos_set(0x0b, 0x02);
    cmos_set(0x01, 0x00);
    cmos_set(0x03, 0x00);
    cmos_set(0x05, 0x12);
    sim_ns = 3 * 86400 * SEC;
    assert_int_equal(cmos(0x0c) & 0x20, 0x20);
    /* An alarm that cannot match (minute 0x61) never fires. */
    cmos_set(0x03, 0x61);
    cmos_set(0x0b, 0x22);
    assert_int_equal(rtc_cmos_deadline(&rtc), CLOCK_NEVER);
    sim_ns = 5 * 86400 * SEC;
    assert_int_equal(cmos(0x0c) & 0x20, 0);
}

static void test_nvram_memory_bytes(void **state)
{
    (void)state;
    assert_int_equal(cmos(0x15) | cmos(0x16) << 8, 640);
    assert_int_equal(cmos(0x17) | cmos(0x18) << 8, 0xffff);
    assert_int_equal(cmos(0x30) | cmos(0x31) << 8, 0xffff);
    assert_int_equal(cmos(0x34) | cmos(0x35) << 8, ((3ull << 30) - (16 << 20)) >> 16);
    assert_int_equal(cmos(0x5b) | cmos(0x5c) << 8 | cmos(0x5d) << 16, (1ull << 30) >> 16);
    assert_int_equal(cmos(0x5f), 3);
    free(bus);
    struct rtc_cmos_config small = cfg;
    small.ram_below_4g = 8 << 20;
    small.ram_above_4g = 0;
    small.cpus = 1;
    assert_int_equal(attach_at(0, &small), 0);
    assert_int_equal(cmos(0x17) | cmos(0x18) << 8, 7 * 1024);
    assert_int_equal(cmos(0x34) | cmos(0x35) << 8, 0);
    assert_int_equal(cmos(0x5b), 0);
}

static void test_nvram_ram_and_index(void **state)
{
    (void)state;
    cmos_set(0x40, 0xa5);
    cmos_set(0x7f, 0x5a);
    assert_int_equal(cmos(0x40), 0xa5);
    assert_int_equal(cmos(0x7f), 0x5a);
    out8(0x70, 0x80 | 0x40); /* NMI masked, same register */
    assert_true(rtc_cmos_nmi_masked(&rtc));
    assert_int_equal(in8(0x71), 0xa5);
    out8(0x70, 0x40);
    assert_false(rtc_cmos_nmi_masked(&rtc));
    assert_int_equal(in8(0x70), 0xff);
    assert_int_equal(capture_count(), 0);
}

static void test_weekday_written(void **state)
{
    (void)state;
    cmos_set(0x06, 0x05);
    assert_int_equal(cmos(0x06), 5);
    sim_ns = 2 * SEC; /* midnight: it advances with the date */
    assert_int_equal(cmos(0x06), 6);
}

static void test_bad_writes_logged_once(void **state)
{
    (void)state;
    cmos_set(0x00, 0x5a); /* not BCD */
    cmos_set(0x04, 0x25);
    assert_int_equal(cmos(0x00), 0x58);
    assert_int_equal(cmos(0x04), 0x23);
    assert_logged("RTC: register 0x00 written 0x5a, not a valid BCD value; dropped");
    cmos_set(0x0c, 0xff);
    cmos_set(0x0d, 0x00);
    assert_logged("register C is read-only");
    assert_int_equal(cmos(0x0d), 0x80);
    cmos_set(0x0a, 0x46); /* a divider test mode */
    assert_logged("divider test mode");
    assert_int_equal(capture_count(), 3);
    free(bus);
    struct rtc_cmos_config bad = cfg;
    bad.time.month = 13;
    assert_int_equal(attach_at(0, &bad), -BUS_EINVAL);
    assert_logged("RTC: bad configuration");
}

static void test_attach_mid_second(void **state)
{
    (void)state;
    free(bus);
    assert_int_equal(attach_at(2500 * MS, &cfg), 0);
    sim_ns = 3499 * MS;
    assert_int_equal(cmos(0x00), 0x58);
    sim_ns = 3500 * MS; /* one second after attach */
    assert_int_equal(cmos(0x00), 0x59);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bcd_time_and_rollover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_and_12_hour, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uip_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_freezes_and_takes_new_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_divider_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_periodic_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nvram_memory_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nvram_ram_and_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weekday_written, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_writes_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attach_mid_second, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
