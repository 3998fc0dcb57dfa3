/* The UEFI memory map as the loader's firmware-independent code sees it (UEFI spec
 * 2.10, section 7.2: EFI_MEMORY_TYPE values and EFI_MEMORY_DESCRIPTOR layout). Kept
 * apart from gnu-efi's headers so memmap.c also builds in host unit tests. */
#ifndef KEEL_BOOT_UEFI_MEM_TYPES_H
#define KEEL_BOOT_UEFI_MEM_TYPES_H

#include "vmm/lib/types.h"

enum uefi_mem_type {
    UEFI_MT_RESERVED = 0,
    UEFI_MT_LOADER_CODE = 1,
    UEFI_MT_LOADER_DATA = 2,
    UEFI_MT_BOOT_SERVICES_CODE = 3,
    UEFI_MT_BOOT_SERVICES_DATA = 4,
    UEFI_MT_RUNTIME_SERVICES_CODE = 5,
    UEFI_MT_RUNTIME_SERVICES_DATA = 6,
    UEFI_MT_CONVENTIONAL = 7,
    UEFI_MT_UNUSABLE = 8,
    UEFI_MT_ACPI_RECLAIM = 9,
    UEFI_MT_ACPI_NVS = 10,
    UEFI_MT_MMIO = 11,
    UEFI_MT_MMIO_PORT_SPACE = 12,
    UEFI_MT_PAL_CODE = 13,
    UEFI_MT_PERSISTENT = 14,
    UEFI_MT_UNACCEPTED = 15,
};

/* Firmware descriptors may be larger than this (DescriptorSize says by how much);
 * only these leading fields are read. */
struct uefi_mem_desc {
    uint32_t type;
    uint32_t pad;
    uint64_t phys_start;
    uint64_t virt_start;
    uint64_t num_pages;
    uint64_t attribute;
};

#define UEFI_PAGE_SIZE 4096ull

#endif
