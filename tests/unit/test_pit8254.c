/* The 8254 PIT and port 0x61 (vmm/dev/pit8254.c) on a real bus with a simulated
 * clock: counter values at given ticks in each mode, OUT, the gate, latches and
 * read-back, BCD, the calibration loops kernels run on channel 2, and IRQ 0's
 * deadline/poll with coalescing. */
/* SOURCES: vmm/dev/pit8254.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/pit8254.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

static struct vm_bus *bus;
static struct pit8254 pit;

/* The first nanosecond of PIT tick k, computed independently of the model. */
static uint64_t tick_to_ns(uint64_t k)
{
    return (uint64_t)(((unsigned __int128)k * 1000000000u + PIT8254_HZ - 1) / PIT8254_HZ);
}

static void at_tick(uint64_t k)
{
    sim_ns = tick_to_ns(k);
}

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

/* Control word for channel ch, LSB then MSB, mode m; then the count. */
static void program(unsigned ch, unsigned mode, uint16_t count)
{
    out8(0x43, (uint8_t)(ch << 6 | 0x30 | mode << 1));
    out8((uint16_t)(0x40 + ch), (uint8_t)count);
    out8((uint16_t)(0x40 + ch), (uint8_t)(count >> 8));
}

static uint16_t latched(unsigned ch)
{
    out8(0x43, (uint8_t)(ch << 6)); /* counter latch */
    uint16_t lo = in8((uint16_t)(0x40 + ch));
    return (uint16_t)(lo | in8((uint16_t)(0x40 + ch)) << 8);
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    sim_reset();
    capture_reset();
    assert_int_equal(pit8254_attach(&pit, bus, &sim_clock, &sim_sink, "pc"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_mode2_counter_values(void **state)
{
    (void)state;
    at_tick(1000);
    program(0, 2, 1193);
    assert_int_equal(latched(0), 1193);
    at_tick(1001);
    assert_int_equal(latched(0), 1192);
    at_tick(1500);
    assert_int_equal(latched(0), 693);
    at_tick(1000 + 1192);
    assert_int_equal(latched(0), 1);
    assert_false(pit8254_out(&pit, 0)); /* OUT low while the count is 1 */
    at_tick(1000 + 1193);
    assert_int_equal(latched(0), 1193); /* reloaded */
    assert_true(pit8254_out(&pit, 0));
    at_tick(1000 + 10 * 1193 + 7);
    assert_int_equal(latched(0), 1186);
}

static void test_mode2_irq_deadline_and_poll(void **state)
{
    (void)state;
    assert_int_equal(pit8254_deadline(&pit), CLOCK_NEVER);
    program(0, 2, 11932); /* 100 Hz */
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(11932));
    sim_ns = tick_to_ns(11932) - 1;
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.count, 0);
    sim_ns = tick_to_ns(11932);
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 1);
    assert_false(sim_irq.level[0]); /* an edge: raised then lowered */
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(2 * 11932));
    /* Ten periods pass unpolled: one delivery, nine coalesced. */
    at_tick(12 * 11932 + 5);
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 2);
    assert_int_equal(pit.irq_delivered, 2);
    assert_int_equal(pit.irq_coalesced, 10);
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 2);
}

static void test_shortest_period_is_bounded(void **state)
{
    (void)state;
    program(0, 2, 2); /* the shortest legal period: ~596 kHz */
    uint64_t polls = 0, end = 100 * 1000 * 1000; /* 100 ms */
    while (true) {
        uint64_t d = pit8254_deadline(&pit);
        assert_true(d != CLOCK_NEVER);
        if (d > end)
            break;
        assert_true(d >= sim_ns);
        sim_ns = d;
        pit8254_poll(&pit);
        polls++;
    }
    /* One delivery per minimum gap, the other edges counted, none lost. */
    assert_true(polls <= end / PIT8254_MIN_IRQ_GAP_NS + 1);
    assert_int_equal(pit.irq_delivered, end / PIT8254_MIN_IRQ_GAP_NS);
    uint64_t edges = (sim_ns * PIT8254_HZ / 1000000000u) / 2;
    assert_int_equal(pit.irq_delivered + pit.irq_coalesced, edges);
}

