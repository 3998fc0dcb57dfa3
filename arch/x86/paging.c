/* Keel's host page tables. Physical memory is identity-mapped so that VMX structures,
 * page tables and device registers are reached at their physical addresses; RAM is
 * write-back, everything else uncached. Page 0 stays unmapped to catch NULL. */
#include "arch/x86/paging.h"
#include "arch/x86/cpu.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"

#define PTE_P BIT(0)
#define PTE_W BIT(1)
#define PTE_PWT BIT(3)
#define PTE_PCD BIT(4)
#define PTE_PS BIT(7)
#define PTE_ADDR 0x000ffffffffff000ull
#define ATTR_WB (PTE_P | PTE_W)
#define ATTR_UC (PTE_P | PTE_W | PTE_PCD | PTE_PWT)
#define TABLE_LIMIT (1ull << 32) /* tables must be reachable under the loaders' maps */

extern char __image_start[], __image_end[];

static uint64_t *pml4;
static hpa_t kernel_pa_base;
static bool have_1g_pages;
static spinlock_t paging_lock = SPINLOCK_INIT;
static const struct mem_region *map_regions;
static uint32_t map_count;

enum block_kind { BLOCK_RAM, BLOCK_DEVICE, BLOCK_MIXED };

hpa_t kernel_va_to_pa(const void *va)
{
    return (hpa_t)((uintptr_t)va - (uintptr_t)__image_start) + kernel_pa_base;
}

hpa_t paging_kernel_cr3(void)
{
    return (hpa_t)(uintptr_t)pml4;
}

static bool is_ram_type(uint32_t t)
{
    return t != MEM_MMIO && t != MEM_RESERVED;
}

/* RAM when wholly covered by RAM-type entries and touched by no device entry; DEVICE
 * when no RAM entry touches it (holes included); MIXED otherwise. */
static enum block_kind classify(uint64_t start, uint64_t size)
{
    uint64_t end = start + size, covered = start;
    bool ram_any = false, dev_any = false;
    for (uint32_t i = 0; i < map_count; i++) {
        const struct mem_region *r = &map_regions[i];
        uint64_t rend = r->base + r->length;
        if (rend <= start || r->base >= end)
            continue;
        if (!is_ram_type(r->type)) {
            dev_any = true;
            continue;
        }
        ram_any = true;
        if (r->base <= covered && rend > covered)
            covered = rend;
    }
    if (dev_any && ram_any)
        return BLOCK_MIXED;
    if (!ram_any)
        return BLOCK_DEVICE;
    return covered >= end ? BLOCK_RAM : BLOCK_MIXED;
}

static uint64_t *new_table(void)
{
    hpa_t pa = palloc(PAGE_SIZE, PAGE_SIZE, TABLE_LIMIT);
    if (!pa)
        return NULL;
    memset(hpa_to_hva(pa), 0, PAGE_SIZE);
    return hpa_to_hva(pa);
}

/* Returns the table below `entry`, creating it, or splitting a large page into 512
 * smaller ones with the same attributes. */
static uint64_t *descend(uint64_t *entry, uint64_t child_page_size)
{
    if ((*entry & PTE_P) && !(*entry & PTE_PS))
        return hpa_to_hva(*entry & PTE_ADDR);
    uint64_t *t = new_table();
    if (!t)
        return NULL;
    if (*entry & PTE_P) {
        uint64_t base = *entry & PTE_ADDR & ~(child_page_size * 512 - 1);
        uint64_t attr = *entry & (PTE_P | PTE_W | PTE_PCD | PTE_PWT);
        for (int i = 0; i < 512; i++)
            t[i] = (base + i * child_page_size) | attr | (child_page_size > PAGE_SIZE ? PTE_PS : 0);
    }
    *entry = (hpa_t)(uintptr_t)t | PTE_P | PTE_W;
    return t;
}

/* Maps one page of `size` (4K, 2M or 1G). With `keep`, an existing mapping wins. */
static bool map_one(uint64_t va, hpa_t pa, uint64_t size, uint64_t attr, bool keep)
{
    uint64_t *t = pml4;
    static const uint64_t level_size[] = {1ull << 39, HUGE_PAGE_SIZE, LARGE_PAGE_SIZE, PAGE_SIZE};
    for (int level = 0; level < 4; level++) {
        unsigned idx = (va >> (39 - 9 * level)) & 511;
        uint64_t *e = &t[idx];
        if (level_size[level] == size) {
            if (keep && (*e & PTE_P))
                return true;
            *e = pa | attr | (size > PAGE_SIZE ? PTE_PS : 0);
            return true;
        }
        if (keep && (*e & PTE_P) && (*e & PTE_PS))
            return true;
        t = descend(e, level_size[level + 1]);
        if (!t)
            return false;
    }
    return false;
}

