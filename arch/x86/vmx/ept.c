/* EPT builder. Every change runs the same walk twice: a planning pass that reads
 * the tables, finds conflicts and counts the table pages the change needs, then, with
 * those pages reserved, an applying pass that cannot fail. So a change either happens
 * whole or not at all, and running out of memory half-way never leaves a VM with half
 * a mapping. Levels count up from the leaves: 0 = PT (4 KiB entries), 1 = PD (2 MiB),
 * 2 = PDPT (1 GiB), 3 = PML4 (512 GiB). */
#include "arch/x86/vmx/ept.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/string.h"

#define EPT_TOP_LEVEL 3
#define EPT_ENTRIES 512
#define EPT_PERM_MASK 7ull
#define EPT_MT_SHIFT 3
#define EPT_ATTR_MASK 0x3full   /* rights and memory type: what "same mapping" compares */
#define EPT_LARGE BIT(7)
#define EPT_ADDR_MASK 0x000ffffffffff000ull
/* A table entry grants everything; the leaf decides. */
#define EPT_TABLE_BITS EPT_RWX

#define EPTP_MT_WB 6ull
#define EPTP_WALK_4 (3ull << 3)
#define EPTP_AD BIT(6)

static inline uint64_t level_size(int level) { return 1ull << (PAGE_SHIFT + 9 * level); }
static inline unsigned level_index(gpa_t gpa, int level) { return (gpa >> (PAGE_SHIFT + 9 * level)) & (EPT_ENTRIES - 1); }
static inline bool present(uint64_t e) { return e & EPT_PERM_MASK; }
static inline bool is_leaf(uint64_t e, int level) { return level == 0 || (e & EPT_LARGE); }
static inline hpa_t leaf_base(uint64_t e, int level) { return e & EPT_ADDR_MASK & ~(level_size(level) - 1); }
static inline uint64_t *table_hva(const struct ept *ept, hpa_t t) { return ept->ops->to_hva(ept->ctx, t); }

static bool level_may_be_leaf(const struct ept *ept, int level)
{
    return level == 0 || (level == 1 && ept->allow_2m) || (level == 2 && ept->allow_1g);
}

static uint64_t make_leaf(hpa_t hpa, uint64_t attrs, int level)
{
    return hpa | attrs | (level ? EPT_LARGE : 0);
}

/* Entry i of the table a split of leaf `parent` (one level up) would produce: the same
 * attributes (A/D flags included, so dirty tracking never loses a write) over the
 * matching slice of the parent's target. */
static uint64_t split_child(uint64_t parent, int level, unsigned i)
{
    hpa_t base = leaf_base(parent, level + 1) + (uint64_t)i * level_size(level);
    return make_leaf(base, parent & ~EPT_ADDR_MASK & ~EPT_LARGE, level);
}

static void free_subtree(struct ept *ept, hpa_t table, int level)
{
    uint64_t *t = table_hva(ept, table);
    for (unsigned i = 0; i < EPT_ENTRIES; i++) {
        if (!present(t[i]))
            continue;
        if (is_leaf(t[i], level))
            ept->leaves[level]--;
        else
            free_subtree(ept, t[i] & EPT_ADDR_MASK, level - 1);
    }
    ept->ops->free_table(ept->ctx, table);
    ept->tables--;
}

static bool table_empty(const struct ept *ept, hpa_t table)
{
    const uint64_t *t = table_hva(ept, table);
    for (unsigned i = 0; i < EPT_ENTRIES; i++)
        if (present(t[i]))
            return false;
    return true;
}

struct walk {
    struct ept *ept;
    bool unmap;     /* else map */
    bool replace;   /* map over whatever is there */
    bool apply;     /* else only plan */
    gpa_t gpa0;
    hpa_t hpa0;
    uint64_t attrs;
    uint64_t need;  /* planning: table pages the change needs */
    hpa_t reserve;  /* applying: those pages, chained through their first qword */
};

static hpa_t take_reserved(struct walk *w)
{
    hpa_t t = w->reserve;
    if (!t)
        panic("ept: planned too few table pages");
    uint64_t *p = table_hva(w->ept, t);
    w->reserve = p[0];
    p[0] = 0;
    w->ept->tables++;
    return t;
}

static void release_reserve(struct walk *w)
{
    while (w->reserve) {
        hpa_t t = w->reserve;
        w->reserve = table_hva(w->ept, t)[0];
        w->ept->ops->free_table(w->ept->ctx, t);
    }
}

static int walk(struct walk *w, hpa_t table, uint64_t split_from, int level, gpa_t start, gpa_t end);

/* Puts a new table under entry i (empty, or holding the split of `split_from`) and
 * walks [g, end) in it. The table is filled before it is linked, so a CPU walking
 * the live tables never sees it half-built. While planning, `t` may be a table that
 * does not exist yet (NULL): the walk below then reads the entries it would hold. */