static void test_mode0_output_and_wrap(void **state)
{
    (void)state;
    at_tick(50);
    out8(0x43, 0x30); /* channel 0, mode 0 */
    assert_false(pit8254_out(&pit, 0));
    out8(0x40, 100);
    out8(0x40, 0);
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(150));
    at_tick(149);
    assert_false(pit8254_out(&pit, 0));
    assert_int_equal(latched(0), 1);
    at_tick(150);
    assert_true(pit8254_out(&pit, 0));
    assert_int_equal(latched(0), 0);
    at_tick(152);
    assert_int_equal(latched(0), 0xfffe); /* counts on, OUT stays high */
    assert_true(pit8254_out(&pit, 0));
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 1);
    assert_int_equal(pit8254_deadline(&pit), CLOCK_NEVER); /* one-shot */
    at_tick(150 + 0x10000 * 3);
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 1);
    /* The first byte of a new count sets OUT low and stops the count. */
    out8(0x40, 10);
    assert_false(pit8254_out(&pit, 0));
    out8(0x40, 0);
    at_tick(150 + 0x10000 * 3 + 10);
    assert_true(pit8254_out(&pit, 0));
}

/* Linux's pit_calibrate_tsc(): gate on, speaker off, channel 2 mode 0, then spin on
 * port 0x61 bit 5 until OUT2 goes high. */
static void test_port61_calibration_loop(void **state)
{
    (void)state;
    sim_ns = 1000;
    out8(0x61, (uint8_t)((in8(0x61) & ~0x02) | 0x01));
    out8(0x43, 0xb0);
    out8(0x42, 11932 & 0xff);
    out8(0x42, 11932 >> 8);
    uint64_t start = sim_ns, reads = 0;
    while (!(in8(0x61) & 0x20)) {
        sim_ns += 997; /* each IN takes about a microsecond */
        reads++;
        assert_true(reads < 100000);
    }
    /* OUT2 rose after 11932 ticks (10 ms), within one step of the loop. */
    uint64_t took = sim_ns - start;
    assert_true(took >= 10000000u - 1000 && took < 10000000u + 1000);
    assert_int_equal(in8(0x61) & 0x03, 0x01);
    /* Gate off: the count stops; on again: it continues (mode 0). */
    out8(0x61, 0x00);
    uint16_t frozen = latched(2);
    sim_ns += 5000000;
    assert_int_equal(latched(2), frozen);
    assert_int_equal(in8(0x61) & 0x21, 0x20);
}

/* Linux's quick_pit_calibrate(): mode 0 from 0xffff, reading LSB and MSB unlatched. */
static void test_quick_calibrate_msb(void **state)
{
    (void)state;
    out8(0x61, 0x01);
    out8(0x43, 0xb0);
    out8(0x42, 0xff);
    out8(0x42, 0xff);
    for (unsigned k = 0; k < 200; k++) {
        at_tick(256 * k + 1);
        in8(0x42);
        assert_int_equal(in8(0x42), 0xff - k);
    }
}

static void test_mode3_square_wave(void **state)
{
    (void)state;
    program(0, 3, 10);
    static const uint16_t even[] = {10, 8, 6, 4, 2, 10, 8, 6, 4, 2, 10};
    static const bool even_out[] = {1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1};
    for (unsigned k = 0; k < ARRAY_SIZE(even); k++) {
        at_tick(k);
        assert_int_equal(latched(0), even[k]);
        assert_int_equal(pit8254_out(&pit, 0), even_out[k]);
    }
    at_tick(100);
    program(0, 3, 5); /* odd: one tick longer high than low */
    static const uint16_t odd[] = {4, 2, 0, 4, 2, 4};
    static const bool odd_out[] = {1, 1, 1, 0, 0, 1};
    for (unsigned k = 0; k < ARRAY_SIZE(odd); k++) {
        at_tick(100 + k);
        assert_int_equal(latched(0), odd[k]);
        assert_int_equal(pit8254_out(&pit, 0), odd_out[k]);
    }
    /* IRQ 0 rises at the start of each period: the edge at 105 is due now. */
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(105));
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 1);
    at_tick(200);
    pit8254_poll(&pit);
    /* The next edge (205) is sooner than the minimum gap allows. */
    assert_int_equal(pit8254_deadline(&pit), sim_ns + PIT8254_MIN_IRQ_GAP_NS);
}