static bool map_range(uint64_t va, hpa_t pa, uint64_t size, uint64_t attr, bool keep)
{
    uint64_t end = va + size;
    while (va < end) {
        uint64_t step = PAGE_SIZE;
        if (have_1g_pages && !(va % HUGE_PAGE_SIZE) && !(pa % HUGE_PAGE_SIZE) && end - va >= HUGE_PAGE_SIZE)
            step = HUGE_PAGE_SIZE;
        else if (!(va % LARGE_PAGE_SIZE) && !(pa % LARGE_PAGE_SIZE) && end - va >= LARGE_PAGE_SIZE)
            step = LARGE_PAGE_SIZE;
        if (!map_one(va, pa, step, attr, keep))
            return false;
        va += step;
        pa += step;
    }
    return true;
}

static bool identity_map_block(uint64_t base, uint64_t size)
{
    if (base == 0 && size == LARGE_PAGE_SIZE) {
        /* The first 2 MiB: per 4K page, skipping page 0. */
        for (uint64_t a = PAGE_SIZE; a < size; a += PAGE_SIZE)
            if (!map_one(a, a, PAGE_SIZE, classify(a, PAGE_SIZE) == BLOCK_DEVICE ? ATTR_UC : ATTR_WB, false))
                return false;
        return true;
    }
    enum block_kind k = classify(base, size);
    if (k != BLOCK_MIXED && (size != HUGE_PAGE_SIZE || have_1g_pages))
        return map_one(base, base, size, k == BLOCK_RAM ? ATTR_WB : ATTR_UC, false);
    uint64_t sub = size == HUGE_PAGE_SIZE ? LARGE_PAGE_SIZE : PAGE_SIZE;
    if (size == PAGE_SIZE)
        return map_one(base, base, PAGE_SIZE, k == BLOCK_DEVICE ? ATTR_UC : ATTR_WB, false);
    for (uint64_t a = base; a < base + size; a += sub)
        if (!identity_map_block(a, sub))
            return false;
    return true;
}

void paging_init(const struct bootinfo *bi)
{
    kernel_pa_base = bi->kernel_phys_base;
    have_1g_pages = (cpuid(0x80000000, 0).eax >= 0x80000001) && (cpuid(0x80000001, 0).edx & BIT(26));
    map_regions = bi->mem;
    map_count = bi->mem_count;

    uint64_t top = 1ull << 32;
    for (uint32_t i = 0; i < bi->mem_count; i++)
        if (is_ram_type(bi->mem[i].type))
            top = MAX(top, bi->mem[i].base + bi->mem[i].length);
    top = ALIGN_UP(top, HUGE_PAGE_SIZE);

    pml4 = new_table();
    if (!pml4)
        panic("paging: no memory below 4 GiB for page tables");
    for (uint64_t a = 0; a < top; a += HUGE_PAGE_SIZE)
        if (!identity_map_block(a, HUGE_PAGE_SIZE))
            panic("paging: out of memory while mapping 0x%lx", a);

    uint64_t image_size = ALIGN_UP((uint64_t)(__image_end - __image_start), PAGE_SIZE);
    if (!map_range((uint64_t)(uintptr_t)__image_start, kernel_pa_base, image_size, ATTR_WB, false))
        panic("paging: out of memory while mapping the core image");

    write_cr3(paging_kernel_cr3());
    kprintf("PAGING: identity map 0-%lu GiB (%s pages), core at 0x%lx\n", top >> 30,
            have_1g_pages ? "1G/2M/4K" : "2M/4K", kernel_pa_base);
}

bool paging_map_mmio(hpa_t base, uint64_t size)
{
    uint64_t start = ALIGN_DOWN(base, PAGE_SIZE);
    uint64_t end = ALIGN_UP(base + size, PAGE_SIZE);
    spin_lock(&paging_lock);
    bool ok = map_range(start, start, end - start, ATTR_UC, true);
    spin_unlock(&paging_lock);
    /* Only new entries were written; stale negative TLB entries do not exist on x86. */
    return ok;
}
