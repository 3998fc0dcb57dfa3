/* The per-VM device bus (vmm/dev/bus.c): registration and its refusals, lookup at the
 * edges of ranges, moving and removing ranges, the width policy, unclaimed ports and
 * the results devices hand back, and MMIO lookups on one thread while another moves a
 * range across them. Devices here are fakes that record what reached them. */
/* SOURCES: vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "vmm/dev/bus.h"
#include "tests/unit/console_capture.h"

/* A fake device: its registers are a byte array, accesses are little-endian; every
 * access is recorded. */
struct fake {
    uint8_t regs[64];
    int reads, writes;
    uint64_t last_offset;
    unsigned last_width;
    struct bus_result result; /* what its handlers return */
};

static struct bus_result fake_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct fake *f = dev;
    f->reads++;
    f->last_offset = offset;
    f->last_width = width;
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)f->regs[(offset + i) % sizeof(f->regs)] << (8 * i);
    /* Junk above the width: the bus must not pass it on. */
    *value = v | (width < 8 ? ~0ull << (8 * width) : 0);
    return f->result;
}

static struct bus_result fake_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct fake *f = dev;
    f->writes++;
    f->last_offset = offset;
    f->last_width = width;
    if (width < 8)
        assert_int_equal(value >> (8 * width), 0);
    for (unsigned i = 0; i < width; i++)
        f->regs[(offset + i) % sizeof(f->regs)] = (uint8_t)(value >> (8 * i));
    return f->result;
}

static const struct bus_ops fake_ops = {.read = fake_read, .write = fake_write};
static const struct bus_ops no_write_ops = {.read = fake_read};

static struct vm_bus *bus;
static struct fake dev_a, dev_b;

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "demo");
    memset(&dev_a, 0, sizeof(dev_a));
    memset(&dev_b, 0, sizeof(dev_b));
    capture_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static int add(uint32_t space, uint64_t base, uint64_t len, uint32_t widths, struct fake *dev, const char *owner)
{
    return vm_bus_add(bus, &(struct bus_region){.space = space, .base = base, .len = len, .widths = widths,
                                                .ops = &fake_ops, .dev = dev, .owner = owner});
}

static uint64_t pio_in(uint16_t port, unsigned width)
{
    uint64_t v = 0x5a5a5a5a5a5a5a5aull;
    struct bus_result r = vm_bus_pio(bus, port, width, false, &v);
    assert_int_equal(bus_action(r), BUS_DONE);
    return width == 4 ? v & 0xffffffffu : v & ((1u << (8 * width)) - 1);
}

static void pio_out(uint16_t port, unsigned width, uint64_t value)
{
    struct bus_result r = vm_bus_pio(bus, port, width, true, &value);
    assert_int_equal(bus_action(r), BUS_DONE);
}

static void lookup_at_range_edges(void **state)
{
    (void)state;
    int a = add(BUS_PIO, 0x3f8, 8, BUS_WIDTH_1, &dev_a, "com1");
    int b = add(BUS_MMIO, 0xfec00000ull, 0x1000, BUS_WIDTH_4, &dev_b, "ioapic");
    assert_true(a >= 0);
    assert_true(b >= 0);
    assert_int_not_equal(a, b);

    assert_null(vm_bus_find(bus, BUS_PIO, 0x3f7));
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0x3f8)->owner, "com1");
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0x3ff)->owner, "com1");
    assert_null(vm_bus_find(bus, BUS_PIO, 0x400));
    assert_null(vm_bus_find(bus, BUS_PIO, 0x10000)); /* no such port */

    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfebfffffull));
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfec00000ull)->owner, "ioapic");
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfec00fffull)->owner, "ioapic");
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfec01000ull));
    /* Spaces are separate: the port number is no address and vice versa. */
    assert_null(vm_bus_find(bus, BUS_MMIO, 0x3f8));

    /* Offsets are from the range's start, at both ends. */
    pio_out(0x3f8, 1, 0x11);
    assert_int_equal(dev_a.last_offset, 0);
    pio_out(0x3ff, 1, 0x22);
    assert_int_equal(dev_a.last_offset, 7);
    assert_int_equal(pio_in(0x3ff, 1), 0x22);
    assert_int_equal(dev_a.writes, 2);
    assert_int_equal(dev_a.reads, 1);

    /* MMIO ranges are kept by base: the last one below an address is the one tried. */
    assert_true(add(BUS_MMIO, 0xfee00000ull, 0x1000, BUS_WIDTH_4, &dev_a, "lapic") >= 0);
    assert_true(add(BUS_MMIO, 0xe0000000ull, 0x100000, BUS_WIDTH_4, &dev_a, "low") >= 0);
    assert_true(add(BUS_MMIO, 0xffffffffff000000ull, 0x1000000, BUS_WIDTH_8, &dev_a, "top") >= 0);
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfee00ffcull)->owner, "lapic");
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xe00fffffull)->owner, "low");
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xe0100000ull));
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfec00010ull)->owner, "ioapic");
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, ~0ull)->owner, "top");
    assert_null(vm_bus_find(bus, BUS_MMIO, 0));
    assert_int_equal(capture_count(), 0);
}

