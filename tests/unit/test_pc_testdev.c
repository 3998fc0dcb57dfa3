/* QEMU's pc-testdev (vmm/dev/pc_testdev.c) on a real bus: the scratch register through
 * both of its port windows and every width, the flush page, the IRQ lines driving the
 * VM's interrupt lines, and the MMIO scratch memory, with the values QEMU gives. */
/* SOURCES: vmm/dev/pc_testdev.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/pc_testdev.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

static struct vm_bus *bus;
static struct pc_testdev *td;
static uint64_t flushed[8];
static unsigned flushes;

static void record_flush(void *ctx, uint64_t gpa)
{
    assert_ptr_equal(ctx, &flushes);
    if (flushes < ARRAY_SIZE(flushed))
        flushed[flushes] = gpa;
    flushes++;
}

static void out(uint16_t port, unsigned width, uint64_t v)
{
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, true, &v)), BUS_DONE);
}

static uint64_t in(uint16_t port, unsigned width)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, false, &v)), BUS_DONE);
    return v & ((1ull << (8 * width)) - 1);
}

static uint64_t mmio(uint64_t gpa, unsigned width, bool write, uint64_t v)
{
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, gpa, width, write, &v)), BUS_DONE);
    return width == 8 ? v : v & ((1ull << (8 * width)) - 1);
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    td = malloc(sizeof(*td));
    assert_non_null(bus);
    assert_non_null(td);
    memset(td, 0xa5, sizeof(*td)); /* attach must not rely on zeroed memory */
    vm_bus_init(bus, "qemu");
    sim_reset();
    capture_reset();
    flushes = 0;
    assert_int_equal(pc_testdev_attach(td, bus, &sim_sink, record_flush, &flushes, "qemu"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(td);
    free(bus);
    return 0;
}

static void test_scratch_register(void **state)
{
    (void)state;
    assert_int_equal(in(0xe0, 4), 0);
    out(0xe0, 4, 0x12345678);
    assert_int_equal(in(0xe0, 4), 0x12345678);
    /* Byte lanes by port: 0xE2 is bits 23:16. */
    assert_int_equal(in(0xe0, 1), 0x78);
    assert_int_equal(in(0xe1, 1), 0x56);
    assert_int_equal(in(0xe2, 1), 0x34);
    assert_int_equal(in(0xe3, 1), 0x12);
    assert_int_equal(in(0xe2, 2), 0x1234);
    out(0xe1, 1, 0xab);
    assert_int_equal(in(0xe0, 4), 0x1234ab78);
    out(0xe2, 2, 0xcdef);
    assert_int_equal(in(0xe0, 4), 0xcdefab78);
    /* The byte window at 0xE8 is the same register, byte by byte even for wide accesses. */
    assert_int_equal(in(0xe8, 4), 0xcdefab78);
    assert_int_equal(in(0xeb, 1), 0xcd);
    out(0xe8, 4, 0x0badf00d);
    assert_int_equal(in(0xe0, 4), 0x0badf00d);
    out(0xea, 2, 0x1111);
    assert_int_equal(in(0xe0, 4), 0x1111f00d);
    assert_int_equal(capture_count(), 0);
}

static void test_flush_page(void **state)
{
    (void)state;
    out(0xe4, 4, 0x00123abc);
    out(0xe4, 4, 0xfffff000);
    assert_int_equal(flushes, 2);
    assert_int_equal(flushed[0], 0x123000);
    assert_int_equal(flushed[1], 0xfffff000);
    assert_int_equal(in(0xe4, 4), 0);
    /* QEMU takes only 32-bit writes there: narrower ones flush nothing. */
    out(0xe4, 1, 0x5000);
    out(0xe4, 2, 0x5000);
    assert_int_equal(flushes, 2);
    /* The scratch register is not touched by the flush port. */
    out(0xe0, 4, 0x77);
    out(0xe4, 4, 0x1000);
    assert_int_equal(in(0xe0, 4), 0x77);
}

static void test_irq_lines(void **state)
{
    (void)state;
    out(0x2000 + 10, 1, 1);
    assert_true(sim_irq.level[10]);
    out(0x2000 + 10, 1, 0);
    assert_false(sim_irq.level[10]);
    /* Any non-zero byte raises the line; each of the 24 reaches its own line. */
    for (unsigned line = 0; line < 24; line++) {
        out((uint16_t)(0x2000 + line), 1, 0x80);
        assert_true(sim_irq.level[line]);
        assert_int_equal(sim_irq.ev[sim_irq.count - 1].line, line);
    }
    for (unsigned line = 0; line < 24; line++)
        out((uint16_t)(0x2000 + line), 1, 0);
    for (unsigned line = 0; line < 24; line++) {
        assert_false(sim_irq.level[line]);
        assert_int_equal(sim_irq.rises[line], line == 10 ? 2 : 1);
    }
    /* The port past the last line is not the device's. */
    unsigned before = sim_irq.count;
    out(0x2018, 1, 1);
    assert_int_equal(sim_irq.count, before);
    /* Wider writes are not QEMU's either: dropped, logged once. */
    out(0x2000, 2, 0x0101);
    out(0x2004, 4, 0x01010101);
    assert_int_equal(sim_irq.count, before);
    assert_int_equal(capture_count(), 2); /* the unclaimed 0x2018 and the width, once each */
    assert_logged("pc-testdev: 2-byte write to IRQ port 0x2000 dropped");
    assert_int_equal(in(0x2003, 1), 0xff);
}

static void test_mmio_scratch(void **state)
{
    (void)state;
    uint64_t base = PC_TESTDEV_MMIO_BASE;
    assert_int_equal(mmio(base, 4, false, 0), 0);
    assert_int_equal(mmio(base + 0xfffc, 4, false, 0), 0);
    mmio(base + 0x10, 4, true, 0xdeadbeef);
    assert_int_equal(mmio(base + 0x10, 4, false, 0), 0xdeadbeef);
    assert_int_equal(mmio(base + 0x11, 1, false, 0), 0xbe);
    assert_int_equal(mmio(base + 0x12, 2, false, 0), 0xdead);
    mmio(base + 0x13, 1, true, 0x5a);
    assert_int_equal(mmio(base + 0x10, 4, false, 0), 0x5aadbeef);
    /* 8-byte accesses split in two, low half first: the memory sees both. */
    mmio(base + 0x100, 8, true, 0x0123456789abcdefull);
    assert_int_equal(mmio(base + 0x100, 4, false, 0), 0x89abcdef);
    assert_int_equal(mmio(base + 0x104, 4, false, 0), 0x01234567);
    assert_int_equal(mmio(base + 0x100, 8, false, 0), 0x0123456789abcdefull);
    /* The last bytes of the 64 KiB, and the range ends there. */
    mmio(base + 0xffff, 1, true, 0x42);
    assert_int_equal(mmio(base + 0xfffc, 4, false, 0), 0x42000000);
    assert_non_null(vm_bus_find(bus, BUS_MMIO, base + 0xffff));
    assert_null(vm_bus_find(bus, BUS_MMIO, base + 0x10000));
    assert_null(vm_bus_find(bus, BUS_MMIO, base - 1));
}

static void test_reset(void **state)
{
    (void)state;
    out(0xe0, 4, 0x1234);
    out(0x2000 + 5, 1, 1);
    mmio(PC_TESTDEV_MMIO_BASE + 8, 4, true, 0x99);
    pc_testdev_reset(td);
    assert_false(sim_irq.level[5]);
    assert_int_equal(in(0xe0, 4), 0);
    assert_int_equal(mmio(PC_TESTDEV_MMIO_BASE + 8, 4, false, 0), 0);
}

static void test_no_flush_hook(void **state)
{
    (void)state;
    struct vm_bus *b2 = calloc(1, sizeof(*b2));
    struct pc_testdev *t2 = calloc(1, sizeof(*t2));
    assert_non_null(b2);
    assert_non_null(t2);
    vm_bus_init(b2, "qemu2");
    assert_int_equal(pc_testdev_attach(t2, b2, &sim_sink, NULL, NULL, "qemu2"), 0);
    uint64_t v = 0x4000;
    assert_int_equal(bus_action(vm_bus_pio(b2, 0xe4, 4, true, &v)), BUS_DONE);
    free(t2);
    free(b2);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_scratch_register), T(test_flush_page), T(test_irq_lines),
        T(test_mmio_scratch),     T(test_reset),      T(test_no_flush_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
