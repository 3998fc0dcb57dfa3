/* Host tests for the UEFI loader's firmware-independent parts: the memory map
 * conversion, the core ELF loader, the hand-over page tables, the VT-x decision and the
 * ExitBootServices retry loop (against a fake firmware).
 * SOURCES: boot/uefi/memmap.c boot/uefi/elf_load.c boot/uefi/handover_paging.c boot/uefi/vmx_check.c boot/uefi/exit_retry.c vmm/lib/string.c
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
#include "boot/uefi/elf_load.h"
#include "boot/uefi/exit_retry.h"
#include "boot/uefi/handover_paging.h"
#include "boot/uefi/memmap.h"
#include "boot/uefi/uefi_mem_types.h"
#include "boot/uefi/vmx_check.h"
#include "arch/x86/msr.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* ---- memory map -------------------------------------------------------------- */

/* OVMF and most firmware use 48-byte descriptors: 8 bytes more than the spec's. */
#define DESC_SIZE 48

struct fake_map {
    uint8_t bytes[256 * DESC_SIZE];
    size_t n;
};

static void add_desc(struct fake_map *m, uint32_t type, uint64_t base, uint64_t pages)
{
    struct uefi_mem_desc d = { .type = type, .phys_start = base, .num_pages = pages };
    uint8_t *p = m->bytes + m->n * DESC_SIZE;
    memset(p, 0xee, DESC_SIZE); /* the padding must be ignored */
    memcpy(p, &d, sizeof(d));
    m->n++;
}

/* Sorted, non-empty, non-overlapping, and no two touching ranges of one type. */
static void check_map_invariants(const struct mem_region *r, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        assert_true(r[i].length > 0);
        if (i) {
            assert_true(r[i - 1].base + r[i - 1].length <= r[i].base);
            if (r[i - 1].base + r[i - 1].length == r[i].base)
                assert_int_not_equal(r[i - 1].type, r[i].type);
        }
    }
}

static void expect_region(const struct mem_region *r, uint64_t base, uint64_t length, uint32_t type)
{
    assert_int_equal(r->base, base);
    assert_int_equal(r->length, length);
    assert_int_equal(r->type, type);
}

static void test_memmap_handover_types_sorted_merged(void **state)
{
    (void)state;
    static struct fake_map m;
    m.n = 0;
    /* Deliberately out of order. */
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x100000, 0x10);
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x0, 0x9f);
    add_desc(&m, UEFI_MT_BOOT_SERVICES_CODE, 0x110000, 0x2);
    add_desc(&m, UEFI_MT_LOADER_CODE, 0x112000, 0x1);
    add_desc(&m, UEFI_MT_LOADER_DATA, 0x113000, 0x1);
    add_desc(&m, UEFI_MT_RUNTIME_SERVICES_DATA, 0x114000, 0x1);
    add_desc(&m, UEFI_MT_RUNTIME_SERVICES_CODE, 0x115000, 0x1);
    add_desc(&m, UEFI_MT_ACPI_RECLAIM, 0x116000, 0x1);
    add_desc(&m, UEFI_MT_ACPI_NVS, 0x117000, 0x1);
    add_desc(&m, UEFI_MT_UNUSABLE, 0x118000, 0x1);
    add_desc(&m, UEFI_MT_PERSISTENT, 0x119000, 0x1);
    add_desc(&m, 0x70000001, 0x11a000, 0x1); /* OEM type */
    add_desc(&m, UEFI_MT_MMIO, 0xfec00000, 0x1);
    add_desc(&m, UEFI_MT_MMIO_PORT_SPACE, 0xfec01000, 0x1);
    add_desc(&m, UEFI_MT_BOOT_SERVICES_DATA, 0x9f000, 0x1);

    struct mem_region out[32];
    struct memmap_result res;
    assert_true(memmap_from_uefi(out, 32, m.bytes, m.n * DESC_SIZE, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    check_map_invariants(out, res.count);
    assert_int_equal(res.dropped, 0);
    assert_int_equal(res.bad, 0);
    assert_int_equal(res.count, 9);
    expect_region(&out[0], 0x0, 0xa0000, MEM_USABLE); /* conventional + boot services data */
    expect_region(&out[1], 0x100000, 0x13000, MEM_USABLE); /* conventional + BS code + loader code */
    expect_region(&out[2], 0x113000, 0x1000, MEM_BOOT_DATA);
    expect_region(&out[3], 0x114000, 0x2000, MEM_FIRMWARE);
    expect_region(&out[4], 0x116000, 0x1000, MEM_ACPI_RECLAIMABLE);
    expect_region(&out[5], 0x117000, 0x1000, MEM_ACPI_NVS);
    expect_region(&out[6], 0x118000, 0x1000, MEM_UNUSABLE);
    expect_region(&out[7], 0x119000, 0x2000, MEM_RESERVED); /* persistent + OEM */
    expect_region(&out[8], 0xfec00000, 0x2000, MEM_MMIO);
}

static void test_memmap_platform_check_pool(void **state)
{
    (void)state;
    static struct fake_map m;
    m.n = 0;
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x0, 0x9f);
    add_desc(&m, UEFI_MT_BOOT_SERVICES_DATA, 0x100000, 0x100);
    /* The pool sits inside a bigger LoaderData descriptor, as firmware merges them. */
    add_desc(&m, UEFI_MT_LOADER_DATA, 0x200000, 0x3000);
    add_desc(&m, UEFI_MT_LOADER_CODE, 0x3200000, 0x10);
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x3210000, 0x1000);

    struct mem_region out[32];
    struct memmap_result res;
    uint64_t pool = 0x400000, pool_len = 32 * MiB;
    assert_true(memmap_from_uefi(out, 32, m.bytes, m.n * DESC_SIZE, DESC_SIZE, MEMMAP_PLATFORM_CHECK,
                                 pool, pool_len, &res));
    check_map_invariants(out, res.count);
    uint64_t usable = 0;
    for (uint32_t i = 0; i < res.count; i++) {
        if (out[i].type == MEM_USABLE) {
            expect_region(&out[i], pool, pool_len, MEM_USABLE);
            usable += out[i].length;
        }
    }
    assert_int_equal(usable, pool_len);
    expect_region(&out[0], 0x0, 0x9f000, MEM_RESERVED);
    expect_region(&out[1], 0x100000, 0x100000, MEM_FIRMWARE);
    expect_region(&out[2], 0x200000, 0x200000, MEM_BOOT_DATA);
    expect_region(&out[3], pool, pool_len, MEM_USABLE);
    expect_region(&out[4], pool + pool_len, 0x3200000 - pool - pool_len, MEM_BOOT_DATA);
    expect_region(&out[5], 0x3200000, 0x10000, MEM_FIRMWARE);
    expect_region(&out[6], 0x3210000, 0x1000000, MEM_RESERVED);
    assert_int_equal(res.count, 7);
}

