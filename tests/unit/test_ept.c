/* Host tests for the EPT builder (arch/x86/vmx/ept.c). Table pages are malloc'd aligned
 * pages whose host address stands in for the host-physical one; a countdown makes the
 * allocator fail on demand. Every test checks the tables by walking them itself, so the
 * statistics in struct ept are verified, not trusted.
 * SOURCES: arch/x86/vmx/ept.c vmm/lib/page_alloc.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/vmx/ept.h"
#include "tests/unit/console_capture.h"
#include "vmm/lib/page_alloc.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define GiB (1024ull * MiB)

/* ---- table source ---- */

struct pool {
    long outstanding; /* pages handed out and not freed */
    long budget;      /* successful allocations left; -1 = unlimited */
};

static hpa_t pool_alloc(void *ctx)
{
    struct pool *p = ctx;
    if (p->budget == 0)
        return 0;
    if (p->budget > 0)
        p->budget--;
    void *m = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
    assert_non_null(m);
    memset(m, 0, PAGE_SIZE);
    p->outstanding++;
    return (hpa_t)(uintptr_t)m;
}

static void pool_free(void *ctx, hpa_t t)
{
    struct pool *p = ctx;
    p->outstanding--;
    free((void *)(uintptr_t)t);
}

static void *pool_hva(void *ctx, hpa_t t)
{
    (void)ctx;
    return (void *)(uintptr_t)t;
}

static const struct ept_ops pool_ops = {pool_alloc, pool_free, pool_hva};

