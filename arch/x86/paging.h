/* Keel's own 4-level page tables: physical memory identity-mapped (write-back for RAM,
 * uncached for everything else), the core image at its link address. */
#ifndef KEEL_ARCH_X86_PAGING_H
#define KEEL_ARCH_X86_PAGING_H

#include "vmm/lib/types.h"
#include "boot/bootinfo.h"

/* Builds the tables from the memory map and switches CR3 to them. */
void paging_init(const struct bootinfo *bi);
/* Physical address of the PML4; below 4 GiB so the AP trampoline can load it from
 * 32-bit code. */
hpa_t paging_kernel_cr3(void);
/* Makes sure [base, base+size) is identity-mapped uncached (device registers above
 * the top of RAM, e.g. a 64-bit ECAM window). Returns false if tables run out. */
bool paging_map_mmio(hpa_t base, uint64_t size);

/* Physical address of something inside the core image (code, data, .bss). */
hpa_t kernel_va_to_pa(const void *va);
static inline void *hpa_to_hva(hpa_t pa) { return (void *)(uintptr_t)pa; }
/* The way back, for what hpa_to_hva gave (allocator pages, identity-mapped). */
static inline hpa_t hva_to_hpa(const void *va) { return (hpa_t)(uintptr_t)va; }

#endif