static void test_memmap_bad_input(void **state)
{
    (void)state;
    static struct fake_map m;
    struct mem_region out[8];
    struct memmap_result res;

    m.n = 0;
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x1000, 0);                   /* empty */
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0xfffffffffffff000ull, 2);    /* wraps */
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x1000, 1ull << 60);          /* wraps */
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x100000, 1);
    assert_true(memmap_from_uefi(out, 8, m.bytes, m.n * DESC_SIZE, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    assert_int_equal(res.bad, 3);
    assert_int_equal(res.count, 1);
    expect_region(&out[0], 0x100000, 0x1000, MEM_USABLE);

    /* A descriptor size below the spec's layout is refused outright. */
    assert_false(memmap_from_uefi(out, 8, m.bytes, m.n * DESC_SIZE, 16, MEMMAP_HANDOVER, 0, 0, &res));
    assert_int_equal(res.count, 0);
    assert_int_equal(memmap_uefi_top(m.bytes, m.n * DESC_SIZE, 16), 0);

    /* A trailing partial descriptor is not read. */
    assert_true(memmap_from_uefi(out, 8, m.bytes, 4 * DESC_SIZE - 1, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    assert_int_equal(res.count, 0);

    /* An empty map. */
    assert_true(memmap_from_uefi(out, 8, m.bytes, 0, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    assert_int_equal(res.count, 0);
}

static void test_memmap_overlap_and_bridge(void **state)
{
    (void)state;
    static struct fake_map m;
    struct mem_region out[8];
    struct memmap_result res;

    m.n = 0;
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x10000, 0x10);     /* 0x10000-0x20000 */
    add_desc(&m, UEFI_MT_CONVENTIONAL, 0x30000, 0x10);     /* 0x30000-0x40000 */
    add_desc(&m, UEFI_MT_BOOT_SERVICES_DATA, 0x20000, 0x10); /* bridges the two */
    add_desc(&m, UEFI_MT_ACPI_NVS, 0x38000, 0x10);         /* overlaps: the first wins */
    add_desc(&m, UEFI_MT_ACPI_NVS, 0x8000, 0x10);          /* runs into 0x10000: trimmed */
    assert_true(memmap_from_uefi(out, 8, m.bytes, m.n * DESC_SIZE, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    check_map_invariants(out, res.count);
    assert_int_equal(res.count, 3);
    expect_region(&out[0], 0x8000, 0x8000, MEM_ACPI_NVS);
    expect_region(&out[1], 0x10000, 0x30000, MEM_USABLE);
    expect_region(&out[2], 0x40000, 0x8000, MEM_ACPI_NVS);
    assert_int_equal(memmap_uefi_top(m.bytes, m.n * DESC_SIZE, DESC_SIZE), 0x48000);
}

static void test_memmap_overflow_drops(void **state)
{
    (void)state;
    static struct fake_map m;
    struct mem_region out[4];
    struct memmap_result res;

    m.n = 0;
    for (int i = 0; i < 6; i++)
        add_desc(&m, i % 2 ? UEFI_MT_ACPI_NVS : UEFI_MT_CONVENTIONAL, 0x100000 + i * 0x1000ull, 1);
    assert_true(memmap_from_uefi(out, 4, m.bytes, m.n * DESC_SIZE, DESC_SIZE, MEMMAP_HANDOVER, 0, 0, &res));
    assert_int_equal(res.count, 4);
    assert_int_equal(res.dropped, 2);
    check_map_invariants(out, res.count);
}

/* Random non-overlapping maps, shuffled: the result must cover exactly the same
 * bytes with the same types, sorted and fully merged. */
static void test_memmap_random(void **state)
{
    (void)state;
    static struct fake_map m;
    static const uint32_t types[] = { UEFI_MT_CONVENTIONAL, UEFI_MT_BOOT_SERVICES_CODE, UEFI_MT_LOADER_DATA,
                                      UEFI_MT_RUNTIME_SERVICES_DATA, UEFI_MT_ACPI_NVS, UEFI_MT_MMIO };
    srand(1234);
    for (int round = 0; round < 200; round++) {
        struct { uint64_t base, pages; uint32_t type; } d[200];
        size_t n = 1 + rand() % 200;
        uint64_t at = (uint64_t)(rand() % 16) << 12;
        for (size_t i = 0; i < n; i++) {
            at += (uint64_t)(rand() % 3 == 0 ? rand() % 4 : 0) << 12; /* occasional holes */
            d[i].base = at;
            d[i].pages = 1 + rand() % 8;
            d[i].type = types[rand() % ARRAY_SIZE(types)];
            at += d[i].pages << 12;
        }
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = rand() % (i + 1);
            __typeof__(d[0]) t = d[i];
            d[i] = d[j];
            d[j] = t;
        }
        m.n = 0;
        for (size_t i = 0; i < n; i++)
            add_desc(&m, d[i].type, d[i].base, d[i].pages);

        struct mem_region out[BOOTINFO_MAX_MEM];
        struct memmap_result res;
        assert_true(memmap_from_uefi(out, BOOTINFO_MAX_MEM, m.bytes, m.n * DESC_SIZE, DESC_SIZE,
                                     MEMMAP_HANDOVER, 0, 0, &res));
        assert_int_equal(res.dropped, 0);
        check_map_invariants(out, res.count);
        uint64_t in_total = 0, out_total = 0;
        for (size_t i = 0; i < n; i++) {
            in_total += d[i].pages << 12;
            /* Every input page is covered by an output range of the right type. */
            uint32_t want = memmap_type_from_uefi(d[i].type, MEMMAP_HANDOVER);
            bool found = false;
            for (uint32_t k = 0; k < res.count; k++)
                if (out[k].base <= d[i].base && d[i].base + (d[i].pages << 12) <= out[k].base + out[k].length)
                    found = out[k].type == want;
            assert_true(found);
        }
        for (uint32_t k = 0; k < res.count; k++)
            out_total += out[k].length;
        assert_int_equal(in_total, out_total);
    }
}

/* ---- core ELF ---------------------------------------------------------------- */

#define VBASE 0xffffffff80200000ull

struct test_elf {
    uint8_t bytes[0x6000];
    size_t size;
};

static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

static void set_phdr(struct test_elf *e, int i, uint32_t type, uint64_t off, uint64_t vaddr,
                     uint64_t filesz, uint64_t memsz)
{
    uint8_t *p = e->bytes + 64 + i * 56;
    put32(p, type);
    put32(p + 4, 5);
    put64(p + 8, off);
    put64(p + 16, vaddr);
    put64(p + 24, vaddr - 0xffffffff80000000ull);
    put64(p + 32, filesz);
    put64(p + 40, memsz);
    put64(p + 48, 0x1000);
}

static void set_image_header(uint8_t *p, uint64_t vbase, uint64_t end, uint64_t entry)
{
    put64(p, KEEL_IMAGE_MAGIC);
    put64(p + 8, entry);
    put64(p + 16, vbase);
    put64(p + 24, end);
}

/* Like the real core: a .boot segment with the header at 0x10, a code segment, and
 * a data segment whose .bss goes beyond its file bytes. */
static void make_elf(struct test_elf *e)
{
    memset(e, 0, sizeof(*e));
    e->size = 0x4000;
    uint8_t *h = e->bytes;
    memcpy(h, "\177ELF", 4);
    h[4] = 2;
    h[5] = 1;
    h[6] = 1;
    put16(h + 16, 2);    /* ET_EXEC */
    put16(h + 18, 62);   /* x86-64 */
    put32(h + 20, 1);
    put64(h + 24, VBASE + 0x1000);
    put64(h + 32, 64);   /* phoff */
    put16(h + 52, 64);
    put16(h + 54, 56);
    put16(h + 56, 3);
    set_phdr(e, 0, 1, 0x1000, VBASE, 0x100, 0x100);
    set_phdr(e, 1, 1, 0x2000, VBASE + 0x1000, 0x1000, 0x1000);
    set_phdr(e, 2, 1, 0x3000, VBASE + 0x2000, 0x800, 0x3000);
    set_image_header(e->bytes + 0x1010, VBASE, VBASE + 0x5000, VBASE + 0x1040);
    memset(e->bytes + 0x2000, 0xc3, 0x1000);
    memset(e->bytes + 0x3000, 0x5a, 0x800);
}

static void expect_elf_error(struct test_elf *e, const char *fragment)
{
    struct keel_elf_image img;
    const char *why = NULL;
    assert_false(keel_elf_inspect(e->bytes, e->size, &img, &why));
    assert_non_null(why);
    if (!strstr(why, fragment))
        fail_msg("error \"%s\" does not mention \"%s\"", why, fragment);
}

static void test_elf_valid_and_placed(void **state)
{
    (void)state;
    static struct test_elf e;
    make_elf(&e);
    struct keel_elf_image img;
    const char *why = NULL;
    assert_true(keel_elf_inspect(e.bytes, e.size, &img, &why));
    assert_int_equal(img.image_vbase, VBASE);
    assert_int_equal(img.image_end, VBASE + 0x5000);
    assert_int_equal(img.entry64, VBASE + 0x1040);

    uint8_t *dest = malloc(0x5000);
    memset(dest, 0xaa, 0x5000);
    keel_elf_place(e.bytes, &img, dest);
    assert_int_equal(dest[0x10], (uint8_t)KEEL_IMAGE_MAGIC);
    assert_int_equal(dest[0x100], 0);    /* after .boot's file bytes */
    assert_int_equal(dest[0x1000], 0xc3);
    assert_int_equal(dest[0x1fff], 0xc3);
    assert_int_equal(dest[0x2000], 0x5a);
    assert_int_equal(dest[0x27ff], 0x5a);
    for (size_t i = 0x2800; i < 0x5000; i++) /* .bss and the tail are zeroed */
        assert_int_equal(dest[i], 0);
    free(dest);
}

static void test_elf_rejects_broken_headers(void **state)
{
    (void)state;
    static struct test_elf e;

    make_elf(&e);
    e.size = 40;
    expect_elf_error(&e, "too small");

    make_elf(&e);
    e.bytes[1] = 'X';
    expect_elf_error(&e, "bad magic");

    make_elf(&e);
    e.bytes[4] = 1;
    expect_elf_error(&e, "ELF64");

    make_elf(&e);
    put16(e.bytes + 18, 3); /* i386 */
    expect_elf_error(&e, "x86-64");

    make_elf(&e);
    put16(e.bytes + 16, 3); /* ET_DYN */
    expect_elf_error(&e, "x86-64 executable");

    make_elf(&e);
    put16(e.bytes + 54, 32);
    expect_elf_error(&e, "program header");

    make_elf(&e);
    put64(e.bytes + 32, 0x3ff0); /* phoff near the end */
    expect_elf_error(&e, "past the end");

    make_elf(&e);
    put64(e.bytes + 32, UINT64_MAX - 8);
    expect_elf_error(&e, "past the end");

    make_elf(&e);
    put16(e.bytes + 56, 0xffff);
    expect_elf_error(&e, "past the end");
}

static void test_elf_rejects_broken_segments(void **state)
{
    (void)state;
    static struct test_elf e;

    make_elf(&e);
    set_phdr(&e, 2, 1, 0x3000, VBASE + 0x2000, 0x4000, 0x3000);
    expect_elf_error(&e, "more file bytes");

    make_elf(&e);
    set_phdr(&e, 2, 1, 0x3000, VBASE + 0x2000, 0x1001, 0x3000); /* 1 byte past the file */
    expect_elf_error(&e, "past the end of the file");

    make_elf(&e);
    set_phdr(&e, 2, 1, UINT64_MAX - 0x10, VBASE + 0x2000, 0x100, 0x3000);
    expect_elf_error(&e, "past the end of the file");

    make_elf(&e);
    set_phdr(&e, 2, 1, 0x3000, UINT64_MAX - 0x100, 0x800, 0x3000);
    expect_elf_error(&e, "wraps");

    make_elf(&e);
    set_phdr(&e, 2, 1, 0x3000, VBASE + 0x20000000, 0x800, 0x3000);
    expect_elf_error(&e, "256 MiB");

    make_elf(&e);
    for (int i = 0; i < 3; i++)
        set_phdr(&e, i, 4 /* PT_NOTE */, 0x1000, VBASE, 0x100, 0x100);
    expect_elf_error(&e, "no PT_LOAD");
}

static void test_elf_image_header_checks(void **state)
{
    (void)state;
    static struct test_elf e;
    struct keel_elf_image img;
    const char *why;

    make_elf(&e);
    memset(e.bytes + 0x1010, 0, 32);
    expect_elf_error(&e, "KEELIMG1");

    /* Entry outside the image. */
    make_elf(&e);
    set_image_header(e.bytes + 0x1010, VBASE, VBASE + 0x5000, VBASE + 0x9000);
    expect_elf_error(&e, "KEELIMG1");

    /* image_end short of the last segment. */
    make_elf(&e);
    set_image_header(e.bytes + 0x1010, VBASE, VBASE + 0x4000, VBASE + 0x1040);
    expect_elf_error(&e, "KEELIMG1");

    /* Not page aligned. */
    make_elf(&e);
    set_image_header(e.bytes + 0x1010, VBASE - 8, VBASE + 0x5000, VBASE + 0x1040);
    expect_elf_error(&e, "KEELIMG1");

    /* A stray, implausible copy of the magic before the real header is skipped. */
    make_elf(&e);
    set_image_header(e.bytes + 0x1000, 0, 0, 0);
    set_image_header(e.bytes + 0x1020, VBASE, VBASE + 0x5000, VBASE + 0x1040);
    assert_true(keel_elf_inspect(e.bytes, e.size, &img, &why));
    assert_int_equal(img.entry64, VBASE + 0x1040);

    /* The header must start within the first 32 KiB of the image. */
    make_elf(&e);
    memset(e.bytes + 0x1010, 0, 32);
    set_phdr(&e, 2, 1, 0x3000, VBASE + 0x7fe0, 0x800, 0x3000);
    set_image_header(e.bytes + 0x3008, VBASE, VBASE + 0xb000, VBASE + 0x1040); /* ends past 32K */
    expect_elf_error(&e, "KEELIMG1");
    memset(e.bytes + 0x3008, 0, 32);
    set_image_header(e.bytes + 0x3000, VBASE, VBASE + 0xb000, VBASE + 0x1040); /* ends at 32K */
    assert_true(keel_elf_inspect(e.bytes, e.size, &img, &why));
}

/* Random corruption must never make the loader read outside the file (ASan checks)
 * or accept an image whose segments do not fit it. */
static void test_elf_fuzz(void **state)
{
    (void)state;
    static struct test_elf good, e;
    make_elf(&good);
    srand(99);
    for (int round = 0; round < 20000; round++) {
        e = good;
        int flips = 1 + rand() % 4;
        for (int f = 0; f < flips; f++) {
            /* Mostly the headers, where the interesting fields are. */
            size_t at = rand() % 4 ? (size_t)(rand() % (64 + 3 * 56)) : (size_t)(0x1010 + rand() % 32);
            e.bytes[at] = (uint8_t)rand();
        }
        e.size = rand() % 8 ? good.size : (size_t)(rand() % good.size);
        uint8_t *copy = malloc(e.size ? e.size : 1);
        memcpy(copy, e.bytes, e.size);
        struct keel_elf_image img;
        const char *why = NULL;
        if (keel_elf_inspect(copy, e.size, &img, &why)) {
            uint64_t size = img.image_end - img.image_vbase;
            assert_true(size <= KEEL_ELF_MAX_IMAGE);
            if (size <= 1 * MiB) {
                uint8_t *dest = malloc(size);
                keel_elf_place(copy, &img, dest);
                free(dest);
            }
        } else {
            assert_non_null(why);
        }
        free(copy);
    }
}

/* ---- hand-over page tables ------------------------------------------------------ */

#define FAKE_PA 0x10000000ull

struct pt_buf {
    uint64_t *mem;
    uint64_t pages;
};

static struct pt_buf pt_alloc(uint64_t pages)
{
    struct pt_buf b = { aligned_alloc(4096, pages * 4096), pages };
    memset(b.mem, 0xcc, pages * 4096); /* the builder must clear what it uses */
    return b;
}

/* Walks the tables like the MMU; returns false for an unmapped address. */
static bool translate(const struct pt_buf *b, hpa_t cr3, uint64_t va, uint64_t *pa)
{
    hpa_t table = cr3;
    for (int level = 4; level >= 1; level--) {
        assert_true(table >= FAKE_PA && table < FAKE_PA + b->pages * 4096);
        assert_int_equal(table % 4096, 0);
        uint64_t e = b->mem[(table - FAKE_PA) / 8 + ((va >> (12 + 9 * (level - 1))) & 511)];
        if (!(e & 1))
            return false;
        assert_true(e & 2); /* writable */
        uint64_t addr = e & 0x000ffffffffff000ull;
        if (level == 1 || (e & 0x80)) {
            uint64_t page = 1ull << (12 + 9 * (level - 1));
            assert_int_equal(addr % page, 0);
            *pa = addr + (va & (page - 1));
            return true;
        }
        table = addr;
    }
    return false;
}

static void check_tables(bool gb_pages)
{
    struct handover_layout l = {
        .identity_top = 6 * GiB + 5, /* rounds up to 7 GiB */
        .gb_pages = gb_pages,
        .image_vbase = VBASE,
        .image_pa = 0x3de00000,
        .image_size = 0x35000,
    };
    uint64_t pages = handover_pt_pages(&l);
    struct pt_buf b = pt_alloc(pages);
    hpa_t cr3 = handover_pt_build(b.mem, FAKE_PA, pages, &l);
    uint64_t pa;

    assert_int_equal(cr3, FAKE_PA);
    static const uint64_t probes[] = { 0, 0x1234, 0x9f000, 2 * MiB - 1, 3 * GiB + 77, 4 * GiB, 7 * GiB - 1 };
    for (size_t i = 0; i < ARRAY_SIZE(probes); i++) {
        assert_true(translate(&b, cr3, probes[i], &pa));
        assert_int_equal(pa, probes[i]);
    }
    assert_false(translate(&b, cr3, 7 * GiB, &pa));
    assert_true(translate(&b, cr3, VBASE, &pa));
    assert_int_equal(pa, 0x3de00000);
    assert_true(translate(&b, cr3, VBASE + 0x34fff, &pa));
    assert_int_equal(pa, 0x3de34fff);
    assert_false(translate(&b, cr3, VBASE + 0x35000, &pa));
    assert_false(translate(&b, cr3, VBASE - 1, &pa));
    free(b.mem);
}

static void test_paging_2m(void **state)
{
    (void)state;
    check_tables(false);
}

static void test_paging_1g(void **state)
{
    (void)state;
    check_tables(true);
}

static void test_paging_small_memory_maps_4g(void **state)
{
    (void)state;
    struct handover_layout l = { .identity_top = 512 * MiB, .image_vbase = VBASE,
                                 .image_pa = 0x200000, .image_size = 0x1000 };
    uint64_t pages = handover_pt_pages(&l);
    struct pt_buf b = pt_alloc(pages);
    hpa_t cr3 = handover_pt_build(b.mem, FAKE_PA, pages, &l);
    uint64_t pa;
    assert_true(cr3);
    assert_true(translate(&b, cr3, 4 * GiB - 1, &pa));
    assert_int_equal(pa, 4 * GiB - 1);
    assert_false(translate(&b, cr3, 4 * GiB, &pa));
    free(b.mem);
}

static void test_paging_impossible_layouts(void **state)
{
    (void)state;
    struct handover_layout l = { .identity_top = 4 * GiB, .image_vbase = VBASE,
                                 .image_pa = 0x200000, .image_size = 0x1000 };
    uint64_t pages = handover_pt_pages(&l);
    struct pt_buf b = pt_alloc(pages + 4);

    /* Too little room. */
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, 1, &l), 0);
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, 0, &l), 0);
    /* Misaligned buffer or image. */
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA + 8, pages, &l), 0);
    l.image_pa = 0x200010;
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, pages, &l), 0);
    l.image_pa = 0x200000;
    /* The image inside the identity map (large pages there). */
    l.image_vbase = 1 * GiB;
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, pages + 4, &l), 0);
    l.gb_pages = true;
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, pages + 4, &l), 0);
    /* Wrapping the address space. */
    l.image_vbase = 0xfffffffffffff000ull;
    l.image_size = 0x2000;
    assert_int_equal(handover_pt_build(b.mem, FAKE_PA, pages + 4, &l), 0);
    free(b.mem);
}