struct fixture {
    struct pool pool;
    struct ept ept;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->pool.budget = -1;
    assert_int_equal(ept_init(&f->ept, &pool_ops, &f->pool), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ept_destroy(&f->ept);
    assert_int_equal(f->ept.tables, 0);
    assert_int_equal(f->pool.outstanding, 0);
    free(f);
    return 0;
}

/* ---- independent view of the tables ---- */

#define ADDR_MASK 0x000ffffffffff000ull

struct census {
    uint64_t tables;
    uint64_t leaves[3];
};

static uint64_t lvl_size(int level) { return 1ull << (12 + 9 * level); }

static void census_table(hpa_t table, int level, struct census *c)
{
    const uint64_t *t = (const uint64_t *)(uintptr_t)table;
    unsigned present = 0;
    c->tables++;
    for (unsigned i = 0; i < 512; i++) {
        uint64_t e = t[i];
        if (!(e & 7)) {
            assert_int_equal(e, 0); /* nothing left behind in a cleared entry */
            continue;
        }
        present++;
        if (level == 0 || (e & BIT(7))) {
            assert_true(level <= 2);
            assert_int_equal(e & BIT(6), 0);                        /* ignore-PAT clear */
            assert_int_equal(e & ADDR_MASK & (lvl_size(level) - 1), 0); /* aligned target */
            uint64_t mt = (e >> 3) & 7;
            assert_true(mt == 0 || mt == 6);
            c->leaves[level]++;
        } else {
            assert_true(level > 0);
            assert_int_equal(e & ~ADDR_MASK, 7); /* table entry: RWX, nothing else */
            census_table(e & ADDR_MASK, level - 1, c);
        }
    }
    /* Only the PML4 may be empty: emptied tables must be freed. */
    if (level != 3)
        assert_true(present > 0);
}

static void check_census(const struct fixture *f)
{
    struct census c = {0};
    census_table(f->ept.pml4, 3, &c);
    assert_int_equal(c.tables, f->ept.tables);
    assert_int_equal(c.tables, f->pool.outstanding);
    for (int i = 0; i < 3; i++)
        assert_int_equal(c.leaves[i], f->ept.leaves[i]);
}

static void expect_leaves(const struct fixture *f, uint64_t n4k, uint64_t n2m, uint64_t n1g)
{
    check_census(f);
    assert_int_equal(f->ept.leaves[EPT_LEAF_4K], n4k);
    assert_int_equal(f->ept.leaves[EPT_LEAF_2M], n2m);
    assert_int_equal(f->ept.leaves[EPT_LEAF_1G], n1g);
}

static void expect_map(const struct fixture *f, gpa_t gpa, hpa_t hpa, uint32_t perms, uint64_t page_size)
{
    hpa_t h = 0;
    uint32_t p = 0;
    uint64_t s = 0;
    assert_true(ept_lookup(&f->ept, gpa, &h, &p, &s));
    assert_int_equal(h, hpa);
    assert_int_equal(p, perms);
    assert_int_equal(s, page_size);
}

static void expect_unmapped(const struct fixture *f, gpa_t gpa)
{
    assert_false(ept_lookup(&f->ept, gpa, NULL, NULL, NULL));
    assert_int_equal(ept_leaf_entry(&f->ept, gpa, NULL), 0);
}

static uint64_t memtype_at(const struct fixture *f, gpa_t gpa)
{
    uint64_t e = ept_leaf_entry(&f->ept, gpa, NULL);
    assert_true(e != 0);
    return (e >> 3) & 7;
}

/* ---- tests ---- */

static void test_init_pointer_destroy(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(f->ept.tables, 1);
    assert_int_equal(f->pool.outstanding, 1);
    assert_int_equal(f->ept.pml4 & 0xfff, 0);
    /* WB (6) in 2:0, walk length 4-1 = 3 in 5:3, A/D in bit 6. */
    assert_int_equal(ept_pointer(&f->ept, false), f->ept.pml4 | 0x1e);
    assert_int_equal(ept_pointer(&f->ept, true), f->ept.pml4 | 0x5e);
    check_census(f);

    struct ept e2;
    struct pool dry = {0, 0};
    assert_int_equal(ept_init(&e2, &pool_ops, &dry), EPT_ENOMEM);
    assert_int_equal(e2.pml4, 0);
    ept_destroy(&e2); /* harmless on a failed init */
    assert_int_equal(ept_init(&e2, NULL, &dry), EPT_EINVAL);
}

static void test_caps(void **state)
{
    struct fixture *f = *state;
    ept_apply_caps(&f->ept, 0x00000f0106334141ull); /* Bochs Skylake-X: both */
    assert_true(f->ept.allow_2m && f->ept.allow_1g);
    ept_apply_caps(&f->ept, BIT(16));
    assert_true(f->ept.allow_2m);
    assert_false(f->ept.allow_1g);
    ept_apply_caps(&f->ept, 0);
    assert_false(f->ept.allow_2m || f->ept.allow_1g);
}

static void test_leaf_bits(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ept_map(&f->ept, 0x5000, 0x123000, PAGE_SIZE, EPT_R | EPT_X, EPT_MT_WB), 0);
    uint64_t size = 0;
    assert_int_equal(ept_leaf_entry(&f->ept, 0x5abc, &size), 0x123000 | 5 | (6 << 3));
    assert_int_equal(size, PAGE_SIZE);
    expect_map(f, 0x5abc, 0x123abc, EPT_R | EPT_X, PAGE_SIZE);
    expect_unmapped(f, 0x4fff);
    expect_unmapped(f, 0x6000);

    assert_int_equal(ept_map(&f->ept, 0xfee00000, 0xfee00000, PAGE_SIZE, EPT_R | EPT_W, EPT_MT_UC), 0);
    assert_int_equal(ept_leaf_entry(&f->ept, 0xfee00000, NULL), 0xfee00000 | 3);

    /* 2 MiB and 1 GiB leaves: large-page bit, type, rights. */
    assert_int_equal(ept_map(&f->ept, 2 * GiB, 6 * GiB, GiB, EPT_R, EPT_MT_UC), 0);
    assert_int_equal(ept_leaf_entry(&f->ept, 2 * GiB + 12345, &size), 6 * GiB | 1 | BIT(7));
    assert_int_equal(size, GiB);
    assert_int_equal(ept_map(&f->ept, 8 * MiB, 64 * MiB, 2 * MiB, EPT_RWX, EPT_MT_WB), 0);
    assert_int_equal(ept_leaf_entry(&f->ept, 8 * MiB, &size), 64 * MiB | 7 | (6 << 3) | BIT(7));
    assert_int_equal(size, 2 * MiB);
    /* Execute-only is legal (the CPU may support it). */
    assert_int_equal(ept_map(&f->ept, 0x9000, 0x9000, PAGE_SIZE, EPT_X, EPT_MT_WB), 0);
    expect_map(f, 0x9000, 0x9000, EPT_X, PAGE_SIZE);
    expect_leaves(f, 3, 1, 1);
}