static void overlaps_are_refused_with_both_owners(void **state)
{
    (void)state;
    assert_true(add(BUS_PIO, 0x3f8, 8, BUS_WIDTH_1, &dev_a, "com1") >= 0);
    static const struct { uint64_t base, len; } bad[] = {
        {0x3f8, 8}, {0x3f0, 9}, {0x3ff, 1}, {0x3fa, 2}, {0x300, 0x200},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(add(BUS_PIO, bad[i].base, bad[i].len, BUS_WIDTH_1, &dev_b, "com1-again"), -BUS_EOVERLAP);
    assert_logged_line("VM demo: com1-again ports 0x3f0-0x3f8 not registered: overlaps com1 at 0x3f8-0x3ff");
    assert_logged_line("VM demo: com1-again ports 0x300-0x4ff not registered: overlaps com1 at 0x3f8-0x3ff");
    assert_int_equal(capture_count(), 5);
    /* Neighbours on both sides are fine. */
    assert_true(add(BUS_PIO, 0x3f0, 8, BUS_WIDTH_1, &dev_b, "left") >= 0);
    assert_true(add(BUS_PIO, 0x400, 1, BUS_WIDTH_1, &dev_b, "right") >= 0);
    /* The refused ones changed nothing. */
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0x3fa)->owner, "com1");
    assert_int_equal(pio_in(0x3fa, 1), 0);
    assert_int_equal(dev_b.reads, 0);

    assert_true(add(BUS_MMIO, 0xfee00000ull, 0x1000, BUS_WIDTH_4, &dev_a, "lapic") >= 0);
    assert_int_equal(add(BUS_MMIO, 0xfedff000ull, 0x1001, BUS_WIDTH_4, &dev_b, "hpet"), -BUS_EOVERLAP);
    assert_logged_line("VM demo: hpet MMIO 0xfedff000-0xfee00000 not registered: overlaps lapic at "
                       "0xfee00000-0xfee00fff");
    assert_int_equal(add(BUS_MMIO, 0xfee00fffull, 1, BUS_WIDTH_4, &dev_b, "hpet"), -BUS_EOVERLAP);
    /* The same numbers in the other space do not collide. */
    assert_true(add(BUS_MMIO, 0x3f8, 8, BUS_WIDTH_1, &dev_b, "mmio-at-0x3f8") >= 0);
}

