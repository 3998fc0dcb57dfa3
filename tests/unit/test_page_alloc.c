/* Host tests for the physical page allocator (vmm/lib/page_alloc.c). The allocator never
 * touches the memory it manages, so the maps below use arbitrary addresses.
 * SOURCES: vmm/lib/page_alloc.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/console_capture.h"
#include "vmm/lib/page_alloc.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

static struct mem_region R(uint64_t base, uint64_t length, uint32_t type)
{
    struct mem_region m = {base, length, type, 0};
    return m;
}

/* The list must stay sorted, page-aligned, non-empty, non-touching, and add up. */
static void check_invariants(void)
{
    struct phys_range r, prev = {0, 0};
    uint64_t sum = 0;
    size_t n = palloc_range_count();
    assert_true(n <= PALLOC_MAX_RANGES);
    for (size_t i = 0; i < n; i++) {
        assert_true(palloc_range(i, &r));
        assert_true(r.size > 0);
        assert_int_equal(r.base % PAGE_SIZE, 0);
        assert_int_equal(r.size % PAGE_SIZE, 0);
        assert_true(r.base != 0);
        if (i)
            assert_true(prev.base + prev.size < r.base);
        prev = r;
        sum += r.size;
    }
    assert_false(palloc_range(n, &r));
    assert_int_equal(sum, palloc_free_bytes());
}

static void expect_range(size_t i, uint64_t base, uint64_t size)
{
    struct phys_range r;
    assert_true(palloc_range(i, &r));
    assert_int_equal(r.base, base);
    assert_int_equal(r.size, size);
}

static void test_simple_map(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(0, 0x9fc00, MEM_USABLE),
        R(0x9fc00, 0x400, MEM_RESERVED),
        R(0xf0000, 0x10000, MEM_RESERVED),
        R(0x100000, 127 * MiB, MEM_USABLE),
    };
    capture_reset();
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    assert_int_equal(palloc_range_count(), 2);
    expect_range(0, 0x1000, 0x9e000);          /* page 0 gone, 0x9fc00 edge trimmed */
    expect_range(1, 0x100000, 127 * MiB);
    uint64_t total = 0x9e000 + 127 * MiB;
    assert_int_equal(palloc_total_bytes(), total);
    assert_int_equal(palloc_free_bytes(), total);
    /* Exactly one summary line. */
    assert_int_equal(capture_count(), 1);
    char want[64];
    snprintf(want, sizeof(want), "MEM: %llu KiB usable in 2 ranges", (unsigned long long)(total >> 10));
    assert_true(capture_contains(want));
    check_invariants();
}

static void test_overlap_reserved_wins(void **state)
{
    (void)state;
    /* Unsorted and overlapping, as some firmware reports it. */
    struct mem_region map[] = {
        R(0x400800, 0x800, MEM_RESERVED),   /* inside usable, unaligned: whole page goes */
        R(0x100000, 15 * MiB, MEM_USABLE),
        R(0xf00000, 2 * MiB, MEM_ACPI_NVS), /* overlaps the end of the usable entry */
        R(0x2000000, 16 * MiB, MEM_USABLE),
        R(0x1800000, 9 * MiB, MEM_RESERVED), /* covers the start of the second */
        R(0x2000000, 16 * MiB, MEM_USABLE),  /* duplicate usable entry */
    };
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    assert_int_equal(palloc_range_count(), 3);
    expect_range(0, 0x100000, 0x300000);
    expect_range(1, 0x401000, 0xf00000 - 0x401000);
    expect_range(2, 0x2100000, 0x3000000 - 0x2100000);
    check_invariants();
}

static void test_unaligned_edges(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(0x1234, 0x5678 - 0x1234, MEM_USABLE), /* -> [0x2000, 0x5000) */
        R(0x8100, 0xe00, MEM_USABLE),           /* less than a page once trimmed: gone */
        /* Two touching unaligned pieces make one whole page together. */
        R(0x10800, 0x1000, MEM_USABLE),
        R(0x11800, 0x1000, MEM_USABLE),
    };
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    assert_int_equal(palloc_range_count(), 2);
    expect_range(0, 0x2000, 0x3000);
    expect_range(1, 0x11000, 0x1000);
    check_invariants();
}

