/* Turns the firmware's memory map into the core's (struct bootinfo .mem): sorted,
 * non-overlapping, adjacent ranges of one type merged. Pure code without firmware
 * calls, so the hand-over path can run it between the last GetMemoryMap and
 * ExitBootServices without allocating. */
#ifndef KEEL_BOOT_UEFI_MEMMAP_H
#define KEEL_BOOT_UEFI_MEMMAP_H

#include "boot/bootinfo.h"

enum memmap_mode {
    /* Boot services are about to end: their memory becomes usable. */
    MEMMAP_HANDOVER,
    /* Firmware stays alive: only the loader's private pool is usable. */
    MEMMAP_PLATFORM_CHECK,
};

struct memmap_result {
    uint32_t count;    /* entries written to out */
    uint32_t dropped;  /* ranges that did not fit in out (left out of the map) */
    uint32_t bad;      /* descriptors ignored as malformed (length 0, wrapping) */
};

/* enum mem_type for one UEFI memory type in the given mode. */
uint32_t memmap_type_from_uefi(uint32_t uefi_type, enum memmap_mode mode);

/* Converts map (map_size bytes of desc_size-byte descriptors) into out[0..cap).
 * In MEMMAP_PLATFORM_CHECK mode [pool_base, pool_base + pool_len) is reported as
 * MEM_USABLE whatever the firmware calls it. Returns false (and writes nothing
 * meaningful) if desc_size is smaller than a descriptor. */
bool memmap_from_uefi(struct mem_region *out, uint32_t cap, const void *map, uint64_t map_size,
                      uint64_t desc_size, enum memmap_mode mode, uint64_t pool_base,
                      uint64_t pool_len, struct memmap_result *res);

/* End of the highest range the map describes (0 for an empty or malformed map). */
uint64_t memmap_uefi_top(const void *map, uint64_t map_size, uint64_t desc_size);

#endif
