/* Host tests for PCI config decoding and ECAM enumeration (drivers/pci.c). A heap
 * buffer stands in for the ECAM window; the port path needs real hardware.
 * SOURCES: drivers/pci.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "drivers/pci.h"
#include "arch/x86/paging.h"
#include "tests/unit/console_capture.h"

static bool map_ok = true;
static hpa_t mapped_base;
static uint64_t mapped_size;

bool paging_map_mmio(hpa_t base, uint64_t size)
{
    mapped_base = base;
    mapped_size = size;
    return map_ok;
}

/* ---- fake ECAM ---------------------------------------------------------------------------- */

static uint8_t *ecam;
static size_t ecam_size;

static uint8_t *cfg(uint8_t bus_index, uint8_t dev, uint8_t fn)
{
    return ecam + pci_ecam_offset(bus_index, dev, fn, 0);
}

static void put_fn(uint8_t bus_index, uint8_t dev, uint8_t fn, uint16_t vendor, uint16_t device,
                   uint8_t cls, uint8_t sub, uint8_t pi, uint8_t header)
{
    uint8_t *c = cfg(bus_index, dev, fn);
    memset(c, 0, 64);
    uint32_t id = (uint32_t)device << 16 | vendor;
    uint32_t cc = (uint32_t)cls << 24 | (uint32_t)sub << 16 | (uint32_t)pi << 8 | 0x02;
    memcpy(c + 0, &id, 4);
    memcpy(c + 8, &cc, 4);
    c[PCI_HEADER_TYPE] = header;
}

static int setup(void **state)
{
    (void)state;
    capture_reset();
    map_ok = true;
    ecam_size = 2u << 20; /* buses 0 and 1 */
    ecam = malloc(ecam_size);
    memset(ecam, 0xff, ecam_size); /* absent functions read all ones */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ecam);
    return 0;
}

