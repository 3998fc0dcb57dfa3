/* Physical memory allocator: a sorted, merged array of free ranges (see page_alloc.h).
 *
 * Two range sets are kept. `free_set` is what palloc hands out. `owned_set` is every
 * page Keel may ever own: usable RAM minus what the firmware map reserves and minus
 * page 0, but *including* the exclusions, so memory Keel's image or a module occupied
 * can be given back with pfree once it is no longer needed. pfree refuses anything
 * outside `owned_set`, which keeps a stray pointer from turning firmware or MMIO into
 * "free" RAM. */
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"

/* Ranges are [base, end) here; no valid range reaches 2^64, because map entries whose
 * base+length overflows are rejected. */
struct range {
    uint64_t base;
    uint64_t end;
};

struct range_set {
    struct range r[PALLOC_MAX_RANGES];
    size_t count;
    size_t dropped_ranges; /* lost because the array was full */
    uint64_t dropped_bytes;
};

static struct range_set free_set;
static struct range_set owned_set;
static uint64_t free_bytes;
static uint64_t total_bytes;
static spinlock_t palloc_lock = SPINLOCK_INIT;

static void set_delete(struct range_set *s, size_t i)
{
    memmove(&s->r[i], &s->r[i + 1], (s->count - i - 1) * sizeof(s->r[0]));
    s->count--;
}

static void set_insert(struct range_set *s, size_t i, uint64_t base, uint64_t end)
{
    memmove(&s->r[i + 1], &s->r[i], (s->count - i) * sizeof(s->r[0]));
    s->r[i].base = base;
    s->r[i].end = end;
    s->count++;
}

/* Makes room when full by forgetting the highest range: low memory is the scarce kind
 * (AP trampolines, 32-bit DMA), so it is the last to be given up. */
static void set_drop_last(struct range_set *s)
{
    struct range *last = &s->r[s->count - 1];
    s->dropped_ranges++;
    s->dropped_bytes += last->end - last->base;
    s->count--;
}

/* Adds [base, end) as a union, merging with overlapping or touching ranges.
 * Returns false when the set was full: then, if `may_drop`, the highest range (which
 * may be the new one) is dropped to make room, else nothing changes. */
static bool set_add(struct range_set *s, uint64_t base, uint64_t end, bool may_drop)
{
    size_t i = 0;
    while (i < s->count && s->r[i].end < base)
        i++;
    size_t j = i;
    while (j < s->count && s->r[j].base <= end)
        j++;
    if (j > i) {
        /* r[i..j-1] overlap or touch [base, end): fold them into r[i]. */
        s->r[i].base = MIN(s->r[i].base, base);
        s->r[i].end = MAX(s->r[j - 1].end, end);
        for (size_t k = i + 1; k < j; k++)
            set_delete(s, i + 1);
        return true;
    }
    if (s->count < PALLOC_MAX_RANGES) {
        set_insert(s, i, base, end);
        return true;
    }
    if (!may_drop)
        return false;
    if (i == s->count) {
        s->dropped_ranges++;
        s->dropped_bytes += end - base;
        return false;
    }
    set_drop_last(s);
    set_insert(s, i, base, end);
    return false;
}

/* Removes [base, end). Only a range strictly containing it needs a new slot; when the
 * set is full that either fails (returns false, nothing changed) or, if `may_drop`,
 * drops the highest range first. */
static bool set_remove(struct range_set *s, uint64_t base, uint64_t end, bool may_drop)
{
    bool complete = true;
    for (size_t i = 0; i < s->count;) {
        struct range *r = &s->r[i];
        if (r->end <= base || r->base >= end) {
            i++;
        } else if (base <= r->base && end >= r->end) {
            set_delete(s, i);
        } else if (base > r->base && end < r->end) {
            if (s->count == PALLOC_MAX_RANGES) {
                if (!may_drop)
                    return false;
                complete = false;
                if (i == s->count - 1) {
                    /* The upper piece would be the highest range: just lose it. */
                    s->dropped_ranges++;
                    s->dropped_bytes += r->end - end;
                    r->end = base;
                    return false;
                }
                set_drop_last(s);
            }
            set_insert(s, i + 1, end, s->r[i].end);
            s->r[i].end = base;
            return complete;
        } else if (base <= r->base) {
            r->base = end;
            i++;
        } else {
            r->end = base;
            i++;
        }
    }
    return complete;
}