/* ---- VT-x decision ---------------------------------------------------------------- */

static void test_vmx_state(void **state)
{
    (void)state;
    assert_int_equal(vmx_state_from(false, 0), VMX_NOT_SUPPORTED);
    assert_int_equal(vmx_state_from(false, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX),
                     VMX_NOT_SUPPORTED);
    assert_int_equal(vmx_state_from(true, 0), VMX_USABLE); /* unlocked: the core enables it */
    assert_int_equal(vmx_state_from(true, FEATURE_CONTROL_VMX_OUTSIDE_SMX), VMX_USABLE);
    assert_int_equal(vmx_state_from(true, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_OUTSIDE_SMX), VMX_USABLE);
    assert_int_equal(vmx_state_from(true, FEATURE_CONTROL_LOCK), VMX_DISABLED_BY_FIRMWARE);
    assert_int_equal(vmx_state_from(true, FEATURE_CONTROL_LOCK | FEATURE_CONTROL_VMX_IN_SMX),
                     VMX_DISABLED_BY_FIRMWARE);
}

/* ---- ExitBootServices retries ------------------------------------------------------ */

/* A firmware with a memory map key that changes whenever the map does, as EDK2's does.
 * Scripted trouble: map changes made by "event handlers" inside ExitBootServices
 * before it checks the key (the usual reason for a stale key), and failures. */
