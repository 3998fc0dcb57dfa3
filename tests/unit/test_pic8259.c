/* The dual 8259A and ELCR (vmm/dev/pic8259.c), programmed through its ports on a real
 * bus the way Linux and test kernels do: priorities, EOI kinds, the cascade, edge and
 * level triggering, spurious interrupts, poll, auto-EOI, rotation, special masks. */
/* SOURCES: vmm/dev/pic8259.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/pic8259.h"
#include "tests/unit/console_capture.h"

static struct vm_bus *bus;
static struct pic8259 pic;
static int intr_changes;
static bool intr_seen;

static void on_intr(void *ctx, bool high)
{
    assert_ptr_equal(ctx, &pic);
    assert_true(high != intr_seen); /* only changes are reported */
    intr_seen = high;
    intr_changes++;
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

/* Linux's init_8259A: vectors 0x20-0x2f, cascade on IR2, 8086 mode, normal EOI. */
static void linux_init(uint8_t master_icw4)
{
    out8(0x21, 0xff);
    out8(0xa1, 0xff);
    out8(0x20, 0x11);
    out8(0x21, 0x20);
    out8(0x21, 0x04);
    out8(0x21, master_icw4);
    out8(0xa0, 0x11);
    out8(0xa1, 0x28);
    out8(0xa1, 0x02);
    out8(0xa1, 0x01);
    out8(0x21, 0x00);
    out8(0xa1, 0x00);
}

static uint8_t read_isr(uint16_t cmd)
{
    out8(cmd, 0x0b);
    uint8_t v = in8(cmd);
    out8(cmd, 0x0a);
    return v;
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    intr_changes = 0;
    intr_seen = false;
    capture_reset();
    assert_int_equal(pic8259_attach(&pic, bus, "pc", on_intr, &pic), 0);
    linux_init(0x01);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_one_edge_interrupt(void **state)
{
    (void)state;
    assert_false(pic8259_intr(&pic));
    pic8259_set_irq(&pic, 1, true);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(intr_changes, 1);
    assert_int_equal(in8(0x20), 0x02); /* IRR */
    assert_int_equal(pic8259_ack(&pic), 0x21);
    assert_false(pic8259_intr(&pic));
    assert_int_equal(in8(0x20), 0x00);
    assert_int_equal(read_isr(0x20), 0x02);
    out8(0x20, 0x20); /* non-specific EOI */
    assert_int_equal(read_isr(0x20), 0x00);
    /* The line is still high: an edge line needs a new rising edge. */
    assert_false(pic8259_intr(&pic));
    pic8259_set_irq(&pic, 1, true);
    assert_false(pic8259_intr(&pic));
    pic8259_set_irq(&pic, 1, false);
    pic8259_set_irq(&pic, 1, true);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x21);
}

static void test_priority_and_nesting(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 3, true);
    pic8259_set_irq(&pic, 1, true);
    assert_int_equal(pic8259_ack(&pic), 0x21);
    /* IRQ 3 is lower than IRQ 1 in service: held back. */
    assert_false(pic8259_intr(&pic));
    /* IRQ 0 outranks it: nests. */
    pic8259_set_irq(&pic, 0, true);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x20);
    assert_int_equal(read_isr(0x20), 0x03);
    out8(0x20, 0x20); /* ends IRQ 0, the highest in service */
    assert_int_equal(read_isr(0x20), 0x02);
    assert_false(pic8259_intr(&pic));
    out8(0x20, 0x61); /* specific EOI for IRQ 1 */
    assert_int_equal(read_isr(0x20), 0x00);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x23);
}

static void test_imr_masks(void **state)
{
    (void)state;
    out8(0x21, 0x02);
    assert_int_equal(in8(0x21), 0x02);
    pic8259_set_irq(&pic, 1, true);
    assert_false(pic8259_intr(&pic));
    assert_int_equal(in8(0x20), 0x02); /* requested, but masked */
    out8(0x21, 0x00);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x21);
}