static void bad_registrations_are_named(void **state)
{
    (void)state;
    assert_int_equal(add(BUS_PIO, 0x80, 0, BUS_WIDTH_1, &dev_a, "empty"), -BUS_EINVAL);
    assert_logged("empty ports 0x80-0x80 not registered: the range is empty");
    assert_int_equal(add(BUS_PIO, 0xfff0, 0x20, BUS_WIDTH_1, &dev_a, "high"), -BUS_EINVAL);
    assert_logged("high ports 0xfff0-0x1000f not registered: the range runs past port 0xffff");
    assert_int_equal(add(BUS_PIO, 0x10000, 1, BUS_WIDTH_1, &dev_a, "beyond"), -BUS_EINVAL);
    assert_int_equal(add(BUS_PIO, 0x80, 1, BUS_WIDTH_8, &dev_a, "wide"), -BUS_EINVAL);
    assert_logged("wide ports 0x80-0x80 not registered: its widths must be some of 1, 2 and 4 bytes");
    assert_int_equal(add(BUS_PIO, 0x80, 1, 0, &dev_a, "none"), -BUS_EINVAL);
    assert_int_equal(add(BUS_PIO, 0x80, 1, BUS_WIDTH_1 | 16, &dev_a, "odd"), -BUS_EINVAL);
    assert_int_equal(add(BUS_MMIO, 0xfffffffffffff000ull, 0x2000, BUS_WIDTH_4, &dev_a, "wrap"), -BUS_EINVAL);
    assert_logged("wrap MMIO 0xfffffffffffff000-0xfff not registered: the range wraps past the top of the "
                  "address space");
    assert_int_equal(add(7, 0, 1, BUS_WIDTH_1, &dev_a, "space"), -BUS_EINVAL);
    assert_int_equal(vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = 0x80, .len = 1,
                                                          .widths = BUS_WIDTH_1, .ops = &no_write_ops,
                                                          .owner = "half"}),
                     -BUS_EINVAL);
    assert_logged("half ports 0x80-0x80 not registered: it has no read or no write handler");
    assert_int_equal(vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = 0x80, .len = 1,
                                                          .widths = BUS_WIDTH_1, .ops = &fake_ops}),
                     -BUS_EINVAL);
    assert_logged("(no owner) ports 0x80-0x80 not registered: it has no owner");
    assert_null(vm_bus_find(bus, BUS_PIO, 0x80));
    /* The last port and the whole top of the address space are fine. */
    assert_true(add(BUS_PIO, 0xffff, 1, BUS_WIDTH_1, &dev_a, "last") >= 0);
    assert_true(add(BUS_MMIO, 0xfffffffffffff000ull, 0x1000, BUS_WIDTH_4, &dev_a, "top") >= 0);
}

static void remove_move_and_register_again(void **state)
{
    (void)state;
    /* A guest moving a PCI I/O BAR: the range goes, then comes back elsewhere. */
    int id = add(BUS_PIO, 0xc000, 0x40, BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, &dev_a, "virtio-blk");
    assert_true(id >= 0);
    pio_out(0xc010, 4, 0xdeadbeef);
    assert_int_equal(vm_bus_remove(bus, id), 0);
    assert_null(vm_bus_find(bus, BUS_PIO, 0xc010));
    assert_int_equal(pio_in(0xc010, 4), 0xffffffffu); /* unclaimed now */
    assert_logged("read of 4 byte(s) at unclaimed port 0xc010 ");
    assert_int_equal(vm_bus_remove(bus, id), -BUS_ENOENT);
    assert_logged_line("VM demo: no device range 1 to remove");

    id = add(BUS_PIO, 0xd000, 0x40, BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, &dev_a, "virtio-blk");
    assert_true(id >= 0);
    assert_int_equal(pio_in(0xd010, 4), 0xdeadbeefu);

    /* Moving keeps the id; the old place is empty at once. */
    int other = add(BUS_PIO, 0xe000, 0x20, BUS_WIDTH_1, &dev_b, "other");
    assert_int_equal(vm_bus_move(bus, id, 0xc800), id);
    assert_null(vm_bus_find(bus, BUS_PIO, 0xd000));
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0xc83f)->owner, "virtio-blk");
    assert_int_equal(pio_in(0xc810, 4), 0xdeadbeefu);
    /* Onto another device, or off the end: refused, and it stays put. */
    assert_int_equal(vm_bus_move(bus, id, 0xdff0), -BUS_EOVERLAP);
    assert_logged_line("VM demo: virtio-blk ports 0xdff0-0xe02f not registered: overlaps other at 0xe000-0xe01f");
    assert_int_equal(vm_bus_move(bus, id, 0xfff0), -BUS_EINVAL);
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0xc800)->owner, "virtio-blk");
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0xe000)->owner, "other");
    /* Overlapping only its own old place is fine. */
    assert_int_equal(vm_bus_move(bus, id, 0xc820), id);
    assert_string_equal(vm_bus_find(bus, BUS_PIO, 0xc85f)->owner, "virtio-blk");
    assert_null(vm_bus_find(bus, BUS_PIO, 0xc81f));
    assert_int_equal(vm_bus_move(bus, 99, 0), -BUS_ENOENT);
    assert_int_equal(vm_bus_remove(bus, -1), -BUS_ENOENT);

    /* MMIO: the same, and the order by base follows the move. */
    int bar = add(BUS_MMIO, 0xfebf0000ull, 0x1000, BUS_WIDTH_4, &dev_a, "bar0");
    int low = add(BUS_MMIO, 0xfe000000ull, 0x1000, BUS_WIDTH_4, &dev_b, "bar1");
    assert_int_equal(vm_bus_move(bus, bar, 0xfd000000ull), bar);
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfd000ffcull)->owner, "bar0");
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfe000000ull)->owner, "bar1");
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfebf0000ull));
    assert_int_equal(vm_bus_remove(bus, low), 0);
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfe000000ull));
    assert_string_equal(vm_bus_find(bus, BUS_MMIO, 0xfd000000ull)->owner, "bar0");
    (void)other;

    /* Teardown leaves nothing reachable. */
    vm_bus_destroy(bus);
    assert_null(vm_bus_find(bus, BUS_PIO, 0xc820));
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfd000000ull));
    int reads = dev_a.reads;
    assert_int_equal(pio_in(0xc820, 4), 0xffffffffu);
    assert_int_equal(dev_a.reads, reads);
}

