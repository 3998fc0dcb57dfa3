/* Physical memory allocator, built from the boot memory map.
 * It keeps a sorted list of free ranges, so large aligned blocks (guest RAM in 2 MiB
 * or 1 GiB pieces) are as cheap to find as single pages. It never touches the memory
 * it manages, which keeps it host-testable and lets it run before paging is final. */
#ifndef KEEL_VMM_PAGE_ALLOC_H
#define KEEL_VMM_PAGE_ALLOC_H

#include "vmm/lib/types.h"
#include "boot/bootinfo.h"

#define PALLOC_MAX_RANGES 1024
#define PALLOC_NO_LIMIT (~0ull)

struct phys_range {
    hpa_t base;
    uint64_t size;
};

/* Builds the free list: MEM_USABLE ranges, trimmed to whole pages, minus every range
 * any other map entry covers (the most restrictive type wins where entries overlap),
 * minus `exclude` (Keel's image, modules, boot data), minus page 0. Entries of length 0
 * are reported and skipped; entries whose end wraps past 2^64 are reported, and count
 * as reserved up to the top unless they claim to be usable. Prints one summary line.
 * Returns 0, or -1 with a message printed when the map holds no usable memory or
 * more fragments than PALLOC_MAX_RANGES (the highest are dropped and reported; the
 * allocator still works with the rest). Calling it again starts over. */
int palloc_init(const struct mem_region *map, size_t count, const struct phys_range *exclude,
                size_t nexclude);

/* Returns `size` bytes (rounded up to pages) aligned to `align` (a power of two,
 * at least PAGE_SIZE) lying wholly below `limit`, or 0 when no such block exists.
 * Lowest-address first fit. The memory is not cleared. */
hpa_t palloc(uint64_t size, uint64_t align, hpa_t limit);
/* Gives back [base, base+size) (size rounded up to pages). Accepts what palloc returned
 * and memory that was excluded at init (a module no longer needed); anything else,
 * such as a double free, a range overlapping free memory or a range the map never
 * made usable, is reported with kprintf and ignored, leaving the list intact. */
void pfree(hpa_t base, uint64_t size);

uint64_t palloc_free_bytes(void);
uint64_t palloc_total_bytes(void); /* free at init time */
size_t palloc_range_count(void);
/* Copies out free range i (for reports and tests); false past the end. */
bool palloc_range(size_t i, struct phys_range *out);

#endif