/* 1 GiB + 6 MiB + 12 KiB at a 2 MiB- but not 1 GiB-aligned address: 2 x 2 MiB up to
 * the 1 GiB line, one 1 GiB page, one more 2 MiB page, then 3 x 4 KiB. */
static void test_minimal_mixed(void **state)
{
    struct fixture *f = *state;
    const gpa_t g = 3 * GiB - 4 * MiB;
    const hpa_t h = 7 * GiB - 4 * MiB; /* same offset within 1 GiB */
    const uint64_t size = GiB + 6 * MiB + 12 * KiB;
    assert_int_equal(ept_map(&f->ept, g, h, size, EPT_RWX, EPT_MT_WB), 0);
    expect_leaves(f, 3, 3, 1);
    /* PML4, one PDPT, the PDs for [2G,3G) and [4G,5G), one PT. */
    assert_int_equal(f->ept.tables, 5);

    expect_map(f, g, h, EPT_RWX, 2 * MiB);
    expect_map(f, g + 2 * MiB + 77, h + 2 * MiB + 77, EPT_RWX, 2 * MiB);
    expect_map(f, 3 * GiB, 7 * GiB, EPT_RWX, GiB);
    expect_map(f, 3 * GiB + 0x12345678, 7 * GiB + 0x12345678, EPT_RWX, GiB); /* inside the 1G page */
    expect_map(f, 4 * GiB - 1, 8 * GiB - 1, EPT_RWX, GiB);
    expect_map(f, 4 * GiB + MiB, 8 * GiB + MiB, EPT_RWX, 2 * MiB);
    expect_map(f, 4 * GiB + 2 * MiB, 8 * GiB + 2 * MiB, EPT_RWX, PAGE_SIZE);
    expect_map(f, g + size - 1, h + size - 1, EPT_RWX, PAGE_SIZE);
    expect_unmapped(f, g - 1);
    expect_unmapped(f, g + size);
    assert_int_equal(memtype_at(f, 3 * GiB), 6);

    /* hpa only 2 MiB-aligned relative to gpa: no 1 GiB page possible. */
    assert_int_equal(ept_map(&f->ept, 16 * GiB - 4 * MiB, 20 * GiB - 2 * MiB, size, EPT_R, EPT_MT_WB), 0);
    expect_leaves(f, 6, 3 + 515, 1);
    /* hpa only 4 KiB-aligned relative to gpa: 4 KiB pages throughout. */
    assert_int_equal(ept_map(&f->ept, 32 * GiB, 40 * GiB + 4 * KiB, 4 * MiB, EPT_R, EPT_MT_WB), 0);
    expect_leaves(f, 6 + 1024, 518, 1);
}

static void test_large_pages_disabled(void **state)
{
    struct fixture *f = *state;
    const uint64_t size = GiB + 6 * MiB + 12 * KiB;
    ept_apply_caps(&f->ept, BIT(16)); /* 2 MiB only */
    assert_int_equal(ept_map(&f->ept, 3 * GiB - 4 * MiB, 3 * GiB - 4 * MiB, size, EPT_RWX, EPT_MT_WB), 0);
    expect_leaves(f, 3, 515, 0);
    expect_map(f, 3 * GiB + 5, 3 * GiB + 5, EPT_RWX, 2 * MiB);
    assert_int_equal(ept_unmap(&f->ept, 3 * GiB - 4 * MiB, size), 0);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);

    ept_apply_caps(&f->ept, 0); /* 4 KiB only */
    assert_int_equal(ept_map(&f->ept, 0, 0, 8 * MiB + 4 * KiB, EPT_RWX, EPT_MT_WB), 0);
    expect_leaves(f, 2049, 0, 0);
    expect_map(f, 6 * MiB, 6 * MiB, EPT_RWX, PAGE_SIZE);
}