static int descend_new(struct walk *w, uint64_t *t, unsigned i, int level, gpa_t g, gpa_t end, uint64_t split_from)
{
    struct ept *ept = w->ept;
    if (!w->apply) {
        w->need++;
        return walk(w, 0, split_from, level - 1, g, end);
    }
    hpa_t child = take_reserved(w);
    if (split_from) {
        uint64_t *c = table_hva(ept, child);
        for (unsigned k = 0; k < EPT_ENTRIES; k++)
            c[k] = split_child(split_from, level - 1, k);
        ept->leaves[level - 1] += EPT_ENTRIES;
    }
    walk(w, child, 0, level - 1, g, end);
    uint64_t old = t[i];
    t[i] = child | EPT_TABLE_BITS;
    if (present(old))
        ept->leaves[level]--; /* only a leaf is ever replaced by a new table */
    return 0;
}

static int map_entry(struct walk *w, uint64_t *t, unsigned i, uint64_t e, int level, gpa_t g, gpa_t end, bool full)
{
    struct ept *ept = w->ept;
    uint64_t size = level_size(level);
    gpa_t ebase = ALIGN_DOWN(g, size);
    hpa_t target = w->hpa0 + (ebase - w->gpa0); /* meaningful only when full */
    bool as_leaf = full && level_may_be_leaf(ept, level) && (target & (size - 1)) == 0;

    if (!present(e)) {
        if (!as_leaf)
            return descend_new(w, t, i, level, g, end, 0);
        if (w->apply) {
            t[i] = make_leaf(target, w->attrs, level);
            ept->leaves[level]++;
        }
        return 0;
    }
    if (is_leaf(e, level)) {
        hpa_t now = leaf_base(e, level) + (g - ebase);
        if (now == w->hpa0 + (g - w->gpa0) && (e & EPT_ATTR_MASK) == w->attrs)
            return 0; /* already translated exactly so */
        if (!w->replace)
            return EPT_EEXIST;
        if (as_leaf) {
            if (w->apply)
                t[i] = make_leaf(target, w->attrs, level);
            return 0;
        }
        /* Wholly covered: the old leaf simply goes; partly: its outside part stays. */
        return descend_new(w, t, i, level, g, end, full ? 0 : e);
    }
    hpa_t child = e & EPT_ADDR_MASK;
    if (as_leaf && w->replace) {
        if (w->apply) {
            t[i] = make_leaf(target, w->attrs, level);
            ept->leaves[level]++;
            free_subtree(ept, child, level - 1);
        }
        return 0;
    }
    return walk(w, child, 0, level - 1, g, end);
}

static int unmap_entry(struct walk *w, uint64_t *t, unsigned i, uint64_t e, int level, gpa_t g, gpa_t end, bool full)
{
    struct ept *ept = w->ept;
    if (!present(e))
        return 0;
    if (is_leaf(e, level)) {
        if (!full)
            return descend_new(w, t, i, level, g, end, e);
        if (w->apply) {
            t[i] = 0;
            ept->leaves[level]--;
        }
        return 0;
    }
    hpa_t child = e & EPT_ADDR_MASK;
    if (full) {
        if (w->apply) {
            t[i] = 0;
            free_subtree(ept, child, level - 1);
        }
        return 0;
    }
    int rc = walk(w, child, 0, level - 1, g, end);
    if (w->apply && table_empty(ept, child)) {
        t[i] = 0;
        ept->ops->free_table(ept->ctx, child);
        ept->tables--;
    }
    return rc;
}

/* Visits the entries of one table that [start, end) touches. `table` 0 means a table
 * that exists only in the plan: empty, or the split of leaf `split_from`. */
static int walk(struct walk *w, hpa_t table, uint64_t split_from, int level, gpa_t start, gpa_t end)
{
    uint64_t *t = table ? table_hva(w->ept, table) : NULL;
    uint64_t size = level_size(level);
    for (gpa_t g = start; g < end;) {
        gpa_t ebase = ALIGN_DOWN(g, size);
        gpa_t cend = MIN(end, ebase + size);
        unsigned i = level_index(ebase, level);
        uint64_t e = t ? t[i] : split_from ? split_child(split_from, level, i) : 0;
        bool full = g == ebase && cend == ebase + size;
        int rc = w->unmap ? unmap_entry(w, t, i, e, level, g, cend, full)
                          : map_entry(w, t, i, e, level, g, cend, full);
        if (rc)
            return rc;
        g = cend;
    }
    return 0;
}

static int run_walk(struct walk *w, gpa_t gpa, uint64_t size)
{
    struct ept *ept = w->ept;
    int rc = walk(w, ept->pml4, 0, EPT_TOP_LEVEL, gpa, gpa + size);
    if (rc)
        return rc;
    for (uint64_t n = 0; n < w->need; n++) {
        hpa_t p = ept->ops->alloc_table(ept->ctx);
        if (!p) {
            release_reserve(w);
            return EPT_ENOMEM;
        }
        table_hva(ept, p)[0] = w->reserve;
        w->reserve = p;
    }
    w->apply = true;
    walk(w, ept->pml4, 0, EPT_TOP_LEVEL, gpa, gpa + size);
    if (w->reserve)
        panic("ept: planned more table pages than the change used");
    return 0;
}