static void test_exclusions_split(void **state)
{
    (void)state;
    struct mem_region map[] = {R(0x100000, 255 * MiB, MEM_USABLE)};
    struct phys_range ex[] = {
        {0x200000, 0x123456},  /* Keel image incl. .bss: rounded out to 0x324000 */
        {0x800100, 0x10},      /* a module: one whole page */
        {0x0, 0x0},            /* empty exclusion: nothing */
        {0xfff0000, 0x100000}, /* runs past the end of RAM */
    };
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), ex, ARRAY_SIZE(ex)), 0);
    assert_int_equal(palloc_range_count(), 3);
    expect_range(0, 0x100000, 0x100000);
    expect_range(1, 0x324000, 0x800000 - 0x324000);
    expect_range(2, 0x801000, 0xfff0000 - 0x801000);
    check_invariants();

    /* Excluded memory can be handed back once its user is done with it. */
    capture_reset();
    pfree(0x800000, PAGE_SIZE);
    assert_int_equal(capture_count(), 0);
    assert_int_equal(palloc_range_count(), 2);
    expect_range(1, 0x324000, 0xfff0000 - 0x324000);
    check_invariants();
}

static void test_page_zero_never_returned(void **state)
{
    (void)state;
    struct mem_region map[] = {R(0, 16 * PAGE_SIZE, MEM_USABLE)};
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    expect_range(0, PAGE_SIZE, 15 * PAGE_SIZE);
    for (int i = 0; i < 15; i++)
        assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), (uint64_t)(i + 1) * PAGE_SIZE);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0);

    /* Page 0 cannot be freed into the pool either. */
    capture_reset();
    pfree(0, PAGE_SIZE);
    assert_true(capture_contains("not memory Keel owns"));
    assert_int_equal(palloc_free_bytes(), 0);
}

static void test_non_usable_never_returned(void **state)
{
    (void)state;
    static const uint32_t types[] = {MEM_RESERVED, MEM_ACPI_RECLAIMABLE, MEM_ACPI_NVS, MEM_MMIO,
                                     MEM_UNUSABLE, MEM_FIRMWARE, MEM_BOOT_DATA, 0, 42};
    struct mem_region map[2 + ARRAY_SIZE(types)];
    size_t n = 0;
    map[n++] = R(0x100000, 64 * MiB, MEM_USABLE);
    /* Each type punches a (sometimes unaligned) hole into the usable range. */
    for (size_t i = 0; i < ARRAY_SIZE(types); i++)
        map[n++] = R(0x200000 + i * 0x100000 + 0x80, 0x3000, types[i]);
    map[n++] = R(0xfec00000, 0x1000, MEM_MMIO); /* outside usable: no effect */
    assert_int_equal(palloc_init(map, n, NULL, 0), 0);
    check_invariants();

    uint64_t got = 0;
    for (;;) {
        hpa_t p = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
        if (!p)
            break;
        got += PAGE_SIZE;
        assert_true(p >= 0x100000 && p < 0x100000 + 64 * MiB);
        for (size_t i = 1; i < n; i++) {
            uint64_t b = ALIGN_DOWN(map[i].base, PAGE_SIZE);
            uint64_t e = ALIGN_UP(map[i].base + map[i].length, PAGE_SIZE);
            if (p >= b && p < e)
                fail_msg("page %#lx is inside a type-%u entry", (unsigned long)p, map[i].type);
        }
    }
    /* Each hole is 4 pages (0x80 + 0x3000 spills into a fourth). */
    assert_int_equal(got, 64 * MiB - ARRAY_SIZE(types) * 4 * PAGE_SIZE);
    assert_int_equal(palloc_free_bytes(), 0);
}

