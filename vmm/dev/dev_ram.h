/* A VM's RAM as its device models see it, laid out as a PC's: up to GUEST_RAM_LOW_MAX
 * (or less, as configured) at guest-physical 0, the rest from 4 GiB up, the device area (PCI, the APICs, the
 * firmware's place) between. Each part is one host block (vmm/vm.h), reached only
 * through dev_ram_span, which refuses any range that is not wholly inside one part. A
 * device that takes addresses from its guest (DMA, virtqueues) turns them into host
 * pointers here and nowhere else. */
#ifndef KEEL_VMM_DEV_DEV_RAM_H
#define KEEL_VMM_DEV_DEV_RAM_H

#include "vmm/lib/types.h"

/* RAM below 4 GiB ends where the PC's device area begins (the ECAM window at
 * 0xE0000000); RAM beyond that starts again at 4 GiB. */
#define GUEST_RAM_LOW_MAX 0xE0000000ull
#define GUEST_RAM_HIGH_BASE 0x100000000ull

struct dev_ram {
    uint8_t *hva;       /* host view of guest-physical 0 */
    uint64_t size;      /* bytes from 0: at most GUEST_RAM_LOW_MAX */
    uint8_t *high_hva;  /* host view of GUEST_RAM_HIGH_BASE (NULL: no RAM there) */
    uint64_t high_size; /* bytes from GUEST_RAM_HIGH_BASE */
};

/* How a VM of `memory` bytes is split: what lies below 4 GiB (at most below_max, which
 * 0 or anything above GUEST_RAM_LOW_MAX makes GUEST_RAM_LOW_MAX), and what above. */
static inline uint64_t guest_ram_low(uint64_t memory, uint64_t below_max)
{
    uint64_t max = below_max && below_max < GUEST_RAM_LOW_MAX ? below_max : GUEST_RAM_LOW_MAX;
    return memory < max ? memory : max;
}
static inline uint64_t guest_ram_high(uint64_t memory, uint64_t below_max)
{
    return memory - guest_ram_low(memory, below_max);
}

/* Whether [gpa, gpa + len) lies inside [0, size): no byte outside, no wrap-around. */
static inline bool gpa_range_in(uint64_t gpa, uint64_t len, uint64_t size)
{
    return gpa < size && len <= size - gpa;
}

/* The host view of [gpa, gpa + len), or NULL when any byte of it is outside the RAM
 * (a range across the device area is outside: the parts are separate blocks). */
static inline void *dev_ram_span(const struct dev_ram *r, uint64_t gpa, uint64_t len)
{
    if (gpa_range_in(gpa, len, r->size))
        return r->hva + gpa;
    if (gpa >= GUEST_RAM_HIGH_BASE && gpa_range_in(gpa - GUEST_RAM_HIGH_BASE, len, r->high_size))
        return r->high_hva + (gpa - GUEST_RAM_HIGH_BASE);
    return NULL;
}

/* Whether the byte at gpa is RAM. */
static inline bool dev_ram_holds(const struct dev_ram *r, uint64_t gpa)
{
    return dev_ram_span(r, gpa, 1) != NULL;
}

#endif