static void test_mode4_strobe(void **state)
{
    (void)state;
    program(0, 4, 20);
    at_tick(19);
    assert_true(pit8254_out(&pit, 0));
    at_tick(20);
    assert_false(pit8254_out(&pit, 0));
    assert_int_equal(latched(0), 0);
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(21));
    at_tick(21);
    assert_true(pit8254_out(&pit, 0));
    pit8254_poll(&pit);
    assert_int_equal(sim_irq.rises[0], 1);
    at_tick(20 + 0x10000);
    assert_true(pit8254_out(&pit, 0)); /* no second strobe after the wrap */
}

static void test_gate_triggered_modes(void **state)
{
    (void)state;
    program(2, 1, 100);
    at_tick(10);
    assert_true(in8(0x61) & 0x20);
    out8(0x61, 0x01); /* trigger */
    assert_false(in8(0x61) & 0x20);
    at_tick(109);
    assert_false(in8(0x61) & 0x20);
    assert_int_equal(latched(2), 1);
    at_tick(110);
    assert_true(in8(0x61) & 0x20);
    /* Retrigger with a new count written meanwhile: it loads at the trigger. */
    out8(0x42, 50);
    out8(0x42, 0);
    out8(0x61, 0x00);
    at_tick(200);
    out8(0x61, 0x01);
    at_tick(249);
    assert_false(in8(0x61) & 0x20);
    at_tick(250);
    assert_true(in8(0x61) & 0x20);

    program(2, 5, 30);
    out8(0x61, 0x00);
    at_tick(300);
    out8(0x61, 0x01);
    at_tick(329);
    assert_true(in8(0x61) & 0x20);
    at_tick(330);
    assert_false(in8(0x61) & 0x20); /* one tick low at the terminal count */
    at_tick(331);
    assert_true(in8(0x61) & 0x20);
}

static void test_mode2_gate_restarts(void **state)
{
    (void)state;
    program(2, 2, 100); /* gate low: waits */
    at_tick(500);
    assert_int_equal(latched(2), 100);
    out8(0x61, 0x01);
    at_tick(530);
    assert_int_equal(latched(2), 70);
    out8(0x61, 0x00);
    at_tick(600);
    assert_int_equal(latched(2), 70);
    assert_true(in8(0x61) & 0x20); /* gate low forces OUT high */
    out8(0x61, 0x01); /* restarts from the full count */
    at_tick(610);
    assert_int_equal(latched(2), 90);
}

static void test_mode2_new_count_waits_for_period_end(void **state)
{
    (void)state;
    program(0, 2, 1000);
    at_tick(2500); /* half-way through the third period */
    out8(0x40, 400 & 0xff);
    out8(0x40, 400 >> 8);
    assert_int_equal(latched(0), 500);
    out8(0x43, 0xe2); /* read-back, status of channel 0 */
    assert_int_equal(in8(0x40) & 0x40, 0x40); /* NULL COUNT: the new count is not loaded yet */
    at_tick(2999);
    assert_int_equal(latched(0), 1);
    at_tick(3000);
    assert_int_equal(latched(0), 400);
    at_tick(3399);
    out8(0x43, 0xe2);
    assert_int_equal(in8(0x40) & 0x40, 0);
    assert_int_equal(latched(0), 1);
    at_tick(3400);
    assert_int_equal(latched(0), 400);
    /* Edges: 1000, 2000, 3000 under the old count, then 3400. */
    pit8254_poll(&pit);
    assert_int_equal(pit.irq_delivered + pit.irq_coalesced, 4);
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(3800));
}