static void test_split_1g_on_partial_unmap(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ept_map(&f->ept, GiB, 3 * GiB, GiB, EPT_R | EPT_W, EPT_MT_UC), 0);
    expect_leaves(f, 0, 0, 1);
    assert_int_equal(f->ept.tables, 2);

    const gpa_t hole = GiB + 2 * MiB + 4 * KiB;
    assert_int_equal(ept_unmap(&f->ept, hole, PAGE_SIZE), 0);
    expect_leaves(f, 511, 511, 0);
    assert_int_equal(f->ept.tables, 4);
    expect_unmapped(f, hole);
    expect_unmapped(f, hole + PAGE_SIZE - 1);
    /* The rest keeps its target, rights and memory type. */
    expect_map(f, GiB, 3 * GiB, EPT_R | EPT_W, 2 * MiB);
    expect_map(f, hole - 1, 3 * GiB + 2 * MiB + 4 * KiB - 1, EPT_R | EPT_W, PAGE_SIZE);
    expect_map(f, hole + PAGE_SIZE, 3 * GiB + 2 * MiB + 8 * KiB, EPT_R | EPT_W, PAGE_SIZE);
    expect_map(f, GiB + 4 * MiB, 3 * GiB + 4 * MiB, EPT_R | EPT_W, 2 * MiB);
    expect_map(f, 2 * GiB - 1, 4 * GiB - 1, EPT_R | EPT_W, 2 * MiB);
    assert_int_equal(memtype_at(f, GiB), 0);
    assert_int_equal(memtype_at(f, hole + PAGE_SIZE), 0);

    /* Unmapping the rest piecewise frees every table below the PML4. */
    assert_int_equal(ept_unmap(&f->ept, GiB, hole - GiB), 0);
    assert_int_equal(ept_unmap(&f->ept, hole + PAGE_SIZE, 2 * GiB - hole - PAGE_SIZE), 0);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);
    assert_int_equal(f->pool.outstanding, 1);
}

static void test_split_2m_on_partial_unmap(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ept_map(&f->ept, 2 * MiB, 10 * MiB, 4 * MiB, EPT_R | EPT_X, EPT_MT_WB), 0);
    expect_leaves(f, 0, 2, 0);
    /* The second half of the first 2 MiB page and the first 4 KiB of the next. */
    assert_int_equal(ept_unmap(&f->ept, 3 * MiB, MiB + 4 * KiB), 0);
    expect_leaves(f, 256 + 511, 0, 0);
    expect_map(f, 3 * MiB - 1, 11 * MiB - 1, EPT_R | EPT_X, PAGE_SIZE);
    expect_unmapped(f, 3 * MiB);
    expect_unmapped(f, 4 * MiB + 4 * KiB - 1);
    expect_map(f, 4 * MiB + 4 * KiB, 12 * MiB + 4 * KiB, EPT_R | EPT_X, PAGE_SIZE);
    assert_int_equal(memtype_at(f, 4 * MiB + 4 * KiB), 6);

    /* Unmapping a hole, or more than is mapped, is fine. */
    assert_int_equal(ept_unmap(&f->ept, 100 * GiB, 3 * GiB), 0);
    assert_int_equal(ept_unmap(&f->ept, 0, 8 * MiB), 0);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);
}

