/* QEMU's fw_cfg (vmm/dev/fw_cfg.c) through its ports on a real bus, read the way a
 * kernel written for QEMU reads it: the signature, ID, CPU counts, RAM size, and the
 * file directory's exact bytes. */
/* SOURCES: vmm/dev/fw_cfg.c vmm/dev/bus.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/fw_cfg.h"
#include "tests/unit/console_capture.h"

static struct vm_bus *bus;
static struct fw_cfg fc;

static void outw(uint16_t port, uint16_t v)
{
    uint64_t value = v;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, 2, true, &value)), BUS_DONE);
}

static uint8_t inb(uint16_t port)
{
    uint64_t value = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, 1, false, &value)), BUS_DONE);
    return (uint8_t)value;
}

static void read_item(uint16_t key, uint8_t *buf, size_t n)
{
    outw(0x510, key);
    for (size_t i = 0; i < n; i++)
        buf[i] = inb(0x511);
}

static uint64_t read_le(uint16_t key, unsigned n)
{
    uint8_t b[8];
    read_item(key, b, n);
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static int setup(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "pc");
    capture_reset();
    assert_int_equal(fw_cfg_attach(&fc, bus, 4, 8, 512ull << 20, "pc"), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(bus);
    return 0;
}

static void test_signature_id_and_counts(void **state)
{
    (void)state;
    uint8_t sig[5];
    read_item(FW_CFG_SIGNATURE, sig, 5);
    assert_memory_equal(sig, "QEMU\0", 5); /* past the end: zero */
    assert_int_equal(read_le(FW_CFG_ID, 4), 1);
    assert_int_equal(read_le(FW_CFG_NB_CPUS, 2), 4);
    assert_int_equal(read_le(FW_CFG_MAX_CPUS, 2), 8);
    assert_int_equal(read_le(FW_CFG_RAM_SIZE, 8), 512ull << 20);
    /* Selecting again starts the item over. */
    assert_int_equal(read_le(FW_CFG_NB_CPUS, 2), 4);
    /* The write-channel bit selects the same item for reading. */
    assert_int_equal(read_le(FW_CFG_WRITE_CHANNEL | FW_CFG_NB_CPUS, 2), 4);
    assert_int_equal(capture_count(), 0);
}

static void test_empty_directory(void **state)
{
    (void)state;
    uint8_t b[6];
    read_item(FW_CFG_FILE_DIR, b, 6);
    static const uint8_t want[6] = {0, 0, 0, 0, 0, 0};
    assert_memory_equal(b, want, 6);
}

static const uint8_t e820[40] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const char bootorder[3] = "a\nb";
static const uint8_t tables[0x1234];

static void test_directory_bytes(void **state)
{
    (void)state;
    assert_int_equal(fw_cfg_add_file(&fc, "etc/e820", e820, sizeof(e820)), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "bootorder", bootorder, sizeof(bootorder)), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "etc/acpi/tables", tables, sizeof(tables)), 0);
    uint8_t dir[4 + 3 * 64 + 1];
    read_item(FW_CFG_FILE_DIR, dir, sizeof(dir));
    uint8_t want[sizeof(dir)];
    memset(want, 0, sizeof(want));
    want[3] = 3; /* big-endian count */
    /* Sorted by name; selectors 0x20 on in that order. Each: be32 size, be16 select,
     * be16 reserved, name[56]. */
    uint8_t *e = want + 4;
    e[3] = 3;
    e[5] = 0x20;
    memcpy(e + 8, "bootorder", 9);
    e += 64;
    e[2] = 0x12;
    e[3] = 0x34;
    e[5] = 0x21;
    memcpy(e + 8, "etc/acpi/tables", 15);
    e += 64;
    e[3] = 40;
    e[5] = 0x22;
    memcpy(e + 8, "etc/e820", 8);
    assert_memory_equal(dir, want, sizeof(dir));
    assert_int_equal(fw_cfg_file_select(&fc, "etc/e820"), 0x22);
    assert_int_equal(fw_cfg_file_select(&fc, "etc/none"), -1);
    uint8_t data[41];
    read_item(0x22, data, sizeof(data));
    assert_memory_equal(data, e820, 40);
    assert_int_equal(data[40], 0);
    read_item(0x20, data, 3);
    assert_memory_equal(data, "a\nb", 3);
}

static void test_unknown_keys_logged_once(void **state)
{
    (void)state;
    uint8_t b[16];
    read_item(0x0002, b, 16); /* UUID: not provided */
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(b[i], 0);
    assert_logged("fw_cfg: unknown key 0x0002 selected; it reads as zeros");
    read_item(0x8003, b, 4); /* an x86 arch-local key */
    read_item(0x0020, b, 4); /* no files yet */
    assert_int_equal(b[0], 0);
    assert_int_equal(capture_count(), 1);
    assert_int_equal(fc.unknown_selects, 3);
}

static void test_bad_accesses_logged_once(void **state)
{
    (void)state;
    uint64_t v = 0;
    vm_bus_pio(bus, 0x510, 2, false, &v);
    assert_int_equal(v & 0xffff, 0xffff);
    assert_logged("the selector (0x510) read");
    v = 0x05;
    vm_bus_pio(bus, 0x510, 1, true, &v); /* a byte: not a select */
    v = 0x55;
    outw(0x510, FW_CFG_WRITE_CHANNEL | FW_CFG_NB_CPUS);
    vm_bus_pio(bus, 0x511, 1, true, &v);
    vm_bus_pio(bus, 0x511, 1, true, &v);
    assert_logged("data port write (key 0x4005) ignored");
    assert_int_equal(capture_count(), 2);
    assert_int_equal(read_le(FW_CFG_NB_CPUS, 2), 4);
}

static void test_add_file_refusals(void **state)
{
    (void)state;
    char longname[FW_CFG_MAX_FILE_PATH + 1];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    assert_int_equal(fw_cfg_add_file(&fc, longname, e820, 1), -BUS_EINVAL);
    assert_logged("names are 1 to 55 characters");
    assert_int_equal(fw_cfg_add_file(&fc, "", e820, 1), -BUS_EINVAL);
    assert_int_equal(fw_cfg_add_file(&fc, "etc/e820", e820, 1), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "etc/e820", e820, 1), -BUS_EINVAL);
    assert_logged("a file of that name exists");
    char name[16];
    for (unsigned i = 1; i < FW_CFG_MAX_FILES; i++) {
        snprintf(name, sizeof(name), "f%02u", i);
        assert_int_equal(fw_cfg_add_file(&fc, name, e820, 1), 0);
    }
    assert_int_equal(fw_cfg_add_file(&fc, "one/more", e820, 1), -BUS_EFULL);
    assert_int_equal(read_le(FW_CFG_FILE_DIR, 4), (uint64_t)FW_CFG_MAX_FILES << 24);
    free(bus);
    bus = calloc(1, sizeof(*bus));
    vm_bus_init(bus, "pc");
    assert_int_equal(fw_cfg_attach(&fc, bus, 0, 1, 1 << 20, "pc"), -BUS_EINVAL);
    assert_int_equal(fw_cfg_attach(&fc, bus, 4, 2, 1 << 20, "pc"), -BUS_EINVAL);
    assert_logged("bad CPU counts");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_signature_id_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_accesses_logged_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_file_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