static uint64_t set_bytes(const struct range_set *s)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->count; i++)
        n += s->r[i].end - s->r[i].base;
    return n;
}

/* Widens [base, base+len) to whole pages; the end saturates at the top of the
 * address space (reserving too much is safe, too little is not). */
static void page_outward(uint64_t base, uint64_t len, uint64_t *b, uint64_t *e)
{
    uint64_t end = base + len < base ? UINT64_MAX : base + len;
    *b = ALIGN_DOWN(base, PAGE_SIZE);
    *e = end > UINT64_MAX - (PAGE_SIZE - 1) ? UINT64_MAX : ALIGN_UP(end, PAGE_SIZE);
}

/* Shrinks every range to whole pages; unaligned edges of usable entries are not
 * Keel's to use. */
static void set_trim_inward(struct range_set *s)
{
    for (size_t i = 0; i < s->count;) {
        struct range *r = &s->r[i];
        uint64_t b = r->base > UINT64_MAX - (PAGE_SIZE - 1) ? UINT64_MAX : ALIGN_UP(r->base, PAGE_SIZE);
        uint64_t e = ALIGN_DOWN(r->end, PAGE_SIZE);
        if (b >= e) {
            set_delete(s, i);
        } else {
            r->base = b;
            r->end = e;
            i++;
        }
    }
}

int palloc_init(const struct mem_region *map, size_t count, const struct phys_range *exclude,
                size_t nexclude)
{
    spin_lock(&palloc_lock);
    memset(&owned_set, 0, sizeof(owned_set));
    int ret = 0;

    /* Pass 1: the union of usable entries, so touching entries merge before their
     * edges are trimmed. */
    for (size_t i = 0; i < count; i++) {
        const struct mem_region *m = &map[i];
        if (m->length == 0) {
            kprintf("MEM: map entry %zu (base %#llx, type %u) has length 0, ignored\n", i,
                    (unsigned long long)m->base, m->type);
            continue;
        }
        if (m->base + m->length < m->base) {
            /* A usable entry like this is nonsense; any other type still takes memory
             * away (up to the top, in pass 2): reserving too much is the safe error. */
            kprintf("MEM: map entry %zu (base %#llx, length %#llx, type %u) wraps past 2^64, %s\n",
                    i, (unsigned long long)m->base, (unsigned long long)m->length, m->type,
                    m->type == MEM_USABLE ? "ignored" : "reserved to the top");
            continue;
        }
        if (m->type == MEM_USABLE)
            set_add(&owned_set, m->base, m->base + m->length, true);
    }

    /* Pass 2: any other type wins wherever it overlaps usable memory, page-wide. */
    for (size_t i = 0; i < count; i++) {
        const struct mem_region *m = &map[i];
        if (m->type == MEM_USABLE || m->length == 0)
            continue;
        uint64_t b, e;
        page_outward(m->base, m->length, &b, &e);
        set_remove(&owned_set, b, e, true);
    }
    set_remove(&owned_set, 0, PAGE_SIZE, true);
    set_trim_inward(&owned_set);

    free_set = owned_set;
    free_set.dropped_ranges = 0;
    free_set.dropped_bytes = 0;
    for (size_t i = 0; i < nexclude; i++) {
        if (exclude[i].size == 0)
            continue;
        uint64_t b, e;
        page_outward(exclude[i].base, exclude[i].size, &b, &e);
        set_remove(&free_set, b, e, true);
    }

    free_bytes = total_bytes = set_bytes(&free_set);
    size_t nfree = free_set.count;
    size_t dropped = owned_set.dropped_ranges + free_set.dropped_ranges;
    uint64_t dropped_bytes = owned_set.dropped_bytes + free_set.dropped_bytes;
    spin_unlock(&palloc_lock);

    kprintf("MEM: %llu KiB usable in %zu ranges (%zu map entries, %zu exclusions)\n",
            (unsigned long long)(total_bytes >> 10), nfree, count, nexclude);
    if (dropped) {
        kprintf("MEM: free list full (%u ranges): %zu fragments, %llu KiB, dropped\n",
                PALLOC_MAX_RANGES, dropped, (unsigned long long)(dropped_bytes >> 10));
        ret = -1;
    }
    if (total_bytes == 0) {
        kprintf("MEM: the memory map holds no usable memory\n");
        ret = -1;
    }
    return ret;
}

