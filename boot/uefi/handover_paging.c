/* Hand-over page tables (see handover_paging.h); 4-level paging, Intel SDM vol. 3A
 * section 4.5. */
#include "boot/uefi/handover_paging.h"
#include "vmm/lib/string.h"

#define PTE_P BIT(0)
#define PTE_RW BIT(1)
#define PTE_PS BIT(7)
#define PTE_ADDR 0x000ffffffffff000ull

#define LEVEL_SHIFT(level) (12 + 9 * ((level) - 1)) /* 1 = PT ... 4 = PML4 */
#define INDEX(va, level) (((va) >> LEVEL_SHIFT(level)) & 511)

struct pt_builder {
    uint64_t *buf;
    hpa_t buf_pa;
    uint64_t pages, used;
};

static uint64_t *table_va(struct pt_builder *b, hpa_t pa)
{
    return b->buf + (pa - b->buf_pa) / sizeof(uint64_t);
}

/* A zeroed table's physical address, or 0 when the buffer is used up. */
static hpa_t new_table(struct pt_builder *b)
{
    if (b->used == b->pages)
        return 0;
    hpa_t pa = b->buf_pa + b->used * PAGE_SIZE;
    b->used++;
    memset(table_va(b, pa), 0, PAGE_SIZE);
    return pa;
}

/* The table one level below entry e, creating it if needed; 0 if e maps a large page
 * or the buffer is used up. */
static hpa_t next_table(struct pt_builder *b, uint64_t *e)
{
    if (*e & PTE_P)
        return (*e & PTE_PS) ? 0 : (*e & PTE_ADDR);
    hpa_t pa = new_table(b);
    if (pa)
        *e = pa | PTE_P | PTE_RW;
    return pa;
}

/* Maps va -> pa with a page of the given level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB). */
static bool map_page(struct pt_builder *b, hpa_t pml4, uint64_t va, hpa_t pa, int level)
{
    hpa_t table = pml4;
    for (int l = 4; l > level; l--) {
        table = next_table(b, &table_va(b, table)[INDEX(va, l)]);
        if (!table)
            return false;
    }
    uint64_t *e = &table_va(b, table)[INDEX(va, level)];
    if (*e & PTE_P)
        return false;
    *e = pa | PTE_P | PTE_RW | (level > 1 ? PTE_PS : 0);
    return true;
}

/* Distinct level-`level` regions touched by [va, va + size), size > 0. */
static uint64_t span(uint64_t va, uint64_t size, int level)
{
    int shift = LEVEL_SHIFT(level + 1);
    return ((va + size - 1) >> shift) - (va >> shift) + 1;
}

static uint64_t identity_gib(const struct handover_layout *l)
{
    return ALIGN_UP(MAX(l->identity_top, 4ull << 30), HUGE_PAGE_SIZE) / HUGE_PAGE_SIZE;
}

uint64_t handover_pt_pages(const struct handover_layout *l)
{
    uint64_t gib = identity_gib(l);
    uint64_t pages = 1;                  /* PML4 */
    pages += ALIGN_UP(gib, 512) / 512;   /* PDPTs */
    if (!l->gb_pages)
        pages += gib;                    /* one PD per GiB */
    if (l->image_size) {
        pages += span(l->image_vbase, l->image_size, 3); /* PDPTs */
        pages += span(l->image_vbase, l->image_size, 2); /* PDs */
        pages += span(l->image_vbase, l->image_size, 1); /* PTs */
    }
    return pages;
}

hpa_t handover_pt_build(void *buf, hpa_t buf_pa, uint64_t buf_pages, const struct handover_layout *l)
{
    struct pt_builder b = { .buf = buf, .buf_pa = buf_pa, .pages = buf_pages };
    hpa_t pml4 = new_table(&b);
    uint64_t gib = identity_gib(l);

    if (!pml4 || buf_pa % PAGE_SIZE || l->image_vbase % PAGE_SIZE || l->image_pa % PAGE_SIZE)
        return 0;
    if (l->image_size && l->image_vbase > UINT64_MAX - (l->image_size - 1))
        return 0;

    for (uint64_t g = 0; g < gib; g++) {
        uint64_t pa = g * HUGE_PAGE_SIZE;
        if (l->gb_pages) {
            if (!map_page(&b, pml4, pa, pa, 3))
                return 0;
            continue;
        }
        for (uint64_t off = 0; off < HUGE_PAGE_SIZE; off += LARGE_PAGE_SIZE)
            if (!map_page(&b, pml4, pa + off, pa + off, 2))
                return 0;
    }

    for (uint64_t off = 0; off < l->image_size; off += PAGE_SIZE)
        if (!map_page(&b, pml4, l->image_vbase + off, l->image_pa + off, 1))
            return 0;
    return pml4;
}
