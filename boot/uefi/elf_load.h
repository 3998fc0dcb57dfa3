/* Validates the embedded core ELF and copies its PT_LOAD segments into one block.
 * Pure code (no firmware calls) so host unit tests can feed it broken files. */
#ifndef KEEL_BOOT_UEFI_ELF_LOAD_H
#define KEEL_BOOT_UEFI_ELF_LOAD_H

#include "boot/bootinfo.h"

/* Largest core image accepted: far more than Keel needs, small enough that a corrupt
 * header cannot make the loader ask for absurd amounts of memory. */
#define KEEL_ELF_MAX_IMAGE (256ull << 20)
/* The image header must start in this many bytes from the image's first byte. */
#define KEEL_ELF_HEADER_WINDOW (32u << 10)

struct keel_elf_image {
    uint64_t image_vbase; /* link address of the first byte (page aligned) */
    uint64_t image_end;   /* link address past .bss */
    uint64_t entry64;     /* keel_entry64's link address */
};

/* Checks elf[0..size) and fills img. On failure returns false and sets *why to a
 * message naming the problem. */
bool keel_elf_inspect(const void *elf, uint64_t size, struct keel_elf_image *img,
                      const char **why);

/* Copies every PT_LOAD segment to dest + (p_vaddr - image_vbase) and zeroes the rest
 * of the image_end - image_vbase bytes at dest. Only after keel_elf_inspect said yes. */
void keel_elf_place(const void *elf, const struct keel_elf_image *img, void *dest);

#endif