static bool range_ok(uint64_t base, uint64_t size, uint64_t limit)
{
    return size && !(base & (PAGE_SIZE - 1)) && !(size & (PAGE_SIZE - 1)) && base < limit && size <= limit - base;
}

static bool perms_ok(uint32_t perms)
{
    /* Write without read is an EPT misconfiguration (SDM: EPT misconfigurations). */
    return perms && !(perms & ~EPT_RWX) && !((perms & EPT_W) && !(perms & EPT_R));
}

static int map_common(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt,
                      bool replace)
{
    if (!ept->pml4 || !range_ok(gpa, size, EPT_GPA_LIMIT) || !range_ok(hpa, size, EPT_HPA_LIMIT) ||
        !perms_ok(perms) || (mt != EPT_MT_UC && mt != EPT_MT_WB))
        return EPT_EINVAL;
    struct walk w = {
        .ept = ept,
        .replace = replace,
        .gpa0 = gpa,
        .hpa0 = hpa,
        .attrs = perms | ((uint64_t)mt << EPT_MT_SHIFT), /* "ignore PAT" (bit 6) stays clear */
    };
    return run_walk(&w, gpa, size);
}

int ept_map(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt)
{
    return map_common(ept, gpa, hpa, size, perms, mt, false);
}

int ept_replace(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt)
{
    return map_common(ept, gpa, hpa, size, perms, mt, true);
}

int ept_unmap(struct ept *ept, gpa_t gpa, uint64_t size)
{
    if (!ept->pml4 || !range_ok(gpa, size, EPT_GPA_LIMIT))
        return EPT_EINVAL;
    struct walk w = {.ept = ept, .unmap = true};
    return run_walk(&w, gpa, size);
}

int ept_init(struct ept *ept, const struct ept_ops *ops, void *ctx)
{
    memset(ept, 0, sizeof *ept);
    if (!ops || !ops->alloc_table || !ops->free_table || !ops->to_hva)
        return EPT_EINVAL;
    ept->ops = ops;
    ept->ctx = ctx;
    ept->allow_2m = ept->allow_1g = true;
    ept->pml4 = ops->alloc_table(ctx);
    if (!ept->pml4)
        return EPT_ENOMEM;
    ept->tables = 1;
    return 0;
}

void ept_apply_caps(struct ept *ept, uint64_t ept_vpid_cap)
{
    ept->allow_2m = ept_vpid_cap & EPT_CAP_2M;
    ept->allow_1g = ept_vpid_cap & EPT_CAP_1G;
}

void ept_destroy(struct ept *ept)
{
    if (ept->pml4)
        free_subtree(ept, ept->pml4, EPT_TOP_LEVEL);
    ept->pml4 = 0;
}

uint64_t ept_leaf_entry(const struct ept *ept, gpa_t gpa, uint64_t *page_size)
{
    if (!ept->pml4 || gpa >= EPT_GPA_LIMIT)
        return 0;
    hpa_t table = ept->pml4;
    for (int level = EPT_TOP_LEVEL; level >= 0; level--) {
        uint64_t e = table_hva(ept, table)[level_index(gpa, level)];
        if (!present(e))
            return 0;
        if (is_leaf(e, level)) {
            if (page_size)
                *page_size = level_size(level);
            return e;
        }
        table = e & EPT_ADDR_MASK;
    }
    return 0;
}

bool ept_lookup(const struct ept *ept, gpa_t gpa, hpa_t *hpa, uint32_t *perms, uint64_t *page_size)
{
    uint64_t size;
    uint64_t e = ept_leaf_entry(ept, gpa, &size);
    if (!e)
        return false;
    if (hpa)
        *hpa = (e & EPT_ADDR_MASK & ~(size - 1)) + (gpa & (size - 1));
    if (perms)
        *perms = e & EPT_PERM_MASK;
    if (page_size)
        *page_size = size;
    return true;
}

uint64_t ept_pointer(const struct ept *ept, bool ad)
{
    return ept->pml4 | EPTP_MT_WB | EPTP_WALK_4 | (ad ? EPTP_AD : 0);
}

const char *ept_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case EPT_EINVAL: return "invalid argument";
    case EPT_ENOMEM: return "out of memory for EPT tables";
    case EPT_EEXIST: return "range already mapped differently";
    default: return "unknown EPT error";
    }
}

static hpa_t palloc_table(void *ctx)
{
    (void)ctx;
    hpa_t p = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    if (p)
        memset((void *)(uintptr_t)p, 0, PAGE_SIZE);
    return p;
}

static void pfree_table(void *ctx, hpa_t t)
{
    (void)ctx;
    pfree(t, PAGE_SIZE);
}

static void *identity_hva(void *ctx, hpa_t t)
{
    (void)ctx;
    return (void *)(uintptr_t)t;
}

const struct ept_ops ept_palloc_ops = {palloc_table, pfree_table, identity_hva};
