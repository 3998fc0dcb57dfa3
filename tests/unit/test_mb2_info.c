/* Host tests for the Multiboot2 information parser (boot/multiboot2/mb2_info.c): tag
 * lists built in memory the way GRUB lays them out.
 * SOURCES: boot/multiboot2/mb2_info.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "boot/bootinfo.h"
#include "boot/multiboot2/mb2_info.h"
#include "vmm/lib/config.h"

/* An information block: total size, reserved, then 8-byte aligned tags. */
struct mb2_builder {
    uint8_t bytes[64 * 1024] __attribute__((aligned(8)));
    size_t len;
};

static void mb_begin(struct mb2_builder *b)
{
    memset(b->bytes, 0, sizeof(b->bytes));
    b->len = 8;
}

static void *mb_tag(struct mb2_builder *b, uint32_t type, uint32_t size)
{
    assert_true(b->len + size + 8 <= sizeof(b->bytes));
    uint8_t *t = b->bytes + b->len;
    memcpy(t, &type, 4);
    memcpy(t + 4, &size, 4);
    b->len += (size + 7) & ~7u;
    return t;
}

static void mb_module(struct mb2_builder *b, uint32_t start, uint32_t end, const char *name)
{
    uint32_t size = 16 + (uint32_t)strlen(name) + 1;
    uint8_t *t = mb_tag(b, 3, size);
    memcpy(t + 8, &start, 4);
    memcpy(t + 12, &end, 4);
    memcpy(t + 16, name, strlen(name) + 1);
}

static void mb_string(struct mb2_builder *b, uint32_t type, const char *s)
{
    uint8_t *t = mb_tag(b, type, 8 + (uint32_t)strlen(s) + 1);
    memcpy(t + 8, s, strlen(s) + 1);
}

static void mb_end(struct mb2_builder *b)
{
    mb_tag(b, 0, 8);
    uint32_t total = (uint32_t)b->len;
    memcpy(b->bytes, &total, 4);
}

static struct mb2_builder builder;
static struct bootinfo bi;

static void parse(void)
{
    memset(&bi, 0, sizeof(bi));
    mb2_parse_tags(&bi, (uintptr_t)builder.bytes);
}

/* Sixteen VMs, each with its own image, plus keel.cfg: seventeen modules, all kept. */
static void test_sixteen_images_and_config(void **state)
{
    (void)state;
    char name[32];
    mb_begin(&builder);
    mb_module(&builder, 0x100000, 0x100100, "keel.cfg");
    for (uint32_t i = 0; i < MAX_VMS; i++) {
        snprintf(name, sizeof(name), "guest%u.elf", i);
        mb_module(&builder, 0x200000 + i * 0x10000, 0x200000 + i * 0x10000 + 0x1234, name);
    }
    mb_end(&builder);
    parse();
    assert_int_equal(bi.module_count, MAX_VMS + 1);
    assert_int_equal(bi.modules_dropped, 0);
    assert_int_equal(bi.config, 0x100000);
    assert_int_equal(bi.config_len, 0x100);
    for (uint32_t i = 0; i < MAX_VMS; i++) {
        snprintf(name, sizeof(name), "guest%u.elf", i);
        assert_string_equal(bi.modules[i + 1].name, name);
        assert_int_equal(bi.modules[i + 1].base, 0x200000 + i * 0x10000);
        assert_int_equal(bi.modules[i + 1].size, 0x1234);
    }
}

/* Past the limit the rest are counted, and keel.cfg is still found when it comes last. */
static void test_modules_past_the_limit(void **state)
{
    (void)state;
    char name[32];
    uint32_t extra = 7;
    mb_begin(&builder);
    for (uint32_t i = 0; i < BOOTINFO_MAX_MODULES + extra; i++) {
        snprintf(name, sizeof(name), "m%u", i);
        mb_module(&builder, 0x300000 + i * 0x1000, 0x300000 + i * 0x1000 + 16, name);
    }
    mb_module(&builder, 0x900000, 0x900040, "/boot/keel.cfg");
    mb_end(&builder);
    parse();
    assert_int_equal(bi.module_count, BOOTINFO_MAX_MODULES);
    assert_int_equal(bi.modules_dropped, extra + 1);
    assert_string_equal(bi.modules[BOOTINFO_MAX_MODULES - 1].name, "m63");
    assert_int_equal(bi.config, 0x900000);
    assert_int_equal(bi.config_len, 0x40);
}

/* Command line, loader name and memory map; a module whose end lies before its start
 * and a tag running past the block are not taken. */
static void test_other_tags_and_bad_modules(void **state)
{
    (void)state;
    mb_begin(&builder);
    mb_string(&builder, 1, "console=com1,e9 on_idle=halt");
    mb_string(&builder, 2, "GRUB 2.06");
    uint8_t *mm = mb_tag(&builder, 6, 16 + 3 * 24);
    uint32_t esize = 24, ever = 0;
    memcpy(mm + 8, &esize, 4);
    memcpy(mm + 12, &ever, 4);
    const struct { uint64_t base, len; uint32_t type; } e[3] = {
        {0x100000, 0xff00000, 1}, {0, 0x9f000, 1}, {0xfec00000, 0x1000, 2},
    };
    for (int i = 0; i < 3; i++) {
        memcpy(mm + 16 + i * 24, &e[i].base, 8);
        memcpy(mm + 24 + i * 24, &e[i].len, 8);
        memcpy(mm + 32 + i * 24, &e[i].type, 4);
    }
    mb_module(&builder, 0x500000, 0x400000, "backwards.elf");
    mb_module(&builder, 0x600000, 0x600010, "good.elf");
    mb_end(&builder);
    parse();
    assert_string_equal(bi.cmdline, "console=com1,e9 on_idle=halt");
    assert_string_equal(bi.loader_name, "GRUB 2.06");
    assert_int_equal(bi.mem_count, 3);
    assert_int_equal(bi.mem[0].base, 0);
    assert_int_equal(bi.mem[1].base, 0x100000);
    assert_int_equal(bi.mem[2].type, MEM_RESERVED);
    assert_int_equal(bi.module_count, 1);
    assert_string_equal(bi.modules[0].name, "good.elf");
    assert_int_equal(bi.config, 0);

    /* A module tag claiming more bytes than the block holds ends the walk. */
    mb_begin(&builder);
    mb_module(&builder, 0x600000, 0x600010, "first.elf");
    uint8_t *t = builder.bytes + builder.len;
    mb_module(&builder, 0x700000, 0x700010, "cut.elf");
    uint32_t huge = 0x10000;
    memcpy(t + 4, &huge, 4);
    mb_end(&builder);
    parse();
    assert_int_equal(bi.module_count, 1);
    assert_string_equal(bi.modules[0].name, "first.elf");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sixteen_images_and_config),
        cmocka_unit_test(test_modules_past_the_limit),
        cmocka_unit_test(test_other_tags_and_bad_modules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
