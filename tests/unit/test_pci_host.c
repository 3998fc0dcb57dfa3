/* The PCI host bridge (vmm/dev/pci_host.c) through 0xCF8/0xCFC on a real bus: Linux's
 * mechanism #1 probe, the 440FX's IDs at 00:00.0, absent functions, read-only
 * registers, widths and offsets in the data window, registered functions, and 0xCF9
 * going to the reset control register (vmm/dev/acpi_pm.c). */
/* SOURCES: vmm/dev/pci_host.c vmm/dev/acpi_pm.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/acpi_pm.h"
#include "vmm/dev/pci_host.h"
#include "tests/unit/console_capture.h"

static struct vm_bus *bus;
static struct pci_host host;
static struct acpi_pm pm;

static void out(uint16_t port, unsigned width, uint64_t v)
{
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, true, &v)), BUS_DONE);
}

static uint64_t in(uint16_t port, unsigned width)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, false, &v)), BUS_DONE);
    return v & (width == 4 ? 0xffffffffu : (1u << (8 * width)) - 1);
}

static uint32_t cfg_read(unsigned b, unsigned d, unsigned f, unsigned reg, unsigned width)
{
    out(0xcf8, 4, 0x80000000u | b << 16 | d << 11 | f << 8 | (reg & 0xfc));
    return (uint32_t)in((uint16_t)(0xcfc + (reg & 3)), width);
}

static void cfg_write(unsigned b, unsigned d, unsigned f, unsigned reg, unsigned width, uint32_t v)
{
    out(0xcf8, 4, 0x80000000u | b << 16 | d << 11 | f << 8 | (reg & 0xfc));
    out((uint16_t)(0xcfc + (reg & 3)), width, v);
}

/* A function that is 256 bytes of RAM and records every access. */
struct fake_fn {
    uint8_t cfg[256];
    unsigned accesses, last_offset, last_width;
};

static uint32_t fake_read(void *dev, unsigned offset, unsigned width)
{
    struct fake_fn *f = dev;
    assert_true(offset % width == 0);
    f->accesses++;
    f->last_offset = offset;
    f->last_width = width;
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint32_t)f->cfg[offset + i] << (8 * i);
    return v;
}

static void fake_write(void *dev, unsigned offset, unsigned width, uint32_t value)
{
    struct fake_fn *f = dev;
    assert_true(offset % width == 0);
    f->accesses++;
    f->last_offset = offset;
    f->last_width = width;
    for (unsigned i = 0; i < width; i++)
        f->cfg[offset + i] = (uint8_t)(value >> (8 * i));
}

static const struct pci_function_ops fake_ops = {.read = fake_read, .write = fake_write};

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    capture_reset();
    memset(&pm, 0, sizeof(pm));
    assert_int_equal(pci_host_attach(&host, bus, &acpi_pm_rcr_ops, &pm, "pc"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

/* arch/x86/pci/direct.c: pci_check_type1(). */
static void test_linux_type1_probe(void **state)
{
    (void)state;
    out(0xcfb, 1, 0x01);
    uint32_t saved = (uint32_t)in(0xcf8, 4);
    out(0xcf8, 4, 0x80000000u);
    assert_int_equal(in(0xcf8, 4), 0x80000000u);
    out(0xcf8, 4, saved);
    /* Reserved bits read back 0. */
    out(0xcf8, 4, 0xffffffffu);
    assert_int_equal(in(0xcf8, 4), PCI_ADDR_MASK);
    assert_int_equal(capture_count(), 0);
}

static void test_host_bridge_ids(void **state)
{
    (void)state;
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);
    assert_int_equal(cfg_read(0, 0, 0, 0x08, 4), 0x06000002);
    assert_int_equal(cfg_read(0, 0, 0, 0x04, 4), 0x02800006);
    assert_int_equal(cfg_read(0, 0, 0, 0x0e, 1), 0x00);
    assert_int_equal(cfg_read(0, 0, 0, 0x2c, 4), 0x11001af4);
    /* Any width at any offset of the window. */
    assert_int_equal(cfg_read(0, 0, 0, 0x02, 2), 0x1237);
    assert_int_equal(cfg_read(0, 0, 0, 0x01, 1), 0x80);
    assert_int_equal(cfg_read(0, 0, 0, 0x0b, 1), 0x06);
    out(0xcf8, 4, 0x80000000u);
    assert_int_equal(in(0xcfd, 2), 0x3780); /* unaligned: bytes 1 and 2 */
    assert_int_equal(cfg_read(0, 0, 0, 0x50, 4), 0);
}

static void test_read_only_registers(void **state)
{
    (void)state;
    cfg_write(0, 0, 0, 0x00, 4, 0xffffffffu);
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);
    /* BAR sizing: all-ones written, 0 read back, so no BAR. */
    for (unsigned bar = 0x10; bar <= 0x24; bar += 4) {
        cfg_write(0, 0, 0, bar, 4, 0xffffffffu);
        assert_int_equal(cfg_read(0, 0, 0, bar, 4), 0);
    }
    cfg_write(0, 0, 0, 0x04, 2, 0x0000);
    assert_int_equal(cfg_read(0, 0, 0, 0x04, 2), 0x0006);
    cfg_write(0, 0, 0, 0x0c, 4, 0xffff4010u); /* cache line and latency: writable */
    assert_int_equal(cfg_read(0, 0, 0, 0x0c, 4), 0x00004010);
    assert_int_equal(capture_count(), 0);
}