static void the_bus_fills_up(void **state)
{
    (void)state;
    int ids[BUS_MAX_RANGES];
    for (int i = 0; i < BUS_MAX_RANGES; i++)
        assert_true((ids[i] = add(BUS_PIO, 0x1000 + (uint64_t)i * 4, 4, BUS_WIDTH_1, &dev_a, "many")) >= 0);
    assert_int_equal(add(BUS_MMIO, 0x80000000ull, 4, BUS_WIDTH_4, &dev_a, "one-too-many"), -BUS_EFULL);
    assert_logged_line("VM demo: one-too-many MMIO 0x80000000-0x80000003 not registered: the bus is full (64 "
                       "ranges)");
    /* A freed slot is used again. */
    assert_int_equal(vm_bus_remove(bus, ids[17]), 0);
    assert_int_equal(add(BUS_MMIO, 0x80000000ull, 4, BUS_WIDTH_4, &dev_b, "now-fits"), ids[17]);
    assert_null(vm_bus_find(bus, BUS_PIO, 0x1000 + 17 * 4));
}

static void wider_accesses_are_split_little_endian(void **state)
{
    (void)state;
    int bytes = add(BUS_PIO, 0x60, 4, BUS_WIDTH_1, &dev_a, "bytes");
    assert_true(bytes > 0);
    memcpy(dev_a.regs, "\x11\x22\x33\x44", 4);
    assert_int_equal(pio_in(0x60, 2), 0x2211);
    assert_int_equal(pio_in(0x60, 4), 0x44332211u);
    assert_int_equal(dev_a.reads, 6);
    assert_int_equal(dev_a.last_width, 1);
    pio_out(0x60, 4, 0xa1b2c3d4u);
    assert_int_equal(dev_a.writes, 4);
    assert_memory_equal(dev_a.regs, "\xd4\xc3\xb2\xa1", 4);

    /* Past the end of the range the rest is unclaimed: all-ones, logged as usual. */
    assert_int_equal(pio_in(0x63, 2), 0xffa1);
    assert_logged_line("VM demo: read of 1 byte(s) at unclaimed port 0x64 (reads all-ones, writes ignored; "
                       "logged once)");
    /* Starting below the range: the unclaimed half, then the device. */
    assert_int_equal(pio_in(0x5e, 4), 0xc3d4ffffu);
    assert_logged("read of 2 byte(s) at unclaimed port 0x5e ");
    /* With the device gone, the ports below it are whole unclaimed accesses again. */
    assert_int_equal(vm_bus_remove(bus, bytes), 0);
    assert_int_equal(pio_in(0x5d, 4), 0xffffffffu);
    assert_logged("read of 4 byte(s) at unclaimed port 0x5d ");
    assert_int_equal(dev_a.reads, 9);

    /* A device taking 2 and 4 gets a dword of an 8-byte MMIO access twice. */
    assert_true(add(BUS_MMIO, 0x1000, 16, BUS_WIDTH_2 | BUS_WIDTH_4, &dev_b, "dwords") >= 0);
    uint64_t v = 0x0123456789abcdefull;
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, 0x1004, 8, true, &v)), BUS_DONE);
    assert_int_equal(dev_b.writes, 2);
    assert_int_equal(dev_b.last_offset, 8);
    assert_int_equal(dev_b.last_width, 4);
    v = 0;
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, 0x1004, 8, false, &v)), BUS_DONE);
    assert_int_equal(v, 0x0123456789abcdefull);
    /* Accepted widths go straight through, junk above the width cut off. */
    v = 0;
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, 0x1004, 2, false, &v)), BUS_DONE);
    assert_int_equal(v, 0xcdef);
    assert_int_equal(dev_b.last_width, 2);
}

