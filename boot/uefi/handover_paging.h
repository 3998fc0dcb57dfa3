/* The page tables the core is entered with: physical memory identity-mapped from 0
 * (large pages), and the core image mapped at its link address (4 KiB pages, so the
 * mapping covers exactly the loader's block and nothing next to it). Pure code: the
 * tables are built in a caller-supplied buffer whose physical address is given, so
 * host tests can walk them. */
#ifndef KEEL_BOOT_UEFI_HANDOVER_PAGING_H
#define KEEL_BOOT_UEFI_HANDOVER_PAGING_H

#include "vmm/lib/types.h"

struct handover_layout {
    uint64_t identity_top; /* identity-map [0, identity_top), rounded up to 1 GiB */
    bool gb_pages;         /* CPU supports 1 GiB pages (CPUID.80000001h:EDX[26]) */
    uint64_t image_vbase;  /* page aligned, in the upper half */
    hpa_t image_pa;        /* page aligned */
    uint64_t image_size;
};

/* Upper bound on the 4 KiB tables handover_pt_build needs for this layout. */
uint64_t handover_pt_pages(const struct handover_layout *l);

/* Builds the tables in buf (pages of memory at physical address buf_pa, which must be
 * page aligned). Returns the value for CR3, or 0 if the layout is impossible (the image
 * overlaps the identity map) or buf_pages is too small. */
hpa_t handover_pt_build(void *buf, hpa_t buf_pa, uint64_t buf_pages, const struct handover_layout *l);

#endif