static struct acpi_info acpi_with(hpa_t base, uint16_t seg, uint8_t start, uint8_t end)
{
    struct acpi_info a;
    memset(&a, 0, sizeof a);
    a.have_mcfg = true;
    a.mcfg_count = 1;
    a.mcfg[0] = (struct acpi_mcfg_seg){.base = base, .segment = seg, .start_bus = start,
                                       .end_bus = end};
    return a;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_address_encoding(void **state)
{
    (void)state;
    assert_int_equal(pci_ecam_offset(0, 0x1f, 2, 0x10), (0x1fu << 15) | (2u << 12) | 0x10);
    assert_int_equal(pci_ecam_offset(0xff, 31, 7, 0xfff), 0xfffffffull);
    assert_int_equal(pci_ecam_offset(3, 0, 0, 0x100), (3u << 20) | 0x100);
    assert_int_equal(pci_cf8_address(0, 0x1f, 2, 0x0b), 0x8000fa08u);
    assert_int_equal(pci_cf8_address(0xff, 31, 7, 0xff), 0x80fffffcu);
}

static void test_decode_header(void **state)
{
    (void)state;
    const uint32_t hdr[4] = {0x29228086, 0x02b00007, 0x01060102, 0x00800000};
    struct pci_device d;
    struct pci_addr a = {.seg = 0, .bus = 0, .dev = 0x1f, .fn = 2};
    pci_decode_header(a, hdr, &d);
    assert_int_equal(d.vendor, 0x8086);
    assert_int_equal(d.device, 0x2922);
    assert_int_equal(d.class_code, 0x01);
    assert_int_equal(d.subclass, 0x06);
    assert_int_equal(d.prog_if, 0x01);
    assert_int_equal(d.revision, 0x02);
    assert_int_equal(d.header_type, 0);
    assert_true(d.multifunction);
    assert_int_equal(d.addr.dev, 0x1f);
    assert_int_equal(d.addr.fn, 2);
}

static hpa_t ecam_pa(void)
{
    return (hpa_t)(uintptr_t)ecam;
}

static void populate(void)
{
    put_fn(0, 0, 0, 0x8086, 0x29c0, 0x06, 0x00, 0x00, 0x00);
    put_fn(0, 0x1f, 0, 0x8086, 0x2918, 0x06, 0x01, 0x00, 0x80); /* multi-function */
    put_fn(0, 0x1f, 2, 0x8086, 0x2922, 0x01, 0x06, 0x01, 0x00);
    put_fn(0, 0x1f, 3, 0x8086, 0x2930, 0x0c, 0x05, 0x00, 0x00);
    put_fn(0, 0x02, 0, 0x1234, 0x1111, 0x03, 0x00, 0x00, 0x00); /* single-function ... */
    put_fn(0, 0x02, 1, 0x1234, 0x2222, 0x03, 0x80, 0x00, 0x00); /* ... so fn 1 is not scanned */
    put_fn(0, 0x03, 0, 0x0000, 0x0000, 0x00, 0x00, 0x00, 0x00); /* vendor 0: absent */
    put_fn(1, 0x00, 0, 0x1af4, 0x1041, 0x02, 0x00, 0x00, 0x01);
}

static void test_enumerate_ecam(void **state)
{
    (void)state;
    populate();
    struct acpi_info a = acpi_with(ecam_pa(), 0, 0, 1);
    pci_init(&a);
    assert_true(pci_using_ecam());
    assert_int_equal(mapped_base, ecam_pa());
    assert_int_equal(mapped_size, 2u << 20);

    capture_reset();
    assert_int_equal(pci_enumerate(), 6);
    assert_int_equal(capture_count(), 7);
    /* Scan order: bus, device, function. */
    assert_string_equal(capture_line(0), "PCI: 0000:00:00.0 8086:29c0 class 06.00.00");
    assert_string_equal(capture_line(1), "PCI: 0000:00:02.0 1234:1111 class 03.00.00");
    assert_string_equal(capture_line(2), "PCI: 0000:00:1f.0 8086:2918 class 06.01.00");
    assert_string_equal(capture_line(3), "PCI: 0000:00:1f.2 8086:2922 class 01.06.01");
    assert_string_equal(capture_line(4), "PCI: 0000:00:1f.3 8086:2930 class 0c.05.00");
    assert_string_equal(capture_line(5), "PCI: 0000:01:00.0 1af4:1041 class 02.00.00");
    assert_string_equal(capture_line(6), "PCI: 6 devices");

    assert_int_equal(pci_device_count(), 6);
    const struct pci_device *d = pci_device_at(2);
    assert_non_null(d);
    assert_int_equal(d->addr.dev, 0x1f);
    assert_true(d->multifunction);
    d = pci_device_at(5);
    assert_int_equal(d->addr.bus, 1);
    assert_int_equal(d->header_type, 1);
    assert_false(d->multifunction);
    assert_null(pci_device_at(6));

    size_t cursor = 0;
    d = pci_find_class(0x01, 0x06, &cursor);
    assert_non_null(d);
    assert_int_equal(d->device, 0x2922);
    assert_null(pci_find_class(0x01, 0x06, &cursor));
}

static void test_config_access(void **state)
{
    (void)state;
    populate();
    struct acpi_info a = acpi_with(ecam_pa(), 0, 0, 1);
    pci_init(&a);
    struct pci_addr sata = {.seg = 0, .bus = 0, .dev = 0x1f, .fn = 2};
    assert_int_equal(pci_read32(sata, 0), 0x29228086u);
    assert_int_equal(pci_read16(sata, 2), 0x2922);
    assert_int_equal(pci_read8(sata, PCI_CLASS), 0x01);
    assert_int_equal(pci_read8(sata, PCI_PROG_IF), 0x01);

    pci_write16(sata, PCI_COMMAND, 0x0007);
    assert_int_equal(cfg(0, 0x1f, 2)[PCI_COMMAND], 0x07);
    pci_write32(sata, 0x100, 0xdeadbeef); /* extended config space is reachable via ECAM */
    assert_int_equal(pci_read32(sata, 0x100), 0xdeadbeefu);
    pci_write8(sata, 0x41, 0x5a);
    assert_int_equal(pci_read8(sata, 0x41), 0x5a);

    /* Misaligned, out of range, or on a segment no window covers: all ones, no access. */
    assert_int_equal(pci_read16(sata, 1), 0xffff);
    assert_int_equal(pci_read32(sata, 2), 0xffffffffu);
    assert_int_equal(pci_read32(sata, 0x1000), 0xffffffffu);
    struct pci_addr bad_dev = {.seg = 0, .bus = 0, .dev = 32, .fn = 0};
    assert_int_equal(pci_read32(bad_dev, 0), 0xffffffffu);
    struct pci_addr other_seg = {.seg = 1, .bus = 0, .dev = 0, .fn = 0};
    assert_int_equal(pci_read32(other_seg, 0), 0xffffffffu);
    pci_write32(sata, 2, 0);
    assert_int_equal(pci_read32(sata, 0), 0x29228086u);
}

static void test_ecam_start_bus(void **state)
{
    (void)state;
    /* A window for buses 0x20-0x21: the MCFG base is where bus 0 would be. */
    put_fn(1, 0x05, 0, 0x8086, 0x10d3, 0x02, 0x00, 0x00, 0x00);
    hpa_t base = ecam_pa() - (0x20ull << 20);
    struct acpi_info a = acpi_with(base, 2, 0x20, 0x21);
    pci_init(&a);
    assert_int_equal(mapped_base, ecam_pa());
    assert_int_equal(mapped_size, 2u << 20);
    capture_reset();
    assert_int_equal(pci_enumerate(), 1);
    assert_string_equal(capture_line(0), "PCI: 0002:21:05.0 8086:10d3 class 02.00.00");
}

static void test_map_failure(void **state)
{
    (void)state;
    map_ok = false;
    struct acpi_info a = acpi_with(ecam_pa(), 0, 0, 1);
    pci_init(&a);
    assert_false(pci_using_ecam());
    char want[CONSOLE_LINE_MAX];
    snprintf(want, sizeof want, "PCI: cannot map ECAM for segment 0 at 0x%lx (2 MiB), segment "
             "skipped", (unsigned long)ecam_pa());
    assert_logged_line(want);
    assert_logged_line("PCI: no usable ECAM window, using configuration ports 0xcf8/0xcfc");
}

static void test_no_mcfg(void **state)
{
    (void)state;
    pci_init(NULL);
    assert_false(pci_using_ecam());
    assert_logged_line("PCI: no MCFG, using configuration ports 0xcf8/0xcfc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        T(test_address_encoding),
        T(test_decode_header),
        T(test_enumerate_ecam),
        T(test_config_access),
        T(test_ecam_start_bus),
        T(test_map_failure),
        T(test_no_mcfg),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