static void test_absent_functions_read_ones(void **state)
{
    (void)state;
    assert_int_equal(cfg_read(0, 1, 0, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(0, 0, 3, 0x00, 2), 0xffff);
    assert_int_equal(cfg_read(1, 0, 0, 0x00, 4), 0xffffffffu);
    assert_int_equal(cfg_read(0, 31, 7, 0xfc, 1), 0xff);
    cfg_write(0, 1, 0, 0x04, 2, 0x0007); /* dropped */
    /* The enable bit clear: the window reaches nothing. */
    out(0xcf8, 4, 0x00000000u);
    assert_int_equal(in(0xcfc, 4), 0xffffffffu);
    out(0xcfc, 4, 0);
    assert_int_equal(cfg_read(0, 0, 0, 0x00, 4), 0x12378086);
    assert_int_equal(capture_count(), 0);
}

static void test_registered_function(void **state)
{
    (void)state;
    static struct fake_fn fn;
    memset(&fn, 0, sizeof(fn));
    fn.cfg[0] = 0xf4;
    fn.cfg[1] = 0x1a;
    fn.cfg[2] = 0x41;
    fn.cfg[3] = 0x10;
    assert_int_equal(pci_host_add_function(&host, 0, 3, 0, &fake_ops, &fn, "virtio-test"), 0);
    assert_int_equal(cfg_read(0, 3, 0, 0x00, 4), 0x10411af4);
    assert_int_equal(fn.last_width, 4);
    cfg_write(0, 3, 0, 0x3c, 1, 0x0b);
    assert_int_equal(fn.last_offset, 0x3c);
    assert_int_equal(fn.cfg[0x3c], 0x0b);
    cfg_write(0, 3, 0, 0x12, 2, 0xbeef);
    assert_int_equal(fn.last_offset, 0x12);
    assert_int_equal(fn.last_width, 2);
    assert_int_equal(cfg_read(0, 3, 0, 0x10, 4), 0xbeef0000u);
    /* An unaligned word becomes two byte accesses. */
    unsigned before = fn.accesses;
    out(0xcf8, 4, 0x80000000u | 3 << 11 | 0x10);
    out(0xcfd, 2, 0x1234);
    assert_int_equal(fn.accesses, before + 2);
    assert_int_equal(fn.last_width, 1);
    assert_int_equal(cfg_read(0, 3, 0, 0x10, 4), 0xbe123400u);
    /* The direct interface says the same. */
    assert_int_equal(pci_host_config_read(&host, PCI_BDF(0, 3, 0), 0, 2), 0x1af4);
    assert_int_equal(pci_host_config_read(&host, PCI_BDF(0, 4, 0), 0, 2), 0xffff);
}

static void test_add_function_refusals(void **state)
{
    (void)state;
    static struct fake_fn fn;
    assert_int_equal(pci_host_add_function(&host, 0, 0, 0, &fake_ops, &fn, "imposter"), -BUS_EOVERLAP);
    assert_logged("PCI imposter at 00:00.0 not added: the address is taken by host bridge");
    assert_int_equal(pci_host_add_function(&host, 0, 32, 0, &fake_ops, &fn, "bad"), -BUS_EINVAL);
    assert_int_equal(pci_host_add_function(&host, 0, 1, 8, &fake_ops, &fn, "bad"), -BUS_EINVAL);
    static const struct pci_function_ops half = {.read = fake_read};
    assert_int_equal(pci_host_add_function(&host, 0, 1, 0, &half, &fn, "half"), -BUS_EINVAL);
    for (unsigned i = 1; i < PCI_HOST_MAX_FUNCTIONS; i++)
        assert_int_equal(pci_host_add_function(&host, 0, i, 0, &fake_ops, &fn, "many"), 0);
    assert_int_equal(pci_host_add_function(&host, 1, 0, 0, &fake_ops, &fn, "one more"), -BUS_EFULL);
}

static void test_cf9_goes_to_reset_control(void **state)
{
    (void)state;
    out(0xcf8, 4, 0x80001234u & PCI_ADDR_MASK);
    out(0xcf9, 1, 0x02);
    assert_int_equal(in(0xcf9, 1), 0x02);
    assert_int_equal(in(0xcf8, 4), 0x80001234u & PCI_ADDR_MASK); /* the address register is untouched */
    uint64_t v = ACPI_PM_RESET_VALUE;
    assert_int_equal(bus_action(vm_bus_pio(bus, 0xcf9, 1, true, &v)), BUS_RESET);
    /* Other narrow accesses reach nothing. */
    assert_int_equal(in(0xcf8, 1), 0xff);
    assert_int_equal(in(0xcfa, 2), 0xffff);
    /* Without a reset control register, 0xCF9 is nothing too. */
    free(bus);
    bus = calloc(1, sizeof(*bus));
    vm_bus_init(bus, "pc");
    assert_int_equal(pci_host_attach(&host, bus, NULL, NULL, "pc"), 0);
    out(0xcf9, 1, 0x06);
    assert_int_equal(in(0xcf9, 1), 0xff);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_linux_type1_probe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_host_bridge_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_registers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_functions_read_ones, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registered_function, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_function_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cf9_goes_to_reset_control, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