static void test_cascade(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 10, true);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(in8(0x20), 0x04); /* the master sees IR2 */
    assert_int_equal(pic8259_ack(&pic), 0x2a);
    assert_int_equal(read_isr(0x20), 0x04);
    assert_int_equal(read_isr(0xa0), 0x04);
    /* A slave request of lower priority than the one in service waits. */
    pic8259_set_irq(&pic, 12, true);
    assert_false(pic8259_intr(&pic));
    out8(0xa0, 0x20);
    /* The slave raises its INT again, but the master has IR2 in service. */
    assert_false(pic8259_intr(&pic));
    out8(0x20, 0x20);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x2c);
    /* Masking IR2 on the master masks the whole slave. */
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    out8(0x21, 0x04);
    pic8259_set_irq(&pic, 8, true);
    assert_false(pic8259_intr(&pic));
    out8(0x21, 0x00);
    assert_int_equal(pic8259_ack(&pic), 0x28);
}

static void test_special_fully_nested(void **state)
{
    (void)state;
    linux_init(0x11); /* SFNM on the master */
    pic8259_set_irq(&pic, 12, true);
    assert_int_equal(pic8259_ack(&pic), 0x2c);
    pic8259_set_irq(&pic, 9, true); /* higher than 12, on the same slave */
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x29);
}

static void test_elcr_level_reraises(void **state)
{
    (void)state;
    out8(0x4d1, 0x08); /* IRQ 11 level */
    assert_int_equal(in8(0x4d1), 0x08);
    pic8259_set_irq(&pic, 11, true);
    assert_int_equal(pic8259_ack(&pic), 0x2b);
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    /* Still high after the EOIs: the level request comes straight back. */
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x2b);
    pic8259_set_irq(&pic, 11, false); /* the handler serviced the device, then EOIs */
    out8(0xa0, 0x20);
    out8(0x20, 0x20);
    assert_false(pic8259_intr(&pic));
    assert_int_equal(in8(0xa0), 0x00);
}

static void test_elcr_reserved_bits(void **state)
{
    (void)state;
    out8(0x4d0, 0xff);
    out8(0x4d1, 0xff);
    assert_int_equal(in8(0x4d0), 0xf8);
    assert_int_equal(in8(0x4d1), 0xde);
    assert_logged("PIC: ELCR1 0xff sets reserved bits");
    assert_int_equal(capture_count(), 1); /* once per VM */
    /* A 16-bit read is split by the bus into the two registers. */
    uint64_t v = 0;
    vm_bus_pio(bus, 0x4d0, 2, false, &v);
    assert_int_equal(v & 0xffff, 0xdef8);
    /* IRQ 0 stays edge whatever the guest wrote. */
    pic8259_set_irq(&pic, 0, true);
    assert_int_equal(pic8259_ack(&pic), 0x20);
    out8(0x20, 0x20);
    assert_false(pic8259_intr(&pic));
}

static void test_level_line_made_level_while_high(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 5, true);
    assert_int_equal(pic8259_ack(&pic), 0x25);
    out8(0x20, 0x20);
    assert_false(pic8259_intr(&pic));
    out8(0x4d0, 0x20); /* IRQ 5 turned level while its pin is high */
    assert_true(pic8259_intr(&pic));
}

static void test_spurious(void **state)
{
    (void)state;
    out8(0x4d0, 0x20); /* IRQ 5 level */
    pic8259_set_irq(&pic, 5, true);
    assert_true(pic8259_intr(&pic));
    pic8259_set_irq(&pic, 5, false); /* gone before the INTA */
    assert_false(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x27);
    assert_int_equal(read_isr(0x20), 0x00); /* a spurious IRQ 7 sets no ISR bit */
    assert_int_equal(pic.spurious, 1);

    /* On the slave: the master latched IR2's edge, the slave's request went away. */
    out8(0x4d1, 0x02); /* IRQ 9 level */
    pic8259_set_irq(&pic, 9, true);
    pic8259_set_irq(&pic, 9, false);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x2f);
    assert_int_equal(read_isr(0xa0), 0x00);
    assert_int_equal(read_isr(0x20), 0x04); /* the master's EOI is still owed */
    assert_int_equal(pic.spurious, 2);
}

static void test_poll(void **state)
{
    (void)state;
    assert_int_equal((out8(0x20, 0x0c), in8(0x20)), 0x00); /* nothing pending */
    pic8259_set_irq(&pic, 6, true);
    pic8259_set_irq(&pic, 4, true);
    out8(0x20, 0x0c);
    assert_int_equal(in8(0x20), 0x84);
    assert_int_equal(read_isr(0x20), 0x10);
    /* The poll ended: reads are the IRR again. */
    assert_int_equal(in8(0x20), 0x40);
}