struct fake_fw {
    uint64_t map_key;
    bool exited;
    unsigned get_map_calls, convert_calls, stale_calls, exit_calls;
    unsigned changes_in_exit[8];  /* per ExitBootServices call */
    int get_map_fails_at;         /* 1-based call that fails, 0: none */
    uint64_t get_map_fail_status;
    int convert_fails_at;
    uint64_t exit_status_override; /* returned instead of checking the key, if set */
    uint64_t converted_key;       /* the key of the map the last conversion saw */
    uint64_t exit_keys[8];
};

static uint64_t fake_get_map(void *ctx, uint64_t *key)
{
    struct fake_fw *f = ctx;
    assert_false(f->exited); /* no boot service after a successful exit */
    f->get_map_calls++;
    if ((int)f->get_map_calls == f->get_map_fails_at)
        return f->get_map_fail_status;
    *key = f->map_key;
    return UEFI_STATUS_SUCCESS;
}

static bool fake_convert(void *ctx)
{
    struct fake_fw *f = ctx;
    assert_false(f->exited);
    f->convert_calls++;
    f->converted_key = f->map_key;
    return (int)f->convert_calls != f->convert_fails_at;
}

static void fake_make_stale(void *ctx)
{
    struct fake_fw *f = ctx;
    assert_false(f->exited);
    f->stale_calls++;
    f->map_key++; /* one page allocated and freed: two changes */
    f->map_key++;
}

