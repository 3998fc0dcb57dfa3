/* Memory above 4 GiB (see highmem.h). */
#include "vmm/highmem.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"

#define PROBE_STEP (1ull << 30)
#define PROBE_MAGIC 0x4b45454c48494748ull /* "KEELHIGH" */

/* The part of free range i at or above 4 GiB; false past the end. */
static bool high_part(size_t i, struct phys_range *out)
{
    if (!palloc_range(i, out))
        return false;
    uint64_t end = out->base + out->size;
    if (end <= HIGHMEM_BASE) {
        out->size = 0;
    } else if (out->base < HIGHMEM_BASE) {
        out->base = HIGHMEM_BASE;
        out->size = end - HIGHMEM_BASE;
    }
    return true;
}

void highmem_survey(struct highmem_info *h)
{
    *h = (struct highmem_info){0};
    struct phys_range r;
    for (size_t i = 0; high_part(i, &r); i++) {
        if (!r.size)
            continue;
        h->ranges++;
        h->free_bytes += r.size;
        h->largest_bytes = MAX(h->largest_bytes, r.size);
        h->top = MAX(h->top, r.base + r.size);
    }
}

void highmem_report(void)
{
    struct highmem_info h;
    highmem_survey(&h);
    if (!h.ranges) {
        kprintf("MEM: no free memory above 4 GiB\n");
        return;
    }
    kprintf("MEM: above 4 GiB: %lu MiB free in %u ranges up to 0x%lx; the largest block (%lu MiB) "
            "is the biggest guest it can hold\n", h.free_bytes >> 20, h.ranges, h.top,
            h.largest_bytes >> 20);
}

static uint64_t pattern(hpa_t pa)
{
    return PROBE_MAGIC ^ pa ^ (pa << 17);
}

/* Calls fn for each probe address. */
static uint32_t for_each_probe(bool (*fn)(hpa_t pa, void *ctx), void *ctx)
{
    uint32_t n = 0;
    struct phys_range r;
    for (size_t i = 0; high_part(i, &r); i++) {
        if (!r.size)
            continue;
        uint64_t end = r.base + r.size;
        for (hpa_t pa = ALIGN_UP(r.base, PROBE_STEP); pa < end; pa += PROBE_STEP, n++)
            if (!fn(pa, ctx))
                return n;
        n++;
        if (!fn(end - 8, ctx))
            return n;
    }
    return n;
}

static bool write_one(hpa_t pa, void *ctx)
{
    (void)ctx;
    *(volatile uint64_t *)hpa_to_hva(pa) = pattern(pa);
    return true;
}

static bool check_one(hpa_t pa, void *ctx)
{
    uint64_t got = *(volatile uint64_t *)hpa_to_hva(pa);
    if (got == pattern(pa))
        return true;
    kprintf("MEM: probe above 4 GiB: 0x%lx reads 0x%lx, wrote 0x%lx\n", pa, got, pattern(pa));
    *(bool *)ctx = false;
    return false;
}

bool highmem_probe(void)
{
    struct highmem_info h;
    highmem_survey(&h);
    if (!h.ranges)
        return true;
    uint32_t n = for_each_probe(write_one, NULL);
    bool ok = true;
    for_each_probe(check_one, &ok);
    if (ok)
        kprintf("MEM: probe above 4 GiB: %u locations up to 0x%lx written and read back\n", n,
                h.top - 8);
    return ok;
}