static void test_alignment(void **state)
{
    (void)state;
    struct mem_region map[] = {R(0x1000, 6 * GiB, MEM_USABLE)};
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);

    assert_int_equal(palloc(PAGE_SIZE, LARGE_PAGE_SIZE, PALLOC_NO_LIMIT), 0x200000);
    assert_int_equal(palloc(HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, PALLOC_NO_LIMIT), 0x40000000);
    assert_int_equal(palloc(3 * LARGE_PAGE_SIZE, LARGE_PAGE_SIZE, PALLOC_NO_LIMIT), 0x400000);
    /* First fit: the gap below 2 MiB is still used for small blocks. */
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0x1000);
    /* Alignment below a page means a page; sizes round up to pages. */
    assert_int_equal(palloc(1, 16, PALLOC_NO_LIMIT), 0x2000);
    assert_int_equal(palloc(PAGE_SIZE + 1, 0, PALLOC_NO_LIMIT), 0x3000);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0x5000);
    check_invariants();

    capture_reset();
    assert_int_equal(palloc(PAGE_SIZE, 3 * PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_true(capture_contains("not a power of two"));
    assert_int_equal(palloc(0, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_int_equal(palloc(UINT64_MAX, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_int_equal(palloc(PAGE_SIZE, 1ull << 63, PALLOC_NO_LIMIT), 0);

    /* 1 GiB blocks until the 6 GiB run out. */
    uint64_t prev = 0x40000000;
    for (int i = 0; i < 4; i++) {
        hpa_t p = palloc(HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, PALLOC_NO_LIMIT);
        assert_int_equal(p, prev + HUGE_PAGE_SIZE);
        prev = p;
    }
    assert_int_equal(palloc(HUGE_PAGE_SIZE, HUGE_PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    check_invariants();
}

static void test_limits(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(0x0, 0x9f000, MEM_USABLE),
        R(0x100000, 0xbff00000, MEM_USABLE), /* up to 3 GiB */
        R(0x100000000, 4 * GiB, MEM_USABLE),
    };
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);

    /* Below 1 MiB: the low range is 0x9e000 bytes; a block must end at or below limit. */
    assert_int_equal(palloc(0x9f000, PAGE_SIZE, 1 * MiB), 0);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, 0x2000), 0x1000);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, 0x2000), 0);  /* [0x2000,0x3000) crosses */
    assert_int_equal(palloc(0x9d000, PAGE_SIZE, 1 * MiB), 0x2000);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, 1 * MiB), 0);  /* low memory exhausted */
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0x100000);

    /* Below 4 GiB: 3 GiB of room there, not 4. */
    assert_int_equal(palloc(4 * GiB - 2 * MiB, PAGE_SIZE, 4 * GiB), 0);
    assert_int_equal(palloc(2 * GiB, LARGE_PAGE_SIZE, 4 * GiB), 0x200000);
    assert_int_equal(palloc(2 * GiB, LARGE_PAGE_SIZE, 4 * GiB), 0);
    assert_int_equal(palloc(2 * GiB, LARGE_PAGE_SIZE, PALLOC_NO_LIMIT), 0x100000000);
    hpa_t p = palloc(512 * MiB, LARGE_PAGE_SIZE, 4 * GiB);
    assert_int_equal(p, 0x80200000);
    assert_true(p + 512 * MiB <= 4 * GiB);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, 0), 0);
    check_invariants();
}

static void test_exhaustion(void **state)
{
    (void)state;
    struct mem_region map[] = {R(0x10000, 4 * PAGE_SIZE, MEM_USABLE)};
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    assert_int_equal(palloc(5 * PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    for (int i = 0; i < 4; i++)
        assert_int_not_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_int_equal(palloc_free_bytes(), 0);
    assert_int_equal(palloc_range_count(), 0);
    assert_int_equal(palloc_total_bytes(), 4 * PAGE_SIZE);
}

static void test_free_merge_reuse(void **state)
{
    (void)state;
    struct mem_region map[] = {R(0x1000, 4 * PAGE_SIZE, MEM_USABLE)};
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    hpa_t a = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    hpa_t b = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    hpa_t c = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    assert_int_equal(a, 0x1000);
    assert_int_equal(b, 0x2000);
    assert_int_equal(c, 0x3000);
    expect_range(0, 0x4000, 0x1000);

    capture_reset();
    pfree(b, PAGE_SIZE);
    assert_int_equal(palloc_range_count(), 2);
    expect_range(0, 0x2000, 0x1000);
    pfree(c, PAGE_SIZE); /* merges with both neighbours */
    assert_int_equal(palloc_range_count(), 1);
    expect_range(0, 0x2000, 0x3000);
    pfree(a, 1); /* size rounds up to a page, as in palloc */
    assert_int_equal(palloc_range_count(), 1);
    expect_range(0, 0x1000, 0x4000);
    assert_int_equal(palloc_free_bytes(), palloc_total_bytes());
    assert_int_equal(capture_count(), 0);
    check_invariants();

    /* The merged block serves a request none of the pieces could. */
    assert_int_equal(palloc(4 * PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0x1000);
    pfree(0x1000, 4 * PAGE_SIZE);
    assert_int_equal(palloc_free_bytes(), 4 * PAGE_SIZE);
}

static void test_bad_frees_rejected(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(0x100000, 1 * MiB, MEM_USABLE),
        R(0xfee00000, PAGE_SIZE, MEM_MMIO),
    };
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    hpa_t p = palloc(2 * PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    assert_int_equal(p, 0x100000);
    pfree(p, PAGE_SIZE);
    check_invariants();
    size_t ranges = palloc_range_count();
    uint64_t bytes = palloc_free_bytes();

    struct { hpa_t base; uint64_t size; const char *msg; } bad[] = {
        {p, PAGE_SIZE, "double free"},
        {p, 2 * PAGE_SIZE, "double free"},          /* overlaps free memory partly */
        {0x180000, PAGE_SIZE, "double free"},       /* never allocated at all */
        {0xfee00000, PAGE_SIZE, "not memory Keel owns"},
        {0x1ff000, 2 * PAGE_SIZE, "not memory Keel owns"}, /* runs past usable RAM */
        {0x101800, PAGE_SIZE, "bad range"},
        {0x101000, 0, "bad range"},
        {0xfffffffffffff000ull, 2 * PAGE_SIZE, "bad range"},
        {0x101000, UINT64_MAX, "bad range"},
    };
    for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
        capture_reset();
        pfree(bad[i].base, bad[i].size);
        if (!capture_contains(bad[i].msg))
            fail_msg("pfree(%#lx, %#lx): expected '%s', got '%s'", (unsigned long)bad[i].base,
                     (unsigned long)bad[i].size, bad[i].msg, capture_line(0));
        assert_int_equal(palloc_range_count(), ranges);
        assert_int_equal(palloc_free_bytes(), bytes);
        check_invariants();
    }
    /* The one good page is still usable and still freeable once. */
    capture_reset();
    pfree(p + PAGE_SIZE, PAGE_SIZE);
    assert_int_equal(capture_count(), 0);
    assert_int_equal(palloc_free_bytes(), 1 * MiB);
}

static void test_bad_map_entries(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(0x100000, 0, MEM_USABLE),
        R(0x100000, 4 * MiB, MEM_USABLE),
        R(0xffffffffff000000ull, 0x2000000, MEM_USABLE), /* wraps: ignored */
        R(0x300000, UINT64_MAX, MEM_RESERVED),            /* wraps: reserves to the top */
    };
    capture_reset();
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);
    assert_true(capture_contains("entry 0"));
    assert_true(capture_contains("length 0"));
    assert_true(capture_contains("entry 2"));
    assert_true(capture_contains("entry 3"));
    assert_true(capture_contains("reserved to the top"));
    assert_int_equal(palloc_range_count(), 1);
    expect_range(0, 0x100000, 0x200000);
    check_invariants();

    /* No usable memory at all. */
    struct mem_region none[] = {R(0, 1 * MiB, MEM_RESERVED), R(0x500, 0x400, MEM_USABLE)};
    capture_reset();
    assert_int_equal(palloc_init(none, ARRAY_SIZE(none), NULL, 0), -1);
    assert_true(capture_contains("no usable memory"));
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0);
    assert_int_equal(palloc_init(NULL, 0, NULL, 0), -1);
}