static void test_auto_eoi(void **state)
{
    (void)state;
    linux_init(0x03);
    pic8259_set_irq(&pic, 1, true);
    assert_int_equal(pic8259_ack(&pic), 0x21);
    assert_int_equal(read_isr(0x20), 0x00);
    pic8259_set_irq(&pic, 3, true); /* lower, but nothing is in service */
    assert_true(pic8259_intr(&pic));
}

static void test_rotation(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 0, true);
    assert_int_equal(pic8259_ack(&pic), 0x20);
    out8(0x20, 0xa0); /* rotate on non-specific EOI: IRQ 0 becomes the lowest */
    pic8259_set_irq(&pic, 0, false);
    pic8259_set_irq(&pic, 0, true);
    pic8259_set_irq(&pic, 1, true);
    assert_int_equal(pic8259_ack(&pic), 0x21);
    out8(0x20, 0x20);
    assert_int_equal(pic8259_ack(&pic), 0x20);
    out8(0x20, 0x20);
    /* Set priority: IRQ 3 lowest, so IRQ 4 highest. */
    out8(0x20, 0xc3);
    pic8259_set_irq(&pic, 3, true);
    pic8259_set_irq(&pic, 6, true);
    pic8259_set_irq(&pic, 4, true);
    assert_int_equal(pic8259_ack(&pic), 0x24);
    out8(0x20, 0x20);
    assert_int_equal(pic8259_ack(&pic), 0x26);
    out8(0x20, 0x20);
    assert_int_equal(pic8259_ack(&pic), 0x23);
}

static void test_special_mask(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 3, true);
    assert_int_equal(pic8259_ack(&pic), 0x23);
    pic8259_set_irq(&pic, 5, true);
    assert_false(pic8259_intr(&pic));
    /* The handler masks its own level and enters special mask mode. */
    out8(0x21, 0x08);
    out8(0x20, 0x68);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(pic8259_ack(&pic), 0x25);
    out8(0x20, 0x48); /* leave special mask mode */
    out8(0x20, 0x65);
    out8(0x21, 0x00);
    assert_int_equal(read_isr(0x20), 0x08);
}

static void test_icw1_resets_edge_latch(void **state)
{
    (void)state;
    pic8259_set_irq(&pic, 4, true);
    assert_true(pic8259_intr(&pic));
    linux_init(0x01);
    /* The request was forgotten; the line must fall and rise again. */
    assert_false(pic8259_intr(&pic));
    assert_int_equal(read_isr(0x20), 0);
    pic8259_set_irq(&pic, 4, false);
    pic8259_set_irq(&pic, 4, true);
    assert_int_equal(pic8259_ack(&pic), 0x24);
}

static void test_bad_programming_logged_once(void **state)
{
    (void)state;
    out8(0x20, 0x13); /* single mode */
    out8(0x21, 0x40);
    out8(0x21, 0x01); /* ICW4 straight after ICW2: no ICW3 in single mode */
    assert_int_equal(in8(0x21), 0x00);
    out8(0x21, 0x55); /* now OCW1 */
    assert_int_equal(in8(0x21), 0x55);
    out8(0x20, 0x1b); /* LTIM, single again */
    assert_int_equal(capture_count(), 1);
    assert_logged("single mode");
    linux_init(0x01);
    out8(0x20, 0x11);
    out8(0x21, 0x20);
    out8(0x21, 0x08); /* wrong cascade identity */
    out8(0x21, 0x01);
    assert_logged("master ICW3 0x08");
    pic8259_set_irq(&pic, 2, true);
    pic8259_set_irq(&pic, 16, true);
    assert_logged("line 2 driven");
    assert_int_equal(capture_count(), 3);
    assert_false(pic8259_intr(&pic));
}

static void test_irq_sink_and_reset(void **state)
{
    (void)state;
    struct irq_sink sink = pic8259_irq_sink(&pic);
    irq_set(&sink, 14, true);
    assert_true(pic8259_intr(&pic));
    assert_int_equal(intr_changes, 1);
    pic8259_reset(&pic);
    assert_false(pic8259_intr(&pic));
    assert_int_equal(intr_changes, 2);
    assert_int_equal(in8(0x4d0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_one_edge_interrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_and_nesting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imr_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cascade, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_fully_nested, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elcr_level_reraises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_elcr_reserved_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_level_line_made_level_while_high, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spurious, setup, teardown),
        cmocka_unit_test_setup_teardown(test_poll, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_eoi, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_special_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_icw1_resets_edge_latch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_programming_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_irq_sink_and_reset, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
