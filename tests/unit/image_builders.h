/* Builders of guest kernel images, in memory, for the host tests of
 * vmm/loaders/guest_image.c: ELF32 with a Multiboot header, ELF64, and raw a.out-kludge
 * Multiboot files. Every image lives in a malloc'd buffer of exactly its size, so a
 * loader that reads one byte past the end trips AddressSanitizer. Segment bytes are
 * a pattern that differs per segment, so tests can tell where each one landed. */
#ifndef KEEL_TESTS_IMAGE_BUILDERS_H
#define KEEL_TESTS_IMAGE_BUILDERS_H

#include "vmm/lib/types.h"

#define IMG_MAX_SEGS 8
#define IMG_PT_LOAD 1
#define IMG_PT_NOTE 4
#define IMG_ELF32_PHDR 32
#define IMG_ELF64_PHDR 56

struct seg_spec {
    uint32_t type;
    uint64_t paddr, vaddr;
    uint64_t filesz, memsz;
};

struct test_image {
    uint8_t *data;
    size_t size;
    size_t phoff;                   /* program header table */
    size_t mb_off;                  /* Multiboot header, SIZE_MAX if none */
    size_t seg_off[IMG_MAX_SEGS];   /* where each segment's file bytes start */
};

/* ELF32 i386 ET_EXEC; if with_mb, a Multiboot header with `mb_flags` (checksum right,
 * 48 bytes, address fields 0, video fields 0/1024/768/32) right after the program
 * headers. Segment bytes start at offset 0x1000. */
void img_elf32(struct test_image *img, uint32_t entry, const struct seg_spec *segs, size_t n, bool with_mb,
               uint32_t mb_flags);
/* ELF64 x86-64 ET_EXEC, no Multiboot header; segment bytes start at 0x1000. */
void img_elf64(struct test_image *img, uint64_t entry, const struct seg_spec *segs, size_t n);
/* A non-ELF file of file_size pattern bytes with a Multiboot header at hdr_off using
 * the a.out kludge (flag 16 is added to `flags`). */
void img_aout(struct test_image *img, size_t file_size, size_t hdr_off, uint32_t flags, uint32_t header_addr,
              uint32_t load_addr, uint32_t load_end_addr, uint32_t bss_end_addr, uint32_t entry_addr);
/* Writes a Multiboot header at p: 12 bytes, plus the address fields when flag 16 or 2
 * is set, plus the video fields when flag 2 is set. */
void img_put_mb_header(uint8_t *p, uint32_t flags, uint32_t header_addr, uint32_t load_addr,
                       uint32_t load_end_addr, uint32_t bss_end_addr, uint32_t entry_addr);
/* Recomputes the checksum of the Multiboot header at mb_off (after a test edits flags). */
void img_fix_mb_checksum(struct test_image *img);
/* Copies an image (a new exact-size buffer), or cuts/extends it to n bytes (zero fill). */
void img_copy(struct test_image *dst, const struct test_image *src);
void img_resize(struct test_image *img, size_t n);
void img_free(struct test_image *img);

/* The pattern byte k of segment i. */
static inline uint8_t img_pattern(size_t seg, uint64_t k) { return (uint8_t)(seg * 37 + k * 13 + 1); }
uint8_t *img_phdr(struct test_image *img, bool is64, size_t i);

/* Little-endian field access, for tests that corrupt or inspect images and RAM. */
void img_put16(uint8_t *p, uint16_t v);
void img_put32(uint8_t *p, uint32_t v);
void img_put64(uint8_t *p, uint64_t v);
uint32_t img_get32(const uint8_t *p);
uint64_t img_get64(const uint8_t *p);

#endif