static void test_latch_and_readback(void **state)
{
    (void)state;
    at_tick(7);
    program(0, 2, 1000);
    /* Same tick: the count has not reached the counter yet. */
    out8(0x43, 0xe2);
    assert_int_equal(in8(0x40), 0x80 | 0x40 | 0x30 | 0x04);
    at_tick(8);
    out8(0x43, 0xc2); /* status and count */
    assert_int_equal(in8(0x40), 0x80 | 0x30 | 0x04);
    assert_int_equal(in8(0x40), (999) & 0xff);
    assert_int_equal(in8(0x40), 999 >> 8);
    /* A latched count holds while time passes; a second latch is ignored. */
    at_tick(100);
    out8(0x43, 0x00);
    at_tick(200);
    out8(0x43, 0x00);
    assert_int_equal(in8(0x40), (1000 - 93) & 0xff);
    assert_int_equal(in8(0x40), (1000 - 93) >> 8);
    /* Read-back of channels 0 and 2 at once (2 never programmed: OUT high, no count). */
    out8(0x43, 0xca);
    assert_int_equal(in8(0x42), 0xc0);
    assert_int_equal(in8(0x40), 0x80 | 0x30 | 0x04);
    assert_int_equal(in8(0x40), (1000 - 193) & 0xff);
}

static void test_lsb_msb_only(void **state)
{
    (void)state;
    out8(0x43, 0x14); /* channel 0, LSB only, mode 2 */
    out8(0x40, 200);
    at_tick(50);
    assert_int_equal(in8(0x40), 150);
    assert_int_equal(in8(0x40), 150);
    out8(0x43, 0x24); /* MSB only */
    out8(0x40, 0x02); /* 0x200 */
    at_tick(50 + 0x100);
    assert_int_equal(in8(0x40), 0x01);
}

static void test_bcd(void **state)
{
    (void)state;
    out8(0x43, 0x35); /* mode 2, BCD */
    out8(0x40, 0x00);
    out8(0x40, 0x10); /* 1000 */
    at_tick(1);
    assert_int_equal(latched(0), 0x0999);
    at_tick(1000);
    assert_int_equal(latched(0), 0x1000);
    pit8254_poll(&pit);
    assert_int_equal(pit8254_deadline(&pit), tick_to_ns(2000));
    out8(0x43, 0x31); /* mode 0, BCD, count 0 = 10000 */
    out8(0x40, 0);
    out8(0x40, 0);
    at_tick(1000 + 10001);
    assert_int_equal(latched(0), 0x9999); /* wrapped modulo 10000 */
    out8(0x43, 0x31);
    out8(0x40, 0x0a);
    out8(0x40, 0x00);
    assert_logged("BCD count 0x000a");
}

static void test_guest_mistakes_logged_once(void **state)
{
    (void)state;
    out8(0x40, 5);
    assert_logged("channel 0 written before any control word");
    assert_int_equal(in8(0x43), 0xff);
    assert_int_equal(in8(0x43), 0xff);
    assert_logged("control port 0x43 read");
    program(0, 2, 1);
    program(0, 3, 1);
    assert_logged("count 1 is illegal in mode 2; 2 used");
    out8(0x43, 0xc0);
    assert_logged("selects no counter");
    assert_int_equal(capture_count(), 4);
    at_tick(1);
    assert_int_equal(latched(0), 2); /* mode 3 count 2: each half-period reads 2 */
}

static void test_refresh_toggle(void **state)
{
    (void)state;
    sim_ns = 0;
    assert_int_equal(in8(0x61) & 0x10, 0);
    sim_ns = PIT8254_REFRESH_NS;
    assert_int_equal(in8(0x61) & 0x10, 0x10);
    sim_ns = 2 * PIT8254_REFRESH_NS + 3;
    assert_int_equal(in8(0x61) & 0x10, 0);
    out8(0x61, 0xff);
    assert_int_equal(in8(0x61) & 0xcf, 0x0f); /* bits 6, 7 read 0; 0-3 as written */
    assert_int_equal(capture_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mode2_counter_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_irq_deadline_and_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shortest_period_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode0_output_and_wrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port61_calibration_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quick_calibrate_msb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode3_square_wave, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode4_strobe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gate_triggered_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_gate_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode2_new_count_waits_for_period_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_latch_and_readback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lsb_msb_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bcd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guest_mistakes_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_toggle, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