static void test_conflicts_and_replace(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ept_map(&f->ept, 2 * MiB, 64 * MiB, 2 * MiB, EPT_RWX, EPT_MT_WB), 0);
    uint64_t tables = f->ept.tables;

    /* The same mapping again, whole or in part, changes nothing. */
    assert_int_equal(ept_map(&f->ept, 2 * MiB, 64 * MiB, 2 * MiB, EPT_RWX, EPT_MT_WB), 0);
    assert_int_equal(ept_map(&f->ept, 3 * MiB, 65 * MiB, PAGE_SIZE, EPT_RWX, EPT_MT_WB), 0);
    expect_leaves(f, 0, 1, 0);
    assert_int_equal(f->ept.tables, tables);

    /* Anything else over it is refused, leaving it intact. */
    assert_int_equal(ept_map(&f->ept, 3 * MiB, 99 * MiB, PAGE_SIZE, EPT_RWX, EPT_MT_WB), EPT_EEXIST);
    assert_int_equal(ept_map(&f->ept, 3 * MiB, 65 * MiB, PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EEXIST);
    assert_int_equal(ept_map(&f->ept, 3 * MiB, 65 * MiB, PAGE_SIZE, EPT_RWX, EPT_MT_UC), EPT_EEXIST);
    /* A range that starts in free space and runs into the mapping: nothing is added. */
    assert_int_equal(ept_map(&f->ept, 0, 0, 4 * MiB, EPT_RWX, EPT_MT_WB), EPT_EEXIST);
    expect_unmapped(f, 0);
    expect_leaves(f, 0, 1, 0);
    assert_int_equal(f->ept.tables, tables);
    expect_map(f, 3 * MiB, 65 * MiB, EPT_RWX, 2 * MiB);

    /* Explicit replacement of one 4 KiB page splits the 2 MiB page. */
    assert_int_equal(ept_replace(&f->ept, 3 * MiB, 99 * MiB, PAGE_SIZE, EPT_R, EPT_MT_UC), 0);
    expect_leaves(f, 512, 0, 0);
    expect_map(f, 3 * MiB, 99 * MiB, EPT_R, PAGE_SIZE);
    assert_int_equal(memtype_at(f, 3 * MiB), 0);
    expect_map(f, 3 * MiB + 4 * KiB, 65 * MiB + 4 * KiB, EPT_RWX, PAGE_SIZE);
    assert_int_equal(memtype_at(f, 3 * MiB + 4 * KiB), 6);

    /* Replacing the whole 2 MiB again folds it back into one leaf, freeing the PT. */
    assert_int_equal(ept_replace(&f->ept, 2 * MiB, 128 * MiB, 2 * MiB, EPT_R | EPT_W, EPT_MT_WB), 0);
    expect_leaves(f, 0, 1, 0);
    assert_int_equal(f->ept.tables, tables);
    expect_map(f, 3 * MiB, 129 * MiB, EPT_R | EPT_W, 2 * MiB);

    /* Replace a 1 GiB leaf by a range its target alignment forces into 4 KiB pages. */
    assert_int_equal(ept_map(&f->ept, GiB, GiB, GiB, EPT_RWX, EPT_MT_WB), 0);
    assert_int_equal(ept_replace(&f->ept, GiB, 5 * GiB + 4 * KiB, 2 * MiB, EPT_R, EPT_MT_WB), 0);
    expect_leaves(f, 512, 1 + 511, 0);
    expect_map(f, GiB, 5 * GiB + 4 * KiB, EPT_R, PAGE_SIZE);
    expect_map(f, GiB + 2 * MiB, GiB + 2 * MiB, EPT_RWX, 2 * MiB);

    /* Replacing over unmapped space is just mapping. */
    assert_int_equal(ept_replace(&f->ept, 40 * GiB, 0, PAGE_SIZE, EPT_R, EPT_MT_WB), 0);
    expect_map(f, 40 * GiB, 0, EPT_R, PAGE_SIZE);
}

static void test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    struct ept *e = &f->ept;
    assert_int_equal(ept_map(e, 0x1001, 0, PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0x800, PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, 100, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, 0, EPT_R, EPT_MT_WB), EPT_EINVAL);
    /* Wrap-around and the limits of a 4-level walk / 52-bit addresses. */
    assert_int_equal(ept_map(e, ~0xfffull, 0, 2 * PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT - PAGE_SIZE, 0, 2 * PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT, 0, PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, EPT_HPA_LIMIT - PAGE_SIZE, 2 * PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, ~0xfffull, 2 * PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    /* Rights: none, write without read, unknown bits. Memory types other than UC/WB. */
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, 0, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, EPT_W, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, EPT_W | EPT_X, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, EPT_R | BIT(3), EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, EPT_R, (enum ept_memtype)1), EPT_EINVAL);
    assert_int_equal(ept_map(e, 0, 0, PAGE_SIZE, EPT_R, (enum ept_memtype)7), EPT_EINVAL);
    assert_int_equal(ept_replace(e, 0x1001, 0, PAGE_SIZE, EPT_R, EPT_MT_WB), EPT_EINVAL);
    assert_int_equal(ept_unmap(e, 0x1001, PAGE_SIZE), EPT_EINVAL);
    assert_int_equal(ept_unmap(e, 0, 0), EPT_EINVAL);
    assert_int_equal(ept_unmap(e, 0, 3), EPT_EINVAL);
    assert_int_equal(ept_unmap(e, ~0xfffull, 2 * PAGE_SIZE), EPT_EINVAL);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);
    /* The largest legal range works. */
    assert_int_equal(ept_map(e, EPT_GPA_LIMIT - GiB, EPT_HPA_LIMIT - GiB, GiB, EPT_R, EPT_MT_WB), 0);
    expect_map(f, EPT_GPA_LIMIT - 1, EPT_HPA_LIMIT - 1, EPT_R, GiB);
    expect_unmapped(f, EPT_GPA_LIMIT);
    assert_string_equal(ept_strerror(EPT_EEXIST), "range already mapped differently");
}

