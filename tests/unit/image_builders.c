/* See image_builders.h. Field offsets follow the System V ELF and Multiboot 0.6.96
 * specifications. */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/image_builders.h"

#define MB_MAGIC 0x1BADB002u
#define SEG_DATA_START 0x1000u

void img_put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
void img_put32(uint8_t *p, uint32_t v) { img_put16(p, (uint16_t)v); img_put16(p + 2, (uint16_t)(v >> 16)); }
void img_put64(uint8_t *p, uint64_t v) { img_put32(p, (uint32_t)v); img_put32(p + 4, (uint32_t)(v >> 32)); }
uint32_t img_get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
uint64_t img_get64(const uint8_t *p) { return (uint64_t)img_get32(p) | (uint64_t)img_get32(p + 4) << 32; }

static void img_alloc(struct test_image *img, size_t size)
{
    memset(img, 0, sizeof *img);
    img->data = calloc(1, size ? size : 1);
    img->size = size;
    img->mb_off = SIZE_MAX;
}

void img_put_mb_header(uint8_t *p, uint32_t flags, uint32_t header_addr, uint32_t load_addr,
                       uint32_t load_end_addr, uint32_t bss_end_addr, uint32_t entry_addr)
{
    img_put32(p, MB_MAGIC);
    img_put32(p + 4, flags);
    img_put32(p + 8, (uint32_t)-(MB_MAGIC + flags));
    if (flags & (BIT(16) | BIT(2))) {
        img_put32(p + 12, header_addr);
        img_put32(p + 16, load_addr);
        img_put32(p + 20, load_end_addr);
        img_put32(p + 24, bss_end_addr);
        img_put32(p + 28, entry_addr);
    }
    if (flags & BIT(2)) {
        img_put32(p + 32, 0);    /* linear graphics */
        img_put32(p + 36, 1024);
        img_put32(p + 40, 768);
        img_put32(p + 44, 32);
    }
}

void img_fix_mb_checksum(struct test_image *img)
{
    uint8_t *p = img->data + img->mb_off;
    img_put32(p + 8, (uint32_t)-(MB_MAGIC + img_get32(p + 4)));
}

static size_t place_segments(struct test_image *img, const struct seg_spec *segs, size_t n)
{
    size_t off = SEG_DATA_START;
    for (size_t i = 0; i < n; i++) {
        off = ALIGN_UP(off, 16);
        img->seg_off[i] = off;
        off += segs[i].filesz;
    }
    return off;
}

static void fill_segments(struct test_image *img, const struct seg_spec *segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (uint64_t k = 0; k < segs[i].filesz; k++)
            img->data[img->seg_off[i] + k] = img_pattern(i, k);
}

static void put_ident(uint8_t *p, uint8_t class)
{
    memcpy(p, "\177ELF", 4);
    p[4] = class;
    p[5] = 1; /* little-endian */
    p[6] = 1; /* version */
}

uint8_t *img_phdr(struct test_image *img, bool is64, size_t i)
{
    return img->data + img->phoff + i * (is64 ? IMG_ELF64_PHDR : IMG_ELF32_PHDR);
}

void img_elf32(struct test_image *img, uint32_t entry, const struct seg_spec *segs, size_t n, bool with_mb,
               uint32_t mb_flags)
{
    struct test_image layout = {0};
    size_t size = place_segments(&layout, segs, n);
    img_alloc(img, size);
    memcpy(img->seg_off, layout.seg_off, sizeof img->seg_off);
    uint8_t *p = img->data;
    put_ident(p, 1);
    img_put16(p + 16, 2);  /* ET_EXEC */
    img_put16(p + 18, 3);  /* EM_386 */
    img_put32(p + 20, 1);
    img_put32(p + 24, entry);
    img_put32(p + 28, 52); /* e_phoff */
    img_put16(p + 40, 52); /* e_ehsize */
    img_put16(p + 42, IMG_ELF32_PHDR);
    img_put16(p + 44, (uint16_t)n);
    img->phoff = 52;
    for (size_t i = 0; i < n; i++) {
        uint8_t *ph = img_phdr(img, false, i);
        img_put32(ph, segs[i].type);
        img_put32(ph + 4, (uint32_t)img->seg_off[i]);
        img_put32(ph + 8, (uint32_t)segs[i].vaddr);
        img_put32(ph + 12, (uint32_t)segs[i].paddr);
        img_put32(ph + 16, (uint32_t)segs[i].filesz);
        img_put32(ph + 20, (uint32_t)segs[i].memsz);
        img_put32(ph + 24, 7);
        img_put32(ph + 28, 0x1000);
    }
    if (with_mb) {
        img->mb_off = ALIGN_UP(52 + n * IMG_ELF32_PHDR, 4);
        img_put_mb_header(p + img->mb_off, mb_flags, 0, 0, 0, 0, 0);
    }
    fill_segments(img, segs, n);
}

void img_elf64(struct test_image *img, uint64_t entry, const struct seg_spec *segs, size_t n)
{
    struct test_image layout = {0};
    size_t size = place_segments(&layout, segs, n);
    img_alloc(img, size);
    memcpy(img->seg_off, layout.seg_off, sizeof img->seg_off);
    uint8_t *p = img->data;
    put_ident(p, 2);
    img_put16(p + 16, 2);  /* ET_EXEC */
    img_put16(p + 18, 62); /* EM_X86_64 */
    img_put32(p + 20, 1);
    img_put64(p + 24, entry);
    img_put64(p + 32, 64); /* e_phoff */
    img_put16(p + 52, 64); /* e_ehsize */
    img_put16(p + 54, IMG_ELF64_PHDR);
    img_put16(p + 56, (uint16_t)n);
    img->phoff = 64;
    for (size_t i = 0; i < n; i++) {
        uint8_t *ph = img_phdr(img, true, i);
        img_put32(ph, segs[i].type);
        img_put32(ph + 4, 7);
        img_put64(ph + 8, img->seg_off[i]);
        img_put64(ph + 16, segs[i].vaddr);
        img_put64(ph + 24, segs[i].paddr);
        img_put64(ph + 32, segs[i].filesz);
        img_put64(ph + 40, segs[i].memsz);
        img_put64(ph + 48, 0x1000);
    }
    fill_segments(img, segs, n);
}

void img_aout(struct test_image *img, size_t file_size, size_t hdr_off, uint32_t flags, uint32_t header_addr,
              uint32_t load_addr, uint32_t load_end_addr, uint32_t bss_end_addr, uint32_t entry_addr)
{
    img_alloc(img, file_size);
    for (size_t k = 0; k < file_size; k++)
        img->data[k] = img_pattern(0, k);
    img->mb_off = hdr_off;
    img_put_mb_header(img->data + hdr_off, flags | BIT(16), header_addr, load_addr, load_end_addr, bss_end_addr,
                      entry_addr);
}

void img_copy(struct test_image *dst, const struct test_image *src)
{
    *dst = *src;
    dst->data = malloc(src->size ? src->size : 1);
    memcpy(dst->data, src->data, src->size);
}

void img_resize(struct test_image *img, size_t n)
{
    uint8_t *d = calloc(1, n ? n : 1);
    memcpy(d, img->data, MIN(n, img->size));
    free(img->data);
    img->data = d;
    img->size = n;
}

void img_free(struct test_image *img)
{
    free(img->data);
    img->data = NULL;
    img->size = 0;
}