static uint64_t fake_exit(void *ctx, uint64_t key)
{
    struct fake_fw *f = ctx;
    assert_false(f->exited);
    unsigned n = f->exit_calls++;
    if (n < 8) {
        f->exit_keys[n] = key;
        f->map_key += f->changes_in_exit[n];
    }
    if (f->exit_status_override)
        return f->exit_status_override;
    if (key != f->map_key)
        return UEFI_STATUS_INVALID_PARAMETER;
    f->exited = true;
    return UEFI_STATUS_SUCCESS;
}

static struct exit_bs_ops fake_ops(struct fake_fw *f)
{
    return (struct exit_bs_ops){ .ctx = f, .get_map = fake_get_map, .convert = fake_convert,
                                 .make_stale = fake_make_stale, .exit_boot_services = fake_exit };
}

static void test_exit_bs_first_try(void **state)
{
    (void)state;
    struct fake_fw f = { .map_key = 100 };
    struct exit_bs_ops ops = fake_ops(&f);
    struct exit_bs_result r;
    assert_true(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_true(f.exited);
    assert_int_equal(r.status, UEFI_STATUS_SUCCESS);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.stale_keys, 0);
    assert_null(r.failed);
    assert_int_equal(f.get_map_calls, 1);
    assert_int_equal(f.stale_calls, 0);
}