static void narrower_accesses_read_all_ones_logged_once(void **state)
{
    (void)state;
    assert_true(add(BUS_PIO, 0xcf8, 4, BUS_WIDTH_4, &dev_a, "pci-addr") >= 0);
    pio_out(0xcf8, 4, 0x80000010u);
    assert_int_equal(dev_a.writes, 1);
    /* A byte or a word is not for it: all-ones, the write dropped, and said once. */
    assert_int_equal(pio_in(0xcf9, 1), 0xff);
    assert_int_equal(pio_in(0xcf8, 2), 0xffff);
    pio_out(0xcf9, 1, 0x06);
    assert_int_equal(dev_a.writes, 1);
    assert_int_equal(dev_a.reads, 0);
    assert_int_equal(capture_count(), 1);
    assert_string_equal(capture_line(0), "VM demo: 1-byte read at port 0xcf9 of pci-addr, which takes 4-byte "
                                         "accesses: reads all-ones (logged once for this device)");
    assert_int_equal(pio_in(0xcf8, 4), 0x80000010u);

    /* Another device gets its own line; a write is named as such. */
    assert_true(add(BUS_PIO, 0x4d0, 2, BUS_WIDTH_1 | BUS_WIDTH_4, &dev_b, "elcr") >= 0);
    pio_out(0x4d0, 2, 0xffff); /* 2 bytes: split, both bytes taken */
    assert_int_equal(dev_b.writes, 2);
    assert_true(add(BUS_MMIO, 0xfee00000ull, 0x1000, BUS_WIDTH_4, &dev_b, "lapic") >= 0);
    uint64_t v = 7;
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, 0xfee000b0ull, 2, true, &v)), BUS_DONE);
    assert_int_equal(dev_b.writes, 2);
    assert_logged_line("VM demo: 2-byte write at guest-physical 0xfee000b0 of lapic, which takes 4-byte accesses: "
                       "ignored (logged once for this device)");
    assert_int_equal(capture_count(), 2);
}

static void unclaimed_ports_logged_then_counted(void **state)
{
    (void)state;
    assert_true(add(BUS_PIO, 0x3f8, 8, BUS_WIDTH_1, &dev_a, "com1") >= 0);
    assert_int_equal(pio_in(0x80, 1), 0xff);
    assert_int_equal(pio_in(0x80, 4), 0xffffffffu);
    pio_out(0x80, 1, 0);
    assert_int_equal(capture_count(), 1);
    assert_string_equal(capture_line(0), "VM demo: read of 1 byte(s) at unclaimed port 0x80 (reads all-ones, "
                                         "writes ignored; logged once)");
    for (uint16_t p = 0x81; p < 0x90; p++)
        pio_out(p, 2, 0x1234);
    assert_int_equal(capture_count(), UNCLAIMED_PORTS_LOGGED);
    assert_logged("write of 2 byte(s) at unclaimed port 0x87 (reads all-ones, writes ignored; logged once); "
                  "further unclaimed ports are counted, not logged");
    assert_int_equal(bus->ports_unlogged, 0x90 - 0x88);
    assert_int_equal(bus->ports_logged, UNCLAIMED_PORTS_LOGGED);
    /* The top port, whole dword. */
    assert_int_equal(pio_in(0xffff, 4), 0xffffffffu);
    assert_int_equal(bus->ports_unlogged, 0x90 - 0x88 + 1);
    assert_int_equal(dev_a.reads + dev_a.writes, 0);
}