static void test_too_many_fragments(void **state)
{
    (void)state;
    /* Every other page usable: far more ranges than the list holds. */
    size_t n = PALLOC_MAX_RANGES + 300;
    struct mem_region *map = calloc(n, sizeof(*map));
    for (size_t i = 0; i < n; i++)
        map[i] = R(0x100000 + 2 * i * PAGE_SIZE, PAGE_SIZE, MEM_USABLE);
    capture_reset();
    assert_int_equal(palloc_init(map, n, NULL, 0), -1);
    assert_true(capture_contains("free list full"));
    assert_true(capture_contains("300 fragments"));
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES);
    /* The lowest ranges are the ones kept. */
    expect_range(0, 0x100000, PAGE_SIZE);
    expect_range(PALLOC_MAX_RANGES - 1, 0x100000 + 2 * (PALLOC_MAX_RANGES - 1) * PAGE_SIZE, PAGE_SIZE);
    check_invariants();

    free(map);

    /* Exclusions splitting one big range beyond the limit: the free list is full,
     * the pages past it are still Keel's (owned), just not on the list. */
    struct mem_region big[] = {R(0x100000, 1 * GiB, MEM_USABLE)};
    size_t nex = PALLOC_MAX_RANGES + 10;
    struct phys_range *ex = calloc(nex, sizeof(*ex));
    for (size_t i = 0; i < nex; i++)
        ex[i] = (struct phys_range){0x200000 + i * 2 * PAGE_SIZE, PAGE_SIZE};
    capture_reset();
    assert_int_equal(palloc_init(big, 1, ex, nex), -1);
    assert_true(capture_contains("free list full"));
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES);
    expect_range(0, 0x100000, 0x100000);
    expect_range(1, 0x201000, PAGE_SIZE);
    check_invariants();

    /* Taking from the start of a range needs no new slot. */
    assert_int_equal(palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT), 0x100000);
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES);

    /* Carving from the middle would need a slot; the tail of the range is used. */
    assert_int_equal(palloc(2 * PAGE_SIZE, 2 * PAGE_SIZE, PALLOC_NO_LIMIT), 0x1fe000);
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES);
    check_invariants();

    /* A free that needs a new slot in a full list is reported, and the list survives. */
    capture_reset();
    uint64_t bytes = palloc_free_bytes();
    pfree(0x100000 + 1 * GiB - PAGE_SIZE, PAGE_SIZE);
    assert_true(capture_contains("leaked"));
    assert_int_equal(palloc_free_bytes(), bytes);
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES);
    check_invariants();

    /* Frees that merge need no slot: the list shrinks again. */
    capture_reset();
    pfree(0x1fe000, 2 * PAGE_SIZE);
    pfree(0x200000, PAGE_SIZE); /* an exclusion page, joining two ranges */
    assert_int_equal(capture_count(), 0);
    assert_int_equal(palloc_range_count(), PALLOC_MAX_RANGES - 1);
    expect_range(0, 0x101000, 0x101000);
    check_invariants();
    free(ex);
}

