/* UEFI memory map -> Keel memory map (see memmap.h). */
#include "boot/uefi/memmap.h"
#include "boot/uefi/uefi_mem_types.h"
#include "vmm/lib/string.h"

uint32_t memmap_type_from_uefi(uint32_t uefi_type, enum memmap_mode mode)
{
    bool handover = mode == MEMMAP_HANDOVER;

    switch (uefi_type) {
    case UEFI_MT_CONVENTIONAL:
        /* While the firmware lives it may allocate any free page at any time. */
        return handover ? MEM_USABLE : MEM_RESERVED;
    case UEFI_MT_BOOT_SERVICES_CODE:
    case UEFI_MT_BOOT_SERVICES_DATA:
    case UEFI_MT_LOADER_CODE: /* this loader: dead once the core runs, unless it returns */
        return handover ? MEM_USABLE : MEM_FIRMWARE;
    case UEFI_MT_LOADER_DATA:
        return MEM_BOOT_DATA;
    case UEFI_MT_RUNTIME_SERVICES_CODE:
    case UEFI_MT_RUNTIME_SERVICES_DATA:
        return MEM_FIRMWARE;
    case UEFI_MT_ACPI_RECLAIM:
        return MEM_ACPI_RECLAIMABLE;
    case UEFI_MT_ACPI_NVS:
        return MEM_ACPI_NVS;
    case UEFI_MT_MMIO:
    case UEFI_MT_MMIO_PORT_SPACE:
        return MEM_MMIO;
    case UEFI_MT_UNUSABLE:
        return MEM_UNUSABLE;
    default: /* reserved, PAL code, persistent, unaccepted, OEM/OS-defined */
        return MEM_RESERVED;
    }
}

/* Adds [base, end) to the sorted array, merging with same-type neighbours. Firmware
 * maps never overlap by specification; should one do so anyway the range already
 * present wins, so the result still honours the bootinfo contract. */
static void add_range(struct mem_region *out, uint32_t cap, struct memmap_result *res,
                      uint64_t base, uint64_t end, uint32_t type)
{
    uint32_t n = res->count;
    uint32_t idx = n;

    /* Firmware maps are nearly always sorted: search from the end. */
    while (idx > 0 && out[idx - 1].base > base)
        idx--;

    if (idx > 0) {
        uint64_t prev_end = out[idx - 1].base + out[idx - 1].length;
        if (prev_end > base)
            base = prev_end;
    }
    if (idx < n && out[idx].base < end)
        end = out[idx].base;
    if (base >= end)
        return;

    if (idx > 0 && out[idx - 1].type == type && out[idx - 1].base + out[idx - 1].length == base) {
        struct mem_region *prev = &out[idx - 1];
        prev->length = end - prev->base;
        if (idx < n && out[idx].type == type && out[idx].base == end) {
            prev->length += out[idx].length;
            memmove(&out[idx], &out[idx + 1], (n - idx - 1) * sizeof(out[0]));
            res->count--;
        }
        return;
    }
    if (idx < n && out[idx].type == type && out[idx].base == end) {
        out[idx].length += out[idx].base - base;
        out[idx].base = base;
        return;
    }
    if (n == cap) {
        res->dropped++;
        return;
    }
    memmove(&out[idx + 1], &out[idx], (n - idx) * sizeof(out[0]));
    out[idx] = (struct mem_region){ .base = base, .length = end - base, .type = type };
    res->count++;
}

/* Reads descriptor i into d; false if it describes no valid range. */
static bool read_desc(const void *map, uint64_t desc_size, uint64_t i, struct uefi_mem_desc *d)
{
    memcpy(d, (const uint8_t *)map + i * desc_size, sizeof(*d));
    if (d->num_pages == 0 || d->num_pages > (UINT64_MAX - d->phys_start) / UEFI_PAGE_SIZE)
        return false;
    return true;
}

bool memmap_from_uefi(struct mem_region *out, uint32_t cap, const void *map, uint64_t map_size,
                      uint64_t desc_size, enum memmap_mode mode, uint64_t pool_base,
                      uint64_t pool_len, struct memmap_result *res)
{
    *res = (struct memmap_result){ 0 };
    if (desc_size < sizeof(struct uefi_mem_desc))
        return false;

    bool pool = mode == MEMMAP_PLATFORM_CHECK && pool_len > 0;
    uint64_t pool_end = pool_base + pool_len;
    uint64_t n = map_size / desc_size;

    for (uint64_t i = 0; i < n; i++) {
        struct uefi_mem_desc d;
        if (!read_desc(map, desc_size, i, &d)) {
            res->bad++;
            continue;
        }
        uint64_t base = d.phys_start;
        uint64_t end = base + d.num_pages * UEFI_PAGE_SIZE;
        uint32_t type = memmap_type_from_uefi(d.type, mode);

        if (pool && base < pool_end && pool_base < end) {
            uint64_t lo = MAX(base, pool_base), hi = MIN(end, pool_end);
            if (base < lo)
                add_range(out, cap, res, base, lo, type);
            add_range(out, cap, res, lo, hi, MEM_USABLE);
            if (hi < end)
                add_range(out, cap, res, hi, end, type);
        } else {
            add_range(out, cap, res, base, end, type);
        }
    }
    return true;
}

uint64_t memmap_uefi_top(const void *map, uint64_t map_size, uint64_t desc_size)
{
    uint64_t top = 0;

    if (desc_size < sizeof(struct uefi_mem_desc))
        return 0;
    for (uint64_t i = 0; i < map_size / desc_size; i++) {
        struct uefi_mem_desc d;
        if (read_desc(map, desc_size, i, &d))
            top = MAX(top, d.phys_start + d.num_pages * UEFI_PAGE_SIZE);
    }
    return top;
}
