/* The 8042 keyboard controller (vmm/dev/i8042.c) on a real bus: Linux's i8042 probe
 * sequence, the command byte and its interrupt lines, the AUX loop-back, the output
 * port, and the reset commands that must reach the VM as BUS_RESET. */
/* SOURCES: vmm/dev/i8042.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/i8042.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

static struct vm_bus *bus;
static struct i8042 kbc;

static struct bus_result io(uint16_t port, bool write, uint64_t *v)
{
    return vm_bus_pio(bus, port, 1, write, v);
}

static void out(uint16_t port, uint8_t v)
{
    uint64_t x = v;
    assert_int_equal(bus_action(io(port, true, &x)), BUS_DONE);
}

static uint8_t in(uint16_t port)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(io(port, false, &v)), BUS_DONE);
    return (uint8_t)v;
}

/* What Linux's i8042_command does for a command with a reply: write it, wait for OBF,
 * read the byte. The controller answers at once, so one status read must see OBF. */
static uint8_t command_reply(uint8_t cmd)
{
    out(I8042_CMD_PORT, cmd);
    uint8_t st = in(I8042_CMD_PORT);
    assert_true(st & I8042_STR_OBF);
    assert_false(st & I8042_STR_IBF);
    return in(I8042_DATA_PORT);
}