hpa_t palloc(uint64_t size, uint64_t align, hpa_t limit)
{
    if (size == 0 || size > UINT64_MAX - (PAGE_SIZE - 1))
        return 0;
    size = ALIGN_UP(size, PAGE_SIZE);
    if (align < PAGE_SIZE)
        align = PAGE_SIZE;
    if (align & (align - 1)) {
        kprintf("palloc: alignment %#llx is not a power of two\n", (unsigned long long)align);
        return 0;
    }

    hpa_t found = 0;
    spin_lock(&palloc_lock);
    for (size_t i = 0; i < free_set.count; i++) {
        const struct range *r = &free_set.r[i];
        if (r->base >= limit)
            break;
        if (r->base > UINT64_MAX - (align - 1))
            break;
        uint64_t a = ALIGN_UP(r->base, align);
        uint64_t end = MIN(r->end, limit);
        if (a >= end || end - a < size)
            continue;
        /* Fails only when carving from the middle needs a slot the full list lacks.
         * Then the highest aligned block, if it ends the range, needs none. */
        if (!set_remove(&free_set, a, a + size, false)) {
            uint64_t tail = ALIGN_DOWN(end - size, align);
            if (end != r->end || tail + size != end || tail < a ||
                !set_remove(&free_set, tail, end, false))
                continue;
            a = tail;
        }
        free_bytes -= size;
        found = a;
        break;
    }
    spin_unlock(&palloc_lock);
    return found;
}

void pfree(hpa_t base, uint64_t size)
{
    if (size == 0 || (base & (PAGE_SIZE - 1)) || size > UINT64_MAX - (PAGE_SIZE - 1) ||
        base + ALIGN_UP(size, PAGE_SIZE) < base) {
        kprintf("pfree: bad range base %#llx size %#llx, ignored\n", (unsigned long long)base,
                (unsigned long long)size);
        return;
    }
    uint64_t end = base + ALIGN_UP(size, PAGE_SIZE);

    spin_lock(&palloc_lock);
    const char *problem = NULL;
    struct range clash = {0, 0};

    /* Ranges in owned_set are maximal, so anything palloc returned (or an exclusion)
     * lies inside exactly one of them. */
    bool owned = false;
    for (size_t i = 0; i < owned_set.count && !owned; i++)
        owned = owned_set.r[i].base <= base && end <= owned_set.r[i].end;
    if (!owned) {
        problem = "is not memory Keel owns";
    } else {
        for (size_t i = 0; i < free_set.count; i++) {
            if (free_set.r[i].base < end && base < free_set.r[i].end) {
                clash = free_set.r[i];
                problem = "overlaps free memory (double free?)";
                break;
            }
        }
    }
    bool leaked = false;
    if (!problem) {
        if (set_add(&free_set, base, end, false))
            free_bytes += end - base;
        else
            leaked = true;
    }
    spin_unlock(&palloc_lock);

    if (problem && clash.end)
        kprintf("pfree: [%#llx, %#llx) %s [%#llx, %#llx), ignored\n", (unsigned long long)base,
                (unsigned long long)end, problem, (unsigned long long)clash.base,
                (unsigned long long)clash.end);
    else if (problem)
        kprintf("pfree: [%#llx, %#llx) %s, ignored\n", (unsigned long long)base,
                (unsigned long long)end, problem);
    else if (leaked)
        kprintf("pfree: free list full (%u ranges), [%#llx, %#llx) leaked\n", PALLOC_MAX_RANGES,
                (unsigned long long)base, (unsigned long long)end);
}

uint64_t palloc_free_bytes(void)
{
    return __atomic_load_n(&free_bytes, __ATOMIC_RELAXED);
}

uint64_t palloc_total_bytes(void)
{
    return total_bytes;
}

size_t palloc_range_count(void)
{
    spin_lock(&palloc_lock);
    size_t n = free_set.count;
    spin_unlock(&palloc_lock);
    return n;
}

bool palloc_range(size_t i, struct phys_range *out)
{
    bool ok = false;
    spin_lock(&palloc_lock);
    if (i < free_set.count) {
        out->base = free_set.r[i].base;
        out->size = free_set.r[i].end - free_set.r[i].base;
        ok = true;
    }
    spin_unlock(&palloc_lock);
    return ok;
}