static void device_results_reach_the_caller(void **state)
{
    (void)state;
    assert_true(add(BUS_PIO, 0xf4, 4, BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, &dev_a, "debug-exit") >= 0);
    dev_a.result = bus_exit(0x21, "debug-exit port");
    uint64_t v = 0x10;
    struct bus_result r = vm_bus_pio(bus, 0xf4, 1, true, &v);
    assert_int_equal(bus_action(r), BUS_EXIT_CODE);
    assert_int_equal(bus_code(r), 0x21);
    assert_string_equal(r.why, "debug-exit port");

    /* A split write stops at the first part that stops the VM. */
    assert_true(add(BUS_PIO, 0x70, 2, BUS_WIDTH_1, &dev_b, "rtc") >= 0);
    dev_b.result = bus_stop("rtc: unsupported");
    v = 0xbbaa;
    r = vm_bus_pio(bus, 0x70, 2, true, &v);
    assert_int_equal(bus_action(r), BUS_STOP);
    assert_string_equal(r.why, "rtc: unsupported");
    assert_int_equal(dev_b.writes, 1);
    assert_int_equal(dev_b.regs[0], 0xaa);
    assert_int_equal(dev_b.regs[1], 0);
}

/* A PCI BAR moved by one vCPU while another reaches a device that does not move: the
 * mover's range jumps from below to above the fixed one and back, reordering the MMIO
 * table each time, and every lookup of the fixed range must still find it, whole. */
#define MOVES 20000
static volatile int mover_done;
static int mover_id;

static void *mover(void *arg)
{
    (void)arg;
    for (int i = 0; i < MOVES; i++)
        if (vm_bus_move(bus, mover_id, i % 2 ? 0x10000000u : 0x30000000u) != mover_id)
            abort();
    __atomic_store_n(&mover_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void mmio_lookups_survive_concurrent_moves(void **state)
{
    (void)state;
    int fixed = add(BUS_MMIO, 0x20000000u, 0x1000, BUS_WIDTH_4, &dev_a, "fixed");
    add(BUS_MMIO, 0x18000000u, 0x1000, BUS_WIDTH_4, &dev_b, "neighbour");
    mover_id = add(BUS_MMIO, 0x10000000u, 0x4000, BUS_WIDTH_4, &dev_b, "moving BAR");
    assert_true(fixed > 0 && mover_id > 0);
    mover_done = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, mover, NULL), 0);
    unsigned long lookups = 0, misses = 0;
    while (!__atomic_load_n(&mover_done, __ATOMIC_ACQUIRE) || lookups < 1000) {
        const struct bus_range *r = vm_bus_find(bus, BUS_MMIO, 0x20000800u);
        uint64_t v = 0;
        struct bus_result res = vm_bus_access(bus, BUS_MMIO, 0x20000ffcu, 4, false, &v);
        if (!r || r->base != 0x20000000u || bus_action(res) != BUS_DONE)
            misses++;
        lookups++;
    }
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(misses, 0);
    assert_int_equal(dev_a.reads, (int)lookups);
    assert_int_equal(dev_a.last_offset, 0xffc);
    assert_int_equal(bus->mmio_seq % 2, 0);
    assert_int_equal(capture_count(), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(lookup_at_range_edges),
        T(overlaps_are_refused_with_both_owners),
        T(bad_registrations_are_named),
        T(remove_move_and_register_again),
        T(the_bus_fills_up),
        T(wider_accesses_are_split_little_endian),
        T(narrower_accesses_read_all_ones_logged_once),
        T(unclaimed_ports_logged_then_counted),
        T(device_results_reach_the_caller),
        T(mmio_lookups_survive_concurrent_moves),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
