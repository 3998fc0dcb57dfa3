/* A VM's RAM as its device models see it: one block at guest-physical 0 (vmm/vm.h),
 * reached only through dev_ram_span, which refuses any range that is not wholly
 * inside it. A device that takes addresses from its guest (DMA, virtqueues) turns them
 * into host pointers here and nowhere else. */
#ifndef KEEL_VMM_DEV_DEV_RAM_H
#define KEEL_VMM_DEV_DEV_RAM_H

#include "vmm/lib/types.h"

struct dev_ram {
    uint8_t *hva;  /* host view of guest-physical 0 */
    uint64_t size; /* bytes */
};

/* Whether [gpa, gpa + len) lies inside [0, size): no byte outside, no wrap-around. */
static inline bool gpa_range_in(uint64_t gpa, uint64_t len, uint64_t size)
{
    return gpa < size && len <= size - gpa;
}

/* The host view of [gpa, gpa + len), or NULL when any byte of it is outside the RAM. */
static inline void *dev_ram_span(const struct dev_ram *r, uint64_t gpa, uint64_t len)
{
    return gpa_range_in(gpa, len, r->size) ? r->hva + gpa : NULL;
}

#endif