/* Every allocation failure point of a map and of a splitting unmap: an error, and the
 * tables exactly as before (census + outstanding pages + lookups). */
static void test_allocation_failure(void **state)
{
    struct fixture *f = *state;
    const gpa_t g = 3 * GiB - 4 * MiB;
    const uint64_t size = GiB + 6 * MiB + 12 * KiB;
    assert_int_equal(ept_map(&f->ept, 512 * GiB, 0, 2 * MiB, EPT_R, EPT_MT_WB), 0);
    uint64_t before = f->ept.tables;
    for (long budget = 0; budget < 4; budget++) {
        f->pool.budget = budget;
        assert_int_equal(ept_map(&f->ept, g, g, size, EPT_RWX, EPT_MT_WB), EPT_ENOMEM);
        expect_leaves(f, 0, 1, 0);
        assert_int_equal(f->ept.tables, before);
        expect_unmapped(f, g);
        expect_unmapped(f, 3 * GiB);
    }
    f->pool.budget = 4; /* exactly enough: PDPT, 2 PDs, PT */
    assert_int_equal(ept_map(&f->ept, g, g, size, EPT_RWX, EPT_MT_WB), 0);
    expect_leaves(f, 3, 4, 1);

    /* Splitting the 1 GiB page needs a PD and a PT. */
    for (long budget = 0; budget < 2; budget++) {
        f->pool.budget = budget;
        assert_int_equal(ept_unmap(&f->ept, 3 * GiB + 2 * MiB, PAGE_SIZE), EPT_ENOMEM);
        expect_leaves(f, 3, 4, 1);
        expect_map(f, 3 * GiB + 2 * MiB, 3 * GiB + 2 * MiB, EPT_RWX, GiB);
        f->pool.budget = budget;
        assert_int_equal(ept_replace(&f->ept, 3 * GiB + 2 * MiB, 0, PAGE_SIZE, EPT_R, EPT_MT_UC), EPT_ENOMEM);
        expect_leaves(f, 3, 4, 1);
    }
    f->pool.budget = 2;
    assert_int_equal(ept_unmap(&f->ept, 3 * GiB + 2 * MiB, PAGE_SIZE), 0);
    expect_leaves(f, 3 + 511, 4 + 511, 0);
    /* Unmapping whole leaves needs no memory at all. */
    f->pool.budget = 0;
    assert_int_equal(ept_unmap(&f->ept, 0, 1024 * GiB), 0);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);
    f->pool.budget = -1;
}

/* Random maps, replaces and unmaps over a 4 GiB window, checked page by page against
 * a plain array of what each 4 KiB guest page should translate to. */