/* Random allocations and frees against a page bitmap model of first fit. */
#define MODEL_PAGES 512
#define MODEL_BASE 0x400000ull

static bool model_free[MODEL_PAGES];

static hpa_t model_alloc(size_t pages, size_t align_pages, hpa_t limit)
{
    for (size_t i = 0; i + pages <= MODEL_PAGES; i++) {
        hpa_t a = MODEL_BASE + i * PAGE_SIZE;
        if ((a / PAGE_SIZE) % align_pages)
            continue;
        if (a + pages * PAGE_SIZE > limit)
            return 0;
        bool ok = true;
        for (size_t k = 0; k < pages && ok; k++)
            ok = model_free[i + k];
        if (ok) {
            for (size_t k = 0; k < pages; k++)
                model_free[i + k] = false;
            return a;
        }
    }
    return 0;
}

static void test_random_against_model(void **state)
{
    (void)state;
    struct mem_region map[] = {
        R(MODEL_BASE, MODEL_PAGES * PAGE_SIZE, MEM_USABLE),
        R(MODEL_BASE + 100 * PAGE_SIZE, 3 * PAGE_SIZE, MEM_RESERVED),
        R(MODEL_BASE + 300 * PAGE_SIZE + 5, 1, MEM_FIRMWARE),
    };
    for (size_t i = 0; i < MODEL_PAGES; i++)
        model_free[i] = !(i >= 100 && i < 103) && i != 300;
    assert_int_equal(palloc_init(map, ARRAY_SIZE(map), NULL, 0), 0);

    struct { hpa_t base; size_t pages; } live[256];
    size_t nlive = 0;
    srand(12345);
    capture_reset();
    for (int step = 0; step < 20000; step++) {
        if (nlive < ARRAY_SIZE(live) && (rand() % 3 != 0 || nlive == 0)) {
            size_t pages = 1 + rand() % 12;
            size_t align = 1u << (rand() % 5);
            hpa_t limit = rand() % 4 ? PALLOC_NO_LIMIT : MODEL_BASE + (rand() % MODEL_PAGES) * PAGE_SIZE;
            hpa_t want = model_alloc(pages, align, limit);
            hpa_t got = palloc(pages * PAGE_SIZE, align * PAGE_SIZE, limit);
            if (want != got)
                fail_msg("step %d: palloc(%zu pages, align %zu) = %#lx, model %#lx", step, pages,
                         align, (unsigned long)got, (unsigned long)want);
            if (got) {
                live[nlive].base = got;
                live[nlive].pages = pages;
                nlive++;
            }
        } else {
            size_t k = rand() % nlive;
            pfree(live[k].base, live[k].pages * PAGE_SIZE);
            for (size_t i = 0; i < live[k].pages; i++)
                model_free[(live[k].base - MODEL_BASE) / PAGE_SIZE + i] = true;
            live[k] = live[--nlive];
        }
        if (step % 97 == 0)
            check_invariants();
    }
    assert_int_equal(capture_count(), 0);
    while (nlive) {
        nlive--;
        pfree(live[nlive].base, live[nlive].pages * PAGE_SIZE);
    }
    assert_int_equal(palloc_free_bytes(), palloc_total_bytes());
    assert_int_equal(palloc_range_count(), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_map),
        cmocka_unit_test(test_overlap_reserved_wins),
        cmocka_unit_test(test_unaligned_edges),
        cmocka_unit_test(test_exclusions_split),
        cmocka_unit_test(test_page_zero_never_returned),
        cmocka_unit_test(test_non_usable_never_returned),
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_exhaustion),
        cmocka_unit_test(test_free_merge_reuse),
        cmocka_unit_test(test_bad_frees_rejected),
        cmocka_unit_test(test_bad_map_entries),
        cmocka_unit_test(test_too_many_fragments),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