static void test_exit_bs_event_makes_key_stale(void **state)
{
    (void)state;
    /* Handlers of the before-exit event allocate on the first two calls. */
    struct fake_fw f = { .map_key = 7, .changes_in_exit = { 1, 3 } };
    struct exit_bs_ops ops = fake_ops(&f);
    struct exit_bs_result r;
    assert_true(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_int_equal(r.attempts, 3);
    assert_int_equal(r.stale_keys, 2);
    /* Each call got the key of a map fetched after the previous failure, and the map
     * the core gets is the one whose key was accepted. */
    assert_int_equal(f.exit_keys[0], 7);
    assert_int_equal(f.exit_keys[1], 8);
    assert_int_equal(f.exit_keys[2], 11);
    assert_int_equal(f.get_map_calls, 3);
    assert_int_equal(f.convert_calls, 3);
    assert_int_equal(f.converted_key, 11);
}

static void test_exit_bs_forced_stale_keys(void **state)
{
    (void)state;
    struct fake_fw f = { .map_key = 1 };
    struct exit_bs_ops ops = fake_ops(&f);
    struct exit_bs_result r;
    assert_true(exit_boot_services_retry(&ops, 5, 4, &r));
    assert_int_equal(r.attempts, 5);
    assert_int_equal(r.stale_keys, 4);
    assert_int_equal(f.stale_calls, 4);

    /* Without a way to make the key stale the knob does nothing. */
    f = (struct fake_fw){ .map_key = 1 };
    ops = fake_ops(&f);
    ops.make_stale = NULL;
    assert_true(exit_boot_services_retry(&ops, 5, 2, &r));
    assert_int_equal(r.attempts, 1);
}

static void test_exit_bs_gives_up(void **state)
{
    (void)state;
    /* The map changes on every call: the loop stops after max_attempts. */
    struct fake_fw f = { .map_key = 1, .changes_in_exit = { 1, 1, 1, 1, 1, 1, 1, 1 } };
    struct exit_bs_ops ops = fake_ops(&f);
    struct exit_bs_result r;
    assert_false(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_false(f.exited);
    assert_int_equal(r.status, UEFI_STATUS_INVALID_PARAMETER);
    assert_int_equal(r.attempts, 5);
    assert_int_equal(r.stale_keys, 5);
    assert_string_equal(r.failed, "ExitBootServices");

    /* Asking for as many stale keys as there are attempts leaves none with a fresh key. */
    f = (struct fake_fw){ .map_key = 1 };
    ops = fake_ops(&f);
    assert_false(exit_boot_services_retry(&ops, 3, 3, &r));
    assert_int_equal(r.attempts, 3);
}

static void test_exit_bs_failures(void **state)
{
    (void)state;
    struct exit_bs_result r;

    /* The map outgrew its buffer while retrying: no allocation is allowed, stop. */
    struct fake_fw f = { .map_key = 1, .changes_in_exit = { 1 }, .get_map_fails_at = 2,
                         .get_map_fail_status = UEFI_STATUS_BUFFER_TOO_SMALL };
    struct exit_bs_ops ops = fake_ops(&f);
    assert_false(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_int_equal(r.status, UEFI_STATUS_BUFFER_TOO_SMALL);
    assert_string_equal(r.failed, "GetMemoryMap");
    assert_int_equal(r.attempts, 1);
    assert_int_equal(f.exit_calls, 1);

    /* A map the core cannot take is never handed over. */
    f = (struct fake_fw){ .map_key = 1, .convert_fails_at = 1 };
    ops = fake_ops(&f);
    assert_false(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_int_equal(r.status, UEFI_STATUS_LOAD_ERROR);
    assert_int_equal(f.exit_calls, 0);
    assert_int_equal(r.attempts, 0);

    /* Other errors are not a stale key: no retry. */
    f = (struct fake_fw){ .map_key = 1, .exit_status_override = UEFI_STATUS_ERROR | 3 };
    ops = fake_ops(&f);
    assert_false(exit_boot_services_retry(&ops, 5, 0, &r));
    assert_int_equal(r.status, UEFI_STATUS_ERROR | 3);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.stale_keys, 0);
    assert_int_equal(f.get_map_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memmap_handover_types_sorted_merged),
        cmocka_unit_test(test_memmap_platform_check_pool),
        cmocka_unit_test(test_memmap_bad_input),
        cmocka_unit_test(test_memmap_overlap_and_bridge),
        cmocka_unit_test(test_memmap_overflow_drops),
        cmocka_unit_test(test_memmap_random),
        cmocka_unit_test(test_elf_valid_and_placed),
        cmocka_unit_test(test_elf_rejects_broken_headers),
        cmocka_unit_test(test_elf_rejects_broken_segments),
        cmocka_unit_test(test_elf_image_header_checks),
        cmocka_unit_test(test_elf_fuzz),
        cmocka_unit_test(test_paging_2m),
        cmocka_unit_test(test_paging_1g),
        cmocka_unit_test(test_paging_small_memory_maps_4g),
        cmocka_unit_test(test_paging_impossible_layouts),
        cmocka_unit_test(test_vmx_state),
        cmocka_unit_test(test_exit_bs_first_try),
        cmocka_unit_test(test_exit_bs_event_makes_key_stale),
        cmocka_unit_test(test_exit_bs_forced_stale_keys),
        cmocka_unit_test(test_exit_bs_gives_up),
        cmocka_unit_test(test_exit_bs_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
