/* Memory above 4 GiB: what the allocator holds there, reported at boot so a user sees
 * that the large memory of a server is usable for guests, and a write/read probe of it
 * through the core's identity map (hand-over test mode). */
#ifndef KEEL_VMM_HIGHMEM_H
#define KEEL_VMM_HIGHMEM_H

#include "vmm/lib/types.h"

#define HIGHMEM_BASE (1ull << 32)

struct highmem_info {
    uint64_t free_bytes;    /* free memory at or above 4 GiB */
    uint64_t largest_bytes; /* largest free block there: the biggest guest it can hold */
    uint32_t ranges;
    hpa_t top;              /* end of the highest free range */
};

void highmem_survey(struct highmem_info *h);
/* Prints one MEM: line from highmem_survey. */
void highmem_report(void);
/* Writes a distinct pattern at every 1 GiB boundary and at the last 8 bytes of each free
 * range above 4 GiB, then reads them all back. The allocator keeps no data in free
 * memory, so nothing is disturbed; call before anything else allocates (no other CPU
 * may allocate meanwhile). Prints the result; false on a mismatch. */
bool highmem_probe(void);

#endif
