/* Reading whole files from the volume keel.efi was loaded from, and page
 * allocations that the core may later see (all EfiLoaderData). */
#ifndef KEEL_BOOT_UEFI_EFI_FILES_H
#define KEEL_BOOT_UEFI_EFI_FILES_H

#include <efi.h>
#include "vmm/lib/types.h"

void efi_files_init(EFI_SYSTEM_TABLE *st);

/* Pages of EfiLoaderData, below max_pa if possible (then anywhere when
 * anywhere_ok), aligned to `align` (a power of two, at least 4 KiB). Returns the
 * physical address (== pointer under UEFI's identity mapping) or 0. */
hpa_t efi_alloc_pages(uint64_t size, uint64_t align, uint64_t max_pa, bool anywhere_ok);
void efi_free_pages(hpa_t pa, uint64_t size);

/* Root directory of the loader's own volume, or NULL (reason printed). */
EFI_FILE_HANDLE efi_open_boot_volume(EFI_HANDLE image);

/* Reads the file `name` (ASCII, '/' or '\' separated, relative to the volume root)
 * into fresh pages. EFI_NOT_FOUND if it does not exist; other errors as returned by
 * the firmware. *data is 0 for an empty file. */
EFI_STATUS efi_read_file(EFI_FILE_HANDLE root, const char *name, hpa_t *data, uint64_t *size);

#endif