#define WIN_PAGES (4 * GiB / PAGE_SIZE)
struct shadow_page {
    uint64_t hpa; /* 0 = unmapped (targets are never 0 here) */
    uint8_t perms, mt;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void check_page(const struct fixture *f, const struct shadow_page *s, uint64_t pg)
{
    hpa_t h;
    uint32_t p;
    uint64_t ps;
    bool m = ept_lookup(&f->ept, pg * PAGE_SIZE, &h, &p, &ps);
    if (!s[pg].hpa) {
        assert_false(m);
        return;
    }
    assert_true(m);
    assert_int_equal(h, s[pg].hpa);
    assert_int_equal(p, s[pg].perms);
    assert_int_equal(memtype_at(f, pg * PAGE_SIZE), s[pg].mt);
}

static void test_random_against_shadow(void **state)
{
    struct fixture *f = *state;
    struct shadow_page *s = calloc(WIN_PAGES, sizeof *s);
    assert_non_null(s);
    static const uint64_t grains[] = {PAGE_SIZE, 2 * MiB, GiB};
    static const uint32_t perm_set[] = {EPT_R, EPT_R | EPT_W, EPT_R | EPT_X, EPT_RWX, EPT_X};

    for (int op = 0; op < 300; op++) {
        uint64_t grain = grains[rnd() % 3];
        uint64_t count = grain == GiB ? 1 + rnd() % 2 : 1 + rnd() % 700;
        uint64_t size = MIN(count * grain, 4 * GiB);
        uint64_t gpa = ALIGN_DOWN(rnd() % (4 * GiB - size + 1), grain == GiB ? PAGE_SIZE : grain);
        /* Mostly "nicely" aligned targets, sometimes skewed by a page. */
        uint64_t hpa = (GiB * (1 + rnd() % 64) + gpa) + ((rnd() % 4) ? 0 : PAGE_SIZE);
        uint32_t perms = perm_set[rnd() % 5];
        enum ept_memtype mt = rnd() % 2 ? EPT_MT_WB : EPT_MT_UC;
        int kind = rnd() % 3;
        uint64_t first = gpa / PAGE_SIZE, n = size / PAGE_SIZE;
        int rc;
        if (kind == 0) {
            rc = ept_unmap(&f->ept, gpa, size);
            assert_int_equal(rc, 0);
            for (uint64_t i = 0; i < n; i++)
                s[first + i].hpa = 0;
        } else {
            bool conflict = false;
            for (uint64_t i = 0; i < n && !conflict; i++) {
                const struct shadow_page *p = &s[first + i];
                conflict = p->hpa && (p->hpa != hpa + i * PAGE_SIZE || p->perms != perms || p->mt != mt);
            }
            rc = kind == 1 ? ept_map(&f->ept, gpa, hpa, size, perms, mt)
                           : ept_replace(&f->ept, gpa, hpa, size, perms, mt);
            if (kind == 1 && conflict) {
                assert_int_equal(rc, EPT_EEXIST);
            } else {
                assert_int_equal(rc, 0);
                for (uint64_t i = 0; i < n; i++)
                    s[first + i] = (struct shadow_page){hpa + i * PAGE_SIZE, (uint8_t)perms, (uint8_t)mt};
            }
        }
        /* Edges of the range, plus a random sample. */
        check_page(f, s, first);
        check_page(f, s, first + n - 1);
        if (first)
            check_page(f, s, first - 1);
        if (first + n < WIN_PAGES)
            check_page(f, s, first + n);
        for (int k = 0; k < 200; k++)
            check_page(f, s, rnd() % WIN_PAGES);
        if (op % 50 == 0)
            check_census(f);
    }
    check_census(f);
    for (uint64_t pg = 0; pg < WIN_PAGES; pg += 1 + rnd() % 8)
        check_page(f, s, pg);
    assert_int_equal(ept_unmap(&f->ept, 0, 4 * GiB), 0);
    expect_leaves(f, 0, 0, 0);
    assert_int_equal(f->ept.tables, 1);
    free(s);
}

/* The core's table source, run against a host buffer handed to the page allocator
 * as if it were RAM (palloc never touches what it manages; the ops zero the pages). */
static void test_palloc_ops(void **state)
{
    (void)state;
    const size_t bytes = 64 * PAGE_SIZE;
    uint8_t *ram = aligned_alloc(PAGE_SIZE, bytes);
    assert_non_null(ram);
    memset(ram, 0xa5, bytes);
    struct mem_region map = {(uint64_t)(uintptr_t)ram, bytes, MEM_USABLE, 0};
    assert_int_equal(palloc_init(&map, 1, NULL, 0), 0);
    uint64_t free0 = palloc_free_bytes();

    struct ept e;
    assert_int_equal(ept_init(&e, &ept_palloc_ops, NULL), 0);
    assert_int_equal(ept_map(&e, 0x1000, 0x200000, 3 * PAGE_SIZE, EPT_RWX, EPT_MT_WB), 0);
    assert_int_equal(e.tables, 4);
    hpa_t h;
    assert_true(ept_lookup(&e, 0x2010, &h, NULL, NULL));
    assert_int_equal(h, 0x201010);
    assert_int_equal(palloc_free_bytes(), free0 - 4 * PAGE_SIZE);
    assert_int_equal(ept_unmap(&e, 0, 2 * MiB), 0);
    assert_int_equal(e.tables, 1);
    ept_destroy(&e);
    assert_int_equal(palloc_free_bytes(), free0);
    free(ram);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_init_pointer_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leaf_bits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_minimal_mixed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_pages_disabled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_1g_on_partial_unmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_2m_on_partial_unmap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicts_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allocation_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_against_shadow, setup, teardown),
        cmocka_unit_test(test_palloc_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