static void command_data(uint8_t cmd, uint8_t data)
{
    out(I8042_CMD_PORT, cmd);
    assert_false(in(I8042_CMD_PORT) & I8042_STR_IBF);
    out(I8042_DATA_PORT, data);
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    sim_reset();
    capture_reset();
    assert_int_equal(i8042_attach(&kbc, bus, &sim_sink, "pc"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_linux_probe(void **state)
{
    (void)state;
    /* i8042_flush: nothing buffered at power-on. */
    uint8_t st = in(I8042_CMD_PORT);
    assert_false(st & I8042_STR_OBF);
    assert_true(st & I8042_STR_UNLOCKED);
    assert_true(st & I8042_STR_SYS);
    /* Self-test, then the keyboard and AUX interface tests. */
    assert_int_equal(command_reply(0xaa), 0x55);
    assert_false(in(I8042_CMD_PORT) & I8042_STR_OBF); /* the read emptied the buffer */
    assert_int_equal(command_reply(0xab), 0x00);
    /* The command byte as firmware leaves it, then written back with interrupts off. */
    uint8_t ctr = command_reply(0x20);
    assert_int_equal(ctr, I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE);
    command_data(0x60, ctr & ~(I8042_CTR_KBDINT | I8042_CTR_AUXINT));
    assert_int_equal(command_reply(0x20), ctr & ~I8042_CTR_KBDINT);
    /* i8042_check_aux: the loop-back returns the byte as AUX data... */
    command_data(0xd3, 0x5a);
    st = in(I8042_CMD_PORT);
    assert_int_equal(st & (I8042_STR_OBF | I8042_STR_AUXDATA), I8042_STR_OBF | I8042_STR_AUXDATA);
    assert_int_equal(in(I8042_DATA_PORT), 0x5a);
    assert_false(in(I8042_CMD_PORT) & (I8042_STR_OBF | I8042_STR_AUXDATA));
    /* ...and the AUX disable/enable commands show in the command byte. */
    out(I8042_CMD_PORT, 0xa8);
    assert_false(command_reply(0x20) & I8042_CTR_AUXDIS);
    out(I8042_CMD_PORT, 0xa7);
    assert_true(command_reply(0x20) & I8042_CTR_AUXDIS);
    assert_int_equal(command_reply(0xa9), 0x00);
    /* Keyboard port disable/enable. */
    out(I8042_CMD_PORT, 0xad);
    assert_true(command_reply(0x20) & I8042_CTR_KBDDIS);
    out(I8042_CMD_PORT, 0xae);
    assert_false(command_reply(0x20) & I8042_CTR_KBDDIS);
    /* Nothing above is a reason to log. */
    assert_int_equal(capture_count(), 0);
}

static void test_status_cmd_bit_and_sys_flag(void **state)
{
    (void)state;
    out(I8042_CMD_PORT, 0xad);
    assert_true(in(I8042_CMD_PORT) & I8042_STR_CMD);
    out(I8042_DATA_PORT, 0xf4); /* for the absent keyboard: no answer */
    uint8_t st = in(I8042_CMD_PORT);
    assert_false(st & I8042_STR_CMD);
    assert_false(st & I8042_STR_OBF);
    /* The status SYS flag follows the command byte's. */
    command_data(0x60, 0x00);
    assert_false(in(I8042_CMD_PORT) & I8042_STR_SYS);
    command_data(0x60, I8042_CTR_SYS);
    assert_true(in(I8042_CMD_PORT) & I8042_STR_SYS);
}

static void test_interrupt_lines_follow_buffer(void **state)
{
    (void)state;
    /* Keyboard interrupt on (power-on): a reply raises IRQ 1 until it is read. */
    out(I8042_CMD_PORT, 0x20);
    assert_true(sim_irq.level[I8042_KBD_IRQ]);
    assert_int_equal(sim_irq.rises[I8042_KBD_IRQ], 1);
    in(I8042_DATA_PORT);
    assert_false(sim_irq.level[I8042_KBD_IRQ]);
    /* AUX data raises IRQ 12 only with AUXINT on. */
    command_data(0xd3, 0x11);
    assert_false(sim_irq.level[I8042_AUX_IRQ]);
    assert_false(sim_irq.level[I8042_KBD_IRQ]);
    command_data(0x60, I8042_CTR_AUXINT | I8042_CTR_SYS); /* enabling it with the byte still there */
    assert_true(sim_irq.level[I8042_AUX_IRQ]);
    assert_int_equal(in(I8042_DATA_PORT), 0x11);
    assert_false(sim_irq.level[I8042_AUX_IRQ]);
    /* Keyboard interrupt off: a reply raises nothing. */
    command_data(0xd2, 0x22);
    assert_false(sim_irq.level[I8042_KBD_IRQ]);
    assert_int_equal(in(I8042_DATA_PORT), 0x22);
    assert_int_equal(sim_irq.rises[I8042_KBD_IRQ], 1);
}

static void test_output_port(void **state)
{
    (void)state;
    assert_int_equal(command_reply(0xd0) & (I8042_OUT_RESET | I8042_OUT_A20), I8042_OUT_RESET | I8042_OUT_A20);
    command_data(0xd1, 0xdf); /* what DOS-era A20 code writes: reset high, A20 on */
    assert_int_equal(command_reply(0xd0), 0xdf);
    assert_int_equal(capture_count(), 0);
    /* A20 off is logged, once. */
    command_data(0xd1, 0xdd);
    command_data(0xd1, 0xdd);
    assert_int_equal(capture_count(), 1);
    assert_logged("A20");
    /* Bit 0 clear asserts the CPU's reset line. */
    out(I8042_CMD_PORT, 0xd1);
    uint64_t v = 0xde;
    struct bus_result r = io(I8042_DATA_PORT, true, &v);
    assert_int_equal(bus_action(r), BUS_RESET);
    assert_non_null(strstr(r.why, "i8042"));
}

static void test_pulse_reset(void **state)
{
    (void)state;
    uint64_t v = 0xfe;
    struct bus_result r = io(I8042_CMD_PORT, true, &v);
    assert_int_equal(bus_action(r), BUS_RESET);
    assert_string_equal(r.why, "i8042 reset (command 0xFE)");
    /* Pulses that leave the reset line alone do nothing; other even ones reset too. */
    v = 0xff;
    assert_int_equal(bus_action(io(I8042_CMD_PORT, true, &v)), BUS_DONE);
    v = 0xf1;
    assert_int_equal(bus_action(io(I8042_CMD_PORT, true, &v)), BUS_DONE);
    v = 0xf0;
    assert_int_equal(bus_action(io(I8042_CMD_PORT, true, &v)), BUS_RESET);
    assert_int_equal(capture_count(), 0);
}

static void test_unknown_command_logged_once(void **state)
{
    (void)state;
    out(I8042_CMD_PORT, 0xc0);
    out(I8042_CMD_PORT, 0xc1);
    assert_int_equal(capture_count(), 1);
    assert_logged("VM pc: i8042: command 0xc0 not emulated");
    assert_false(in(I8042_CMD_PORT) & I8042_STR_OBF);
    /* A command cancels a pending data byte: this byte is for the keyboard, not the CTR. */
    uint8_t ctr = command_reply(0x20);
    out(I8042_CMD_PORT, 0x60);
    out(I8042_CMD_PORT, 0xae);
    out(I8042_DATA_PORT, 0x00);
    assert_int_equal(command_reply(0x20), ctr);
}

static void test_reset_restores_power_on(void **state)
{
    (void)state;
    command_data(0x60, I8042_CTR_AUXINT);
    command_data(0xd3, 0x33); /* IRQ 12 high */
    assert_true(sim_irq.level[I8042_AUX_IRQ]);
    i8042_reset(&kbc);
    assert_false(sim_irq.level[I8042_AUX_IRQ]);
    uint8_t st = in(I8042_CMD_PORT);
    assert_int_equal(st, I8042_STR_UNLOCKED | I8042_STR_SYS);
    assert_int_equal(command_reply(0x20), I8042_CTR_KBDINT | I8042_CTR_SYS | I8042_CTR_AUXDIS | I8042_CTR_XLATE);
}

static void test_attach_conflict(void **state)
{
    (void)state;
    struct i8042 other;
    assert_true(i8042_attach(&other, bus, &sim_sink, "pc") < 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_linux_probe),
        T(test_status_cmd_bit_and_sys_flag),
        T(test_interrupt_lines_follow_buffer),
        T(test_output_port),
        T(test_pulse_reset),
        T(test_unknown_command_logged_once),
        T(test_reset_restores_power_on),
        T(test_attach_conflict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
