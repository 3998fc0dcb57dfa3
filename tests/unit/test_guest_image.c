/* Host tests for the guest image loaders (vmm/loaders/guest_image.c). Guest RAM is a malloc'd
 * block poisoned with 0xAA, so the tests can see exactly which bytes a loader wrote,
 * that a failed load wrote none, and (through ASan) that nothing outside was touched.
 * SOURCES: vmm/loaders/guest_image.c vmm/lib/printf.c vmm/lib/string.c tests/unit/image_builders.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "tests/unit/console_capture.h"
#include "tests/unit/image_builders.h"
#include "vmm/loaders/guest_image.h"

#define KiB 1024ull
#define MiB (1024ull * KiB)
#define POISON 0xAA

static struct guest_ram ram_new(uint64_t size)
{
    struct guest_ram r = {malloc(size), size, 0};
    assert_non_null(r.hva);
    memset(r.hva, POISON, size);
    return r;
}

static void ram_free(struct guest_ram *r)
{
    free(r->hva);
    r->hva = NULL;
}

static bool ram_untouched(const struct guest_ram *r)
{
    static uint8_t poison[64 * 1024];
    memset(poison, POISON, sizeof poison);
    for (uint64_t at = 0; at < r->size; at += sizeof poison)
        if (memcmp(r->hva + at, poison, MIN(sizeof poison, r->size - at)) != 0)
            return false;
    return true;
}

static void expect_fill(const struct guest_ram *r, gpa_t gpa, uint64_t n, uint8_t byte)
{
    for (uint64_t i = 0; i < n; i++)
        if (r->hva[gpa + i] != byte)
            fail_msg("byte at gpa 0x%llx is 0x%02x, expected 0x%02x", (unsigned long long)(gpa + i),
                     r->hva[gpa + i], byte);
}

static void expect_segment(const struct guest_ram *r, gpa_t gpa, size_t seg, uint64_t filesz)
{
    for (uint64_t k = 0; k < filesz; k++)
        if (r->hva[gpa + k] != img_pattern(seg, k))
            fail_msg("segment %zu byte %llu at gpa 0x%llx wrong", seg, (unsigned long long)k,
                     (unsigned long long)(gpa + k));
}

static void expect_error(int rc, int code, const char *err, const char *needle)
{
    if (rc != code || !strstr(err, needle))
        fail_msg("got %d \"%s\", expected %d with \"%s\"", rc, err, code, needle);
    assert_true(strlen(err) < GUEST_ERR_LEN);
}

static uint32_t rd32(const struct guest_ram *r, gpa_t gpa) { return img_get32(r->hva + gpa); }
static uint64_t rd64(const struct guest_ram *r, gpa_t gpa) { return img_get64(r->hva + gpa); }

/* ---- the reference ELF32 Multiboot kernel ---- */

#define RAM_SIZE (16 * MiB)
#define CMDLINE "console=ttyS0 root=/dev/vda quiet"

static const struct seg_spec mb_segs[] = {
    {IMG_PT_LOAD, 0x100000, 0x100000, 0x1800, 0x1800},   /* text */
    {IMG_PT_NOTE, 0, 0, 0x20, 0x20},                     /* not loaded */
    {IMG_PT_LOAD, 0x102000, 0xC0102000, 0x300, 0x2000},  /* data + bss, higher-half vaddr */
    {IMG_PT_LOAD, 0x200000, 0xC0200000, 0, 0x1000},      /* bss only */
};

static void mb_image(struct test_image *img, uint32_t flags)
{
    img_elf32(img, 0x100010, mb_segs, ARRAY_SIZE(mb_segs), true, flags);
}

static void check_mmap_entry(const struct guest_ram *r, gpa_t at, uint64_t base, uint64_t len, uint32_t type)
{
    assert_int_equal(rd32(r, at), 20);
    assert_int_equal(rd64(r, at + 4), base);
    assert_int_equal(rd64(r, at + 12), len);
    assert_int_equal(rd32(r, at + 20), type);
}

static void check_gdt(const struct guest_ram *r)
{
    assert_int_equal(rd64(r, GUEST_GDT), 0);
    uint64_t c32 = rd64(r, GUEST_GDT + GUEST_SEL_CODE32);
    uint64_t data = rd64(r, GUEST_GDT + GUEST_SEL_DATA);
    uint64_t c64 = rd64(r, GUEST_GDT + GUEST_SEL_CODE64);
    /* present, code/data, DPL 0; 32-bit code: D=1 G=1 limit 0xfffff; 64-bit code: L=1 D=0 */
    assert_int_equal(c32, 0x00cf9b000000ffffull);
    assert_int_equal(data, 0x00cf93000000ffffull);
    assert_true(c64 & BIT(47));
    assert_true(c64 & BIT(43));  /* executable */
    assert_true(c64 & BIT(53));  /* L */
    assert_false(c64 & BIT(54)); /* D must be 0 with L */
}

static void test_mb_elf32_good(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    mb_image(&img, BIT(0) | BIT(1));
    struct guest_boot b;
    char err[GUEST_ERR_LEN] = "stale";
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, CMDLINE, &b, err), 0);
    assert_string_equal(err, "");
    assert_string_equal(b.note, "");
    assert_int_equal(b.kind, GUEST_IMAGE_MULTIBOOT);
    assert_int_equal(b.mode, GUEST_MODE_PROT32);
    assert_int_equal(b.rip, 0x100010);
    assert_int_equal(b.rax, 0x2BADB002);
    assert_int_equal(b.rbx, GUEST_MB_INFO);
    assert_int_equal(b.info, GUEST_MB_INFO);
    assert_int_equal(b.cs, GUEST_SEL_CODE32);
    assert_int_equal(b.ds, GUEST_SEL_DATA);
    assert_int_equal(b.cr0, 0x11);
    assert_int_equal(b.cr3, 0);
    assert_int_equal(b.efer, 0);
    assert_int_equal(b.gdt_base, GUEST_GDT);
    assert_int_equal(b.gdt_limit, 31);
    assert_int_equal(b.load_lo, 0x100000);
    assert_int_equal(b.load_hi, 0x201000);

    /* Segments at p_paddr, bss zeroed, nothing around them touched. */
    expect_segment(&ram, 0x100000, 0, 0x1800);
    expect_fill(&ram, 0x101800, 0x800, POISON);
    expect_segment(&ram, 0x102000, 2, 0x300);
    expect_fill(&ram, 0x102300, 0x2000 - 0x300, 0);
    expect_fill(&ram, 0x104000, 0x1000, POISON);
    expect_fill(&ram, 0x200000, 0x1000, 0);
    expect_fill(&ram, 0x201000, 0x1000, POISON);
    expect_fill(&ram, 0, GUEST_BOOT_AREA, POISON);
    expect_fill(&ram, GUEST_BOOT_AREA_END, 0x100000 - GUEST_BOOT_AREA_END, POISON);

    /* The Multiboot information structure. */
    gpa_t mbi = GUEST_MB_INFO;
    assert_int_equal(rd32(&ram, mbi), BIT(0) | BIT(2) | BIT(6) | BIT(9));
    assert_int_equal(rd32(&ram, mbi + 4), 639);
    assert_int_equal(rd32(&ram, mbi + 8), (RAM_SIZE - MiB) / KiB);
    assert_int_equal(rd32(&ram, mbi + 12), 0); /* no boot device */
    assert_string_equal((char *)ram.hva + rd32(&ram, mbi + 16), CMDLINE);
    assert_int_equal(rd32(&ram, mbi + 20), 0); /* no modules */
    assert_string_equal((char *)ram.hva + rd32(&ram, mbi + 64), "Keel");
    assert_int_equal(rd32(&ram, mbi + 44), 3 * 24);
    gpa_t mm = rd32(&ram, mbi + 48);
    check_mmap_entry(&ram, mm, 0, 0x9fc00, 1);
    check_mmap_entry(&ram, mm + 24, 0x9fc00, 0x100000 - 0x9fc00, 2);
    check_mmap_entry(&ram, mm + 48, 0x100000, RAM_SIZE - 0x100000, 1);
    check_gdt(&ram);
    img_free(&img);
    ram_free(&ram);
}

static void test_mb_entry_and_options(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];

    /* e_entry given as a virtual address is translated to the physical one, as GRUB does. */
    img_elf32(&img, 0xC0102010, mb_segs, ARRAY_SIZE(mb_segs), true, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(b.rip, 0x102010);
    /* No command line: the flag stays clear. */
    assert_int_equal(rd32(&ram, GUEST_MB_INFO) & BIT(2), 0);
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 16), 0);
    img_free(&img);

    /* Video mode request: accepted, with a note for the user. */
    mb_image(&img, BIT(2));
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "", &b, err), 0);
    assert_string_equal(b.note, "multiboot: the kernel asks for a linear graphics mode (width 1024, height 768, "
                                "depth 32); Keel offers only VGA text mode");
    assert_string_equal((char *)ram.hva + GUEST_MB_CMDLINE, "");
    /* Zero fields mean "no preference", not a 0x0x0 mode; type 1 is EGA text. */
    for (size_t f = 36; f <= 44; f += 4)
        img_put32(img.data + img.mb_off + f, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "", &b, err), 0);
    assert_string_equal(b.note, "multiboot: the kernel asks for a linear graphics mode (width any, height any, "
                                "depth any); Keel offers only VGA text mode");
    img_put32(img.data + img.mb_off + 32, 1);
    img_put32(img.data + img.mb_off + 36, 80);
    img_put32(img.data + img.mb_off + 40, 25);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "", &b, err), 0);
    assert_string_equal(b.note, "multiboot: the kernel asks for an EGA text mode (width 80, height 25, "
                                "depth any); Keel offers only VGA text mode");
    img_put32(img.data + img.mb_off + 32, 7);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "", &b, err), 0);
    assert_non_null(strstr(b.note, "asks for video mode type 7 (width 80,"));
    img_free(&img);

    /* Unknown optional flags (16-31 except the kludge) are ignored. */
    mb_image(&img, BIT(20));
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    img_free(&img);

    /* NULL err is allowed. */
    mb_image(&img, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, NULL), 0);
    img_free(&img);

    /* The longest command line fits; one more character is refused. */
    char *cmd = malloc(GUEST_CMDLINE_MAX + 2);
    memset(cmd, 'x', GUEST_CMDLINE_MAX + 1);
    cmd[GUEST_CMDLINE_MAX] = 0;
    mb_image(&img, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, cmd, &b, err), 0);
    assert_int_equal(strlen((char *)ram.hva + GUEST_MB_CMDLINE), GUEST_CMDLINE_MAX);
    cmd[GUEST_CMDLINE_MAX] = 'x';
    cmd[GUEST_CMDLINE_MAX + 1] = 0;
    expect_error(guest_load_multiboot(&ram, img.data, img.size, cmd, &b, err), GUEST_EINVAL, err, "command line");
    free(cmd);
    img_free(&img);
    ram_free(&ram);
}

static void test_mb_bad_ram(void **state)
{
    (void)state;
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    mb_image(&img, 0);
    struct guest_ram small = ram_new(MiB);
    expect_error(guest_load_multiboot(&small, img.data, img.size, NULL, &b, err), GUEST_EINVAL, err, "too small");
    struct guest_ram odd = {small.hva, MiB - 100, 0};
    expect_error(guest_load_multiboot(&odd, img.data, img.size, NULL, &b, err), GUEST_EINVAL, err, "4 KiB");
    struct guest_ram none = {NULL, 4 * MiB, 0};
    expect_error(guest_load_multiboot(&none, img.data, img.size, NULL, &b, err), GUEST_EINVAL, err, "no guest RAM");
    assert_true(ram_untouched(&small));
    ram_free(&small);
    img_free(&img);
}

static void test_mb_unknown_required_flag(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    mb_image(&img, BIT(1) | BIT(3));
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EUNSUPPORTED, err,
                 "unknown required bits 0x8");
    img_free(&img);
    mb_image(&img, BIT(15));
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EUNSUPPORTED, err,
                 "unknown required bits 0x8000");
    assert_true(ram_untouched(&ram));
    img_free(&img);
    ram_free(&ram);
}

static void test_mb_header_search(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(4 * MiB);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];

    /* No header at all. */
    img_elf32(&img, 0x100010, mb_segs, 1, false, 0);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "no Multiboot header");
    img_free(&img);

    /* Headers must be 4-byte aligned and within the first 8192 bytes. */
    img_aout(&img, 0x3000, 0x100, 0, 0x100100, 0x100000, 0, 0, 0x100200);
    memmove(img.data + 0x102, img.data + 0x100, 32);
    memset(img.data + 0x100, 0, 2);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "no Multiboot header");
    img_free(&img);
    img_aout(&img, 0x3000, 8192, 0, 0x102000, 0x100000, 0, 0, 0x100200);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "no Multiboot header");
    img_free(&img);
    img_aout(&img, 0x3000, 8192 - 12, 0, 0x102000 - 12, 0x100000, 0, 0, 0x100200);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "not wholly inside the first 8192 bytes");
    img_free(&img);
    /* The last legal place works. */
    img_aout(&img, 0x3000, 8192 - 32, 0, 0x102000 - 32, 0x100000, 0, 0, 0x100200);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    img_free(&img);

    /* Bad checksum. */
    mb_image(&img, 0);
    img.data[img.mb_off + 8] ^= 1;
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "bad checksum");
    /* A bad candidate followed by a good header: the good one is used. */
    img_put_mb_header(img.data + img.mb_off + 48, 0, 0, 0, 0, 0, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    img_free(&img);

    /* Header cut off by the end of the file: magic in its last 8 bytes. */
    img_aout(&img, 0x100, 0x40, 0, 0x100040, 0x100000, 0, 0, 0x100080);
    img_resize(&img, 0x48);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err, "cut off");
    /* ...or by the kludge's address fields. */
    img_free(&img);
    img_aout(&img, 0x100, 0x40, 0, 0x100040, 0x100000, 0, 0, 0x100080);
    img_resize(&img, 0x40 + 20);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "needs 32 bytes");
    img_free(&img);
    /* ...or by the video fields. */
    mb_image(&img, BIT(2));
    img_resize(&img, img.mb_off + 40);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "needs 48 bytes");
    img_free(&img);

    /* Empty and NULL images. */
    expect_error(guest_load_multiboot(&ram, "", 0, NULL, &b, err), GUEST_EBADIMAGE, err, "no Multiboot header");
    expect_error(guest_load_multiboot(&ram, NULL, 100, NULL, &b, err), GUEST_EBADIMAGE, err, "no Multiboot header");
    ram_free(&ram);
}

/* One corruption of the reference ELF32 kernel and the error it must produce. */
struct mb_case {
    const char *name;
    void (*mutate)(struct test_image *img);
    int code;
    const char *needle;
};

static void set_ph32(struct test_image *img, size_t i, size_t field, uint32_t v)
{
    img_put32(img_phdr(img, false, i) + field, v);
}
#define PH_TYPE 0
#define PH_OFFSET 4
#define PH_VADDR 8
#define PH_PADDR 12
#define PH_FILESZ 16
#define PH_MEMSZ 20

static void m_elf_hdr_truncated(struct test_image *img)
{
    /* 48 bytes: ELF ident, then a Multiboot header where e_type etc. would be. */
    img_resize(img, 48);
    memset(img->data + 16, 0, 32);
    img_put_mb_header(img->data + 16, 0, 0, 0, 0, 0, 0);
}
static void m_file_truncated(struct test_image *img) { img_resize(img, img->seg_off[0] + 0x100); }
static void m_phdrs_past_eof(struct test_image *img) { img_put32(img->data + 28, (uint32_t)img->size - 40); }
static void m_phdrs_offset_huge(struct test_image *img) { img_put32(img->data + 28, 0xfffffff0); }
static void m_seg_offset_huge(struct test_image *img) { set_ph32(img, 0, PH_OFFSET, 0xfffffff0); }
static void m_seg_bytes_past_eof(struct test_image *img) { set_ph32(img, 2, PH_FILESZ, 0x2000); set_ph32(img, 2, PH_MEMSZ, 0x2000); }
static void m_filesz_gt_memsz(struct test_image *img) { set_ph32(img, 2, PH_MEMSZ, 0x200); }
static void m_outside_ram(struct test_image *img) { set_ph32(img, 3, PH_PADDR, RAM_SIZE - 0x800); }
static void m_far_outside_ram(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0xe0000000); }
static void m_below_4k(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0x800); }
static void m_page_zero(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0); }
/* Segments from 0x1000 to the end of low RAM and from 1 MiB to the end of RAM: no
 * block is left for the boot information. */
static void m_no_room(struct test_image *img)
{
    set_ph32(img, 1, PH_TYPE, IMG_PT_LOAD);
    set_ph32(img, 1, PH_PADDR, 0x300000);
    set_ph32(img, 1, PH_MEMSZ, RAM_SIZE - 0x300000);
    set_ph32(img, 3, PH_PADDR, 0x1000);
    set_ph32(img, 3, PH_MEMSZ, 0x9e000);
}
static void m_reserved_hole(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0x9f000); }
static void m_overlap(struct test_image *img) { set_ph32(img, 2, PH_PADDR, 0x101000); }
static void m_overlap_bss(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0x103800); }
static void m_wrap(struct test_image *img) { set_ph32(img, 3, PH_PADDR, 0xfffff000); set_ph32(img, 3, PH_MEMSZ, 0x2000); }
static void m_absurd_memsz(struct test_image *img) { set_ph32(img, 3, PH_MEMSZ, 0xffffffff); }
static void m_entry_outside(struct test_image *img) { img_put32(img->data + 24, 0x300000); }
static void m_entry_in_bss(struct test_image *img) { img_put32(img->data + 24, 0x102400); }
static void m_entry_at_end(struct test_image *img) { img_put32(img->data + 24, 0x101800); }
static void m_class64(struct test_image *img) { img->data[4] = 2; }
static void m_big_endian(struct test_image *img) { img->data[5] = 2; }
static void m_version(struct test_image *img) { img->data[6] = 0; }
static void m_not_elf(struct test_image *img) { img->data[1] = 'X'; }
static void m_et_dyn(struct test_image *img) { img_put16(img->data + 16, 3); }
static void m_x86_64(struct test_image *img) { img_put16(img->data + 18, 62); }
static void m_no_phdrs(struct test_image *img) { img_put16(img->data + 44, 0); }
static void m_many_phdrs(struct test_image *img) { img_put16(img->data + 44, 300); }
static void m_small_phentsize(struct test_image *img) { img_put16(img->data + 42, 16); }
static void m_no_load(struct test_image *img)
{
    for (size_t i = 0; i < ARRAY_SIZE(mb_segs); i++)
        set_ph32(img, i, PH_TYPE, IMG_PT_NOTE);
}

static const struct mb_case mb_cases[] = {
    {"ELF header truncated", m_elf_hdr_truncated, GUEST_EBADIMAGE, "ELF header truncated"},
    {"file truncated", m_file_truncated, GUEST_EBADIMAGE, "past the end of the file"},
    {"phdrs past EOF", m_phdrs_past_eof, GUEST_EBADIMAGE, "program headers (offset"},
    {"phdr offset huge", m_phdrs_offset_huge, GUEST_EBADIMAGE, "program headers (offset"},
    {"segment offset huge", m_seg_offset_huge, GUEST_EBADIMAGE, "segment 0: file bytes 0xfffffff0"},
    {"segment bytes past EOF", m_seg_bytes_past_eof, GUEST_EBADIMAGE, "segment 2: file bytes"},
    {"filesz > memsz", m_filesz_gt_memsz, GUEST_EBADIMAGE, "file size 0x300 exceeds memory size 0x200"},
    {"outside RAM", m_outside_ram, GUEST_ENOFIT, "outside guest RAM"},
    {"far outside RAM", m_far_outside_ram, GUEST_ENOFIT, "outside guest RAM"},
    {"below 4 KiB", m_below_4k, GUEST_ENOFIT, "below 4 KiB"},
    {"page zero", m_page_zero, GUEST_ENOFIT, "below 4 KiB"},
    {"no room for the boot information", m_no_room, GUEST_ENOFIT,
     "no room for the boot information (0x3000 bytes) at 0x7000, 0x1000, 1 MiB or above the image 0x1000-0xffffff"},
    {"reserved hole", m_reserved_hole, GUEST_ENOFIT, "reserved range"},
    {"overlapping segments", m_overlap, GUEST_EBADIMAGE, "segments 0 (0x100000-0x1017ff) and 2"},
    {"overlapping bss", m_overlap_bss, GUEST_EBADIMAGE, "overlap"},
    {"wrap past 4 GiB", m_wrap, GUEST_EBADIMAGE, "wraps"},
    {"absurd memsz", m_absurd_memsz, GUEST_EBADIMAGE, "wraps"},
    {"entry outside", m_entry_outside, GUEST_EBADIMAGE, "entry point 0x300000"},
    {"entry in bss", m_entry_in_bss, GUEST_EBADIMAGE, "entry point 0x102400"},
    {"entry just past text", m_entry_at_end, GUEST_EBADIMAGE, "entry point 0x101800"},
    {"ELFCLASS64", m_class64, GUEST_EUNSUPPORTED, "ELF class 2"},
    {"big-endian", m_big_endian, GUEST_EBADIMAGE, "little-endian"},
    {"ELF version", m_version, GUEST_EBADIMAGE, "ELF version"},
    {"not ELF", m_not_elf, GUEST_EBADIMAGE, "not an ELF file"},
    {"ET_DYN", m_et_dyn, GUEST_EUNSUPPORTED, "ELF type 3"},
    {"EM_X86_64", m_x86_64, GUEST_EUNSUPPORTED, "machine 62"},
    {"no program headers", m_no_phdrs, GUEST_EBADIMAGE, "no program headers"},
    {"300 program headers", m_many_phdrs, GUEST_EBADIMAGE, "300 program headers"},
    {"phentsize 16", m_small_phentsize, GUEST_EBADIMAGE, "entry size 16"},
    {"no PT_LOAD", m_no_load, GUEST_EBADIMAGE, "no loadable"},
};

static void test_mb_elf32_errors(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    for (size_t i = 0; i < ARRAY_SIZE(mb_cases); i++) {
        const struct mb_case *c = &mb_cases[i];
        struct test_image img;
        struct guest_boot b;
        char err[GUEST_ERR_LEN] = "";
        mb_image(&img, 0);
        c->mutate(&img);
        int rc = guest_load_multiboot(&ram, img.data, img.size, CMDLINE, &b, err);
        if (rc != c->code || !strstr(err, c->needle))
            fail_msg("case \"%s\": got %d \"%s\", expected %d with \"%s\"", c->name, rc, err, c->code, c->needle);
        if (!ram_untouched(&ram))
            fail_msg("case \"%s\": guest RAM written before the image was rejected", c->name);
        img_free(&img);
    }
    ram_free(&ram);
}

/* ---- a.out kludge ---- */

static void test_mb_aout_good(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];

    /* Header at file offset 0x40 = load_addr + 0x40; 0x2000 bytes loaded, bss to 0x105000. */
    img_aout(&img, 0x3000, 0x40, 0, 0x100040, 0x100000, 0x102000, 0x105000, 0x100100);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "k", &b, err), 0);
    assert_int_equal(b.rip, 0x100100);
    assert_int_equal(b.load_lo, 0x100000);
    assert_int_equal(b.load_hi, 0x105000);
    assert_int_equal(b.rax, 0x2BADB002);
    assert_memory_equal(ram.hva + 0x100000, img.data, 0x2000);
    expect_fill(&ram, 0x102000, 0x3000, 0);
    expect_fill(&ram, 0x105000, 0x1000, POISON);
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 8), (RAM_SIZE - MiB) / KiB);
    img_free(&img);
    ram_free(&ram);

    /* load_end_addr 0: the rest of the file; bss_end_addr 0: no bss. The header sits
     * at 0x1040 in the file, so loading starts at file offset 0x1000. */
    ram = ram_new(RAM_SIZE);
    img_aout(&img, 0x3000, 0x1040, 0, 0x200040, 0x200000, 0, 0, 0x200800);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    assert_memory_equal(ram.hva + 0x200000, img.data + 0x1000, 0x2000);
    expect_fill(&ram, 0x202000, 0x1000, POISON);
    expect_fill(&ram, 0x1ff000, 0x1000, POISON);
    assert_int_equal(b.load_hi, 0x202000);
    assert_int_equal(b.rip, 0x200800);
    img_free(&img);

    /* An ELF file with the kludge flag is loaded by the address fields, not as ELF. */
    mb_image(&img, 0);
    size_t mo = img.mb_off;
    img_put_mb_header(img.data + mo, BIT(16), 0x300000 + (uint32_t)mo, 0x300000, 0, 0, 0x300000 + (uint32_t)mo);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    assert_memory_equal(ram.hva + 0x300000, img.data, img.size);
    img_free(&img);
    ram_free(&ram);
}

struct aout_case {
    const char *name;
    size_t file_size, hdr_off;
    uint32_t header_addr, load_addr, load_end, bss_end, entry;
    int code;
    const char *needle;
};

static const struct aout_case aout_cases[] = {
    {"load above header", 0x3000, 0x40, 0x100040, 0x100080, 0, 0, 0x100100, GUEST_EBADIMAGE, "above header_addr"},
    {"starts before file", 0x3000, 0x40, 0x100080, 0x100000, 0, 0, 0x100100, GUEST_EBADIMAGE, "exceeds the header's file offset"},
    {"load_end below load", 0x3000, 0x40, 0x100040, 0x100000, 0xff000, 0, 0x100100, GUEST_EBADIMAGE, "not above load_addr"},
    {"load_end == load", 0x3000, 0x40, 0x100040, 0x100000, 0x100000, 0, 0x100100, GUEST_EBADIMAGE, "not above load_addr"},
    {"load_end past file", 0x3000, 0x40, 0x100040, 0x100000, 0x103001, 0, 0x100100, GUEST_EBADIMAGE, "the file has 0x3000"},
    {"header not loaded", 0x3000, 0x40, 0x100040, 0x100000, 0x100050, 0, 0x100010, GUEST_EBADIMAGE, "not inside the loaded bytes"},
    {"bss below load_end", 0x3000, 0x40, 0x100040, 0x100000, 0x102000, 0x101000, 0x100100, GUEST_EBADIMAGE, "bss_end_addr 0x101000"},
    {"entry below", 0x3000, 0x40, 0x100040, 0x100000, 0, 0, 0xfffff, GUEST_EBADIMAGE, "entry_addr 0xfffff"},
    {"entry in bss", 0x3000, 0x40, 0x100040, 0x100000, 0x102000, 0x104000, 0x102000, GUEST_EBADIMAGE, "entry_addr 0x102000"},
    {"below 4 KiB", 0x3000, 0x40, 0x40, 0, 0, 0, 0x100, GUEST_ENOFIT, "below 4 KiB"},
    {"bss past RAM", 0x3000, 0x40, 0x100040, 0x100000, 0, RAM_SIZE + 1, 0x100100, GUEST_ENOFIT, "outside guest RAM"},
    {"wraps 4 GiB", 0x3000, 0x40, 0xfffff040, 0xfffff000, 0, 0, 0xfffff100, GUEST_EBADIMAGE, "wraps"},
};

static void test_mb_aout_errors(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    for (size_t i = 0; i < ARRAY_SIZE(aout_cases); i++) {
        const struct aout_case *c = &aout_cases[i];
        struct test_image img;
        struct guest_boot b;
        char err[GUEST_ERR_LEN] = "";
        img_aout(&img, c->file_size, c->hdr_off, 0, c->header_addr, c->load_addr, c->load_end, c->bss_end, c->entry);
        int rc = guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err);
        if (rc != c->code || !strstr(err, c->needle))
            fail_msg("case \"%s\": got %d \"%s\", expected %d with \"%s\"", c->name, rc, err, c->code, c->needle);
        if (!ram_untouched(&ram))
            fail_msg("case \"%s\": guest RAM written before the image was rejected", c->name);
        img_free(&img);
    }
    ram_free(&ram);
}

/* ---- where the boot information goes ---- */

/* The boot area b names must be whole in RAM, in memory the map calls usable, clear of
 * the loaded image and of the reserved hole, with every Multiboot pointer inside it. */
static void check_boot_area_placement(const struct guest_ram *r, const struct guest_boot *b, const char *cmdline)
{
    gpa_t base = b->boot_area, lo = base - GUEST_BOOT_STACK_SIZE, hi = base + GUEST_BOOT_SIZE;
    assert_true(lo >= GUEST_MIN_LOAD && hi <= r->size && hi <= (1ull << 32));
    assert_true(hi <= b->load_lo || lo >= b->load_hi);
    assert_true(hi <= GUEST_LOW_MEM_END || lo >= GUEST_HIGH_MEM);
    assert_int_equal(b->gdt_base, base);
    assert_int_equal(b->info, base + 0x40);
    assert_int_equal(b->rbx, b->info);
    gpa_t mbi = b->info;
    assert_int_equal(rd32(r, mbi + 48), base + 0x100);
    assert_string_equal((char *)r->hva + rd32(r, mbi + 64), "Keel");
    assert_true(rd32(r, mbi + 64) >= base && rd32(r, mbi + 64) < hi);
    if (cmdline) {
        assert_int_equal(rd32(r, mbi + 16), base + 0x300);
        assert_string_equal((char *)r->hva + rd32(r, mbi + 16), cmdline);
    }
    assert_int_equal(rd64(r, base + GUEST_SEL_CODE32), 0x00cf9b000000ffffull);
    assert_int_equal(rd64(r, base + GUEST_SEL_DATA), 0x00cf93000000ffffull);
    /* The block lies in memory the map reports usable. */
    gpa_t mm = rd32(r, mbi + 48);
    uint32_t len = rd32(r, mbi + 44);
    bool usable = false;
    for (uint32_t off = 0; off < len; off += 24)
        if (rd32(r, mm + off + 20) == 1 && rd64(r, mm + off + 4) <= lo &&
            hi <= rd64(r, mm + off + 4) + rd64(r, mm + off + 12))
            usable = true;
    assert_true(usable);
}

/* Regression: a kernel linked at 0x8000 was refused ("overlaps the boot information
 * area 0x8000-0x9fff"); its boot information now goes below it, at 0x2000. */
static void test_mb_kernel_linked_at_0x8000(void **state)
{
    (void)state;
    static const struct seg_spec low_segs[] = {
        {IMG_PT_LOAD, 0x8000, 0x8000, 0x2800, 0x2800},  /* text */
        {IMG_PT_LOAD, 0xb000, 0xb000, 0x100, 0x3000},   /* data + bss */
    };
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN] = "stale";
    img_elf32(&img, 0x8000, low_segs, ARRAY_SIZE(low_segs), true, BIT(0) | BIT(1));
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, CMDLINE, &b, err), 0);
    assert_string_equal(err, "");
    assert_int_equal(b.rip, 0x8000);
    assert_int_equal(b.load_lo, 0x8000);
    assert_int_equal(b.load_hi, 0xe000);
    assert_int_equal(b.boot_area, 0x2000);
    assert_int_equal(b.rsp, 0x2000); /* the scratch stack page 0x1000-0x1fff, below the structures */
    check_boot_area_placement(&ram, &b, CMDLINE);
    /* The kernel's bytes are whole: nothing of the boot area landed on them. */
    expect_segment(&ram, 0x8000, 0, 0x2800);
    expect_segment(&ram, 0xb000, 1, 0x100);
    expect_fill(&ram, 0xb100, 0x2f00, 0);
    /* Around the boot structures, nothing written: the stack page is the guest's. */
    expect_fill(&ram, 0x1000, 0x1000, POISON);
    expect_fill(&ram, 0x4000, 0x4000, POISON);
    expect_fill(&ram, 0xe000, 0x100000 - 0xe000, POISON);
    img_free(&img);

    /* The same with the a.out kludge, loaded at 0x7000 (which the old area met too). */
    memset(ram.hva, POISON, ram.size);
    img_aout(&img, 0x3000, 0x40, 0, 0x7040, 0x7000, 0, 0x20000, 0x7100);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(b.boot_area, 0x2000);
    check_boot_area_placement(&ram, &b, NULL);
    assert_memory_equal(ram.hva + 0x7000, img.data, 0x3000);
    img_free(&img);

    /* An ELF64 kernel there too: RDI and RBX name the moved information. */
    memset(ram.hva, POISON, ram.size);
    static const struct seg_spec low64[] = {{IMG_PT_LOAD, 0x8000, 0xffffffff80008000ull, 0x800, 0x1000}};
    img_elf64(&img, 0xffffffff80008000ull, low64, 1);
    assert_int_equal(guest_load_elf64(&ram, img.data, img.size, "e", &b, err), 0);
    assert_int_equal(b.rip, 0x8000);
    assert_int_equal(b.boot_area, 0x2000);
    assert_int_equal(b.rdi, 0x2040);
    check_boot_area_placement(&ram, &b, "e");
    expect_segment(&ram, 0x8000, 0, 0x800);
    img_free(&img);
    ram_free(&ram);
}

static void test_boot_area_placement_order(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    static const struct {
        uint32_t load, end; /* the a.out kludge image's span */
        gpa_t base;         /* where the boot area must go */
    } cases[] = {
        {0x100000, 0x110000, 0x8000},   /* the usual kernel at 1 MiB: the preferred 0x8000 */
        {0xa000, 0x20000, 0x8000},      /* just above the preferred block */
        {0x1000, 0x7000, 0x8000},       /* just below it */
        {0x1000, 0x7800, 0x9000},       /* into its stack page: the block above the image, at 0x8000 */
        {0x4000, 0x8000, 0x2000},       /* 0x1000-0x3fff just fits below it */
        {0x3000, 0x9000, 0xa000},       /* not there: above it */
        {0x1000, 0x9e000, 0x101000},    /* low memory full: at 1 MiB */
        {0x1000, 0x9fc00, 0x101000},
        {0x100000, 0xfff000, 0x8000},   /* up to the last page: low memory is free */
    };
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        memset(ram.hva, POISON, ram.size);
        uint32_t file = MIN(cases[i].end - cases[i].load, 0x3000u);
        img_aout(&img, file, 0x40, 0, cases[i].load + 0x40, cases[i].load, cases[i].load + file, cases[i].end,
                 cases[i].load + 0x100);
        int rc = guest_load_multiboot(&ram, img.data, img.size, "x", &b, err);
        if (rc != 0 || b.boot_area != cases[i].base)
            fail_msg("image 0x%x-0x%x: rc %d \"%s\", boot area 0x%llx, expected 0x%llx", cases[i].load,
                     cases[i].end, rc, err, (unsigned long long)b.boot_area, (unsigned long long)cases[i].base);
        check_boot_area_placement(&ram, &b, "x");
        assert_memory_equal(ram.hva + cases[i].load, img.data, file);
        img_free(&img);
    }
    /* Low memory full and a segment at 1 MiB: above the image's end. */
    memset(ram.hva, POISON, ram.size);
    static const struct seg_spec split[] = {
        {IMG_PT_LOAD, 0x1000, 0x1000, 0x100, 0x9e000},
        {IMG_PT_LOAD, 0x100000, 0x100000, 0x100, 0x100800},
    };
    img_elf32(&img, 0x1000, split, ARRAY_SIZE(split), true, 0);
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, "x", &b, err), 0);
    assert_int_equal(b.boot_area, 0x202000);
    check_boot_area_placement(&ram, &b, "x");
    img_free(&img);

    /* The whole of low memory and RAM up to its end: refused, nothing written. */
    memset(ram.hva, POISON, ram.size);
    static const struct seg_spec full[] = {
        {IMG_PT_LOAD, 0x1000, 0x1000, 0x100, 0x9e000},
        {IMG_PT_LOAD, 0x100000, 0x100000, 0x100, RAM_SIZE - 0x100000},
    };
    img_elf32(&img, 0x1000, full, ARRAY_SIZE(full), true, 0);
    expect_error(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), GUEST_ENOFIT, err,
                 "no room for the boot information");
    assert_true(ram_untouched(&ram));
    img_free(&img);
    ram_free(&ram);
}

/* The memory map agrees with the firmware areas: the 0x9FC00-0xFFFFF hole (EBDA, VGA,
 * ROMs, and the ACPI tables at 0xE0000-0xFFFFF) is reserved, RAM above 1 MiB is usable
 * to the end of the VM, and the map covers RAM exactly, whatever the VM's size and
 * wherever the boot area went. */
static void test_mb_memory_map_agrees_with_firmware(void **state)
{
    (void)state;
    static const uint64_t sizes[] = {2 * MiB, 16 * MiB, 64 * MiB + 4 * KiB};
    static const struct seg_spec at_1m[] = {{IMG_PT_LOAD, 0x100000, 0x100000, 0x1000, 0x1000}};
    static const struct seg_spec at_8k[] = {{IMG_PT_LOAD, 0x8000, 0x8000, 0x1000, 0x1000}};
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        for (int low = 0; low < 2; low++) {
            struct guest_ram ram = ram_new(sizes[i]);
            struct test_image img;
            struct guest_boot b;
            char err[GUEST_ERR_LEN];
            img_elf32(&img, low ? 0x8000 : 0x100000, low ? at_8k : at_1m, 1, true, BIT(1));
            assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
            assert_int_equal(b.boot_area, low ? 0x2000 : 0x8000);
            gpa_t mbi = b.info;
            assert_int_equal(rd32(&ram, mbi) & (BIT(0) | BIT(6)), BIT(0) | BIT(6));
            assert_int_equal(rd32(&ram, mbi + 4), 0x9fc00 / KiB);
            assert_int_equal(rd32(&ram, mbi + 8), (sizes[i] - MiB) / KiB);
            assert_int_equal(rd32(&ram, mbi + 44), 3 * 24);
            gpa_t mm = rd32(&ram, mbi + 48);
            check_mmap_entry(&ram, mm, 0, 0x9fc00, 1);
            check_mmap_entry(&ram, mm + 24, 0x9fc00, 0x100000 - 0x9fc00, 2);
            check_mmap_entry(&ram, mm + 48, 0x100000, sizes[i] - 0x100000, 1);
            check_boot_area_placement(&ram, &b, NULL);
            img_free(&img);
            ram_free(&ram);
        }
    }
}

/* ---- ELF64 ---- */

static const struct seg_spec elf64_segs[] = {
    {IMG_PT_LOAD, 0x100000, 0xffffffff80100000ull, 0x2345, 0x3000},
    {IMG_PT_NOTE, 0, 0, 0x10, 0x10},
    {IMG_PT_LOAD, 0x400000, 0xffffffff80400000ull, 0x100, 0x10000},
};

static void test_elf64_good(void **state)
{
    (void)state;
    /* 3 MiB + 4 KiB: not a 2 MiB multiple, so the identity map is rounded up to 4 MiB. */
    const uint64_t size = 3 * MiB + 4 * KiB;
    struct guest_ram ram = ram_new(size);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    struct seg_spec segs[3];
    memcpy(segs, elf64_segs, sizeof segs);
    segs[2].paddr = 0x200000;
    segs[2].vaddr = 0xffffffff80200000ull;
    img_elf64(&img, 0xffffffff80100040ull, segs, 3);
    assert_int_equal(guest_load_elf64(&ram, img.data, img.size, "init=/bin/sh", &b, err), 0);
    assert_int_equal(b.kind, GUEST_IMAGE_ELF64);
    assert_int_equal(b.mode, GUEST_MODE_LONG64);
    assert_int_equal(b.rip, 0x100040); /* virtual entry translated to physical */
    assert_int_equal(b.cs, GUEST_SEL_CODE64);
    assert_int_equal(b.ds, GUEST_SEL_DATA);
    assert_int_equal(b.cr0, 0x80000011);
    assert_int_equal(b.cr4, 0x20);
    assert_int_equal(b.efer, 0x500);
    assert_int_equal(b.rdi, GUEST_MB_INFO);
    assert_int_equal(b.rbx, GUEST_MB_INFO);
    assert_int_equal(b.rax, 0x2BADB002);
    assert_int_equal(b.load_lo, 0x100000);
    assert_int_equal(b.load_hi, 0x210000);

    /* Tables at the very top: PML4, PDPT, one PD. */
    const gpa_t tables = size - 3 * PAGE_SIZE;
    assert_int_equal(b.cr3, tables);
    assert_int_equal(rd64(&ram, tables), (tables + PAGE_SIZE) | 3);
    for (unsigned i = 1; i < 512; i++)
        assert_int_equal(rd64(&ram, tables + i * 8), 0);
    assert_int_equal(rd64(&ram, tables + PAGE_SIZE), (tables + 2 * PAGE_SIZE) | 3);
    for (unsigned i = 1; i < 512; i++)
        assert_int_equal(rd64(&ram, tables + PAGE_SIZE + i * 8), 0);
    assert_int_equal(rd64(&ram, tables + 2 * PAGE_SIZE), 0x83);
    assert_int_equal(rd64(&ram, tables + 2 * PAGE_SIZE + 8), 0x200000 | 0x83);
    for (unsigned i = 2; i < 512; i++)
        assert_int_equal(rd64(&ram, tables + 2 * PAGE_SIZE + i * 8), 0);

    /* Stack just below the tables, aligned as after a call, zero return address. */
    assert_int_equal(b.rsp, tables - 8);
    assert_int_equal((b.rsp + 8) % 16, 0);
    assert_int_equal(rd64(&ram, b.rsp), 0);

    expect_segment(&ram, 0x100000, 0, 0x2345);
    expect_fill(&ram, 0x102345, 0x3000 - 0x2345, 0);
    expect_segment(&ram, 0x200000, 2, 0x100);
    expect_fill(&ram, 0x200100, 0x10000 - 0x100, 0);
    expect_fill(&ram, 0x210000, 0x1000, POISON);

    /* Info structure: the stack and tables are reported reserved. */
    const gpa_t stack_bottom = tables - GUEST_ELF64_STACK_SIZE;
    assert_int_equal(rd32(&ram, GUEST_MB_INFO), BIT(0) | BIT(2) | BIT(6) | BIT(9));
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 8), (stack_bottom - MiB) / KiB);
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 44), 4 * 24);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 48, 0x100000, stack_bottom - 0x100000, 1);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 72, stack_bottom, size - stack_bottom, 2);
    assert_string_equal((char *)ram.hva + GUEST_MB_CMDLINE, "init=/bin/sh");
    check_gdt(&ram);
    assert_int_equal(b.gdt_base, GUEST_GDT);
    img_free(&img);
    ram_free(&ram);
}

/* RAM beyond 3584 MiB: the loaders get the part below 4 GiB whole and are told how much
 * lies at 4 GiB. The block is reserved, not touched: only the pages the loaders write
 * become real. */
static struct guest_ram ram_with_high(uint64_t high)
{
    void *p = mmap(NULL, GUEST_RAM_LOW_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    return (struct guest_ram){p, GUEST_RAM_LOW_MAX, high};
}

static void test_ram_above_4g(void **state)
{
    (void)state;
    const uint64_t high = 64 * MiB + 4 * KiB;
    struct guest_ram ram = ram_with_high(high);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];

    /* Multiboot: the memory map ends with the RAM at 4 GiB; mem_upper counts only the
     * RAM below the first hole above 1 MiB, as the specification says. */
    mb_image(&img, BIT(0) | BIT(1));
    assert_int_equal(guest_load_multiboot(&ram, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 8), (GUEST_RAM_LOW_MAX - MiB) / KiB);
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 44), 4 * 24);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 48, 0x100000, GUEST_RAM_LOW_MAX - 0x100000, 1);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 72, GUEST_RAM_HIGH_BASE, high, 1);
    img_free(&img);

    /* ELF64: the boot page tables map everything up to the end of the high RAM (the
     * device area included), one PD per GiB, below the top of the low part. */
    struct seg_spec segs[3];
    memcpy(segs, elf64_segs, sizeof segs);
    img_elf64(&img, 0xffffffff80100040ull, segs, 3);
    assert_int_equal(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), 0);
    const uint64_t pds = 5; /* 4 GiB + 64 MiB + 4 KiB, in 2 MiB pages: into the fifth GiB */
    const gpa_t tables = GUEST_RAM_LOW_MAX - (2 + pds) * PAGE_SIZE;
    assert_int_equal(b.cr3, tables);
    for (unsigned i = 0; i < pds; i++)
        assert_int_equal(rd64(&ram, tables + PAGE_SIZE + i * 8), (tables + (2 + i) * PAGE_SIZE) | 3);
    assert_int_equal(rd64(&ram, tables + PAGE_SIZE + pds * 8), 0);
    const gpa_t pd4 = tables + (2 + 4) * PAGE_SIZE;
    assert_int_equal(rd64(&ram, pd4), GUEST_RAM_HIGH_BASE | 0x83);
    assert_int_equal(rd64(&ram, pd4 + 32 * 8), (GUEST_RAM_HIGH_BASE + 64 * MiB) | 0x83); /* the last 4 KiB */
    assert_int_equal(rd64(&ram, pd4 + 33 * 8), 0);
    assert_int_equal(rd64(&ram, tables + 2 * PAGE_SIZE + 3 * PAGE_SIZE + 511 * 8), (4 * 1024 * MiB - 2 * MiB) | 0x83);
    const gpa_t stack_bottom = tables - GUEST_ELF64_STACK_SIZE;
    assert_int_equal(rd32(&ram, GUEST_MB_INFO + 44), 5 * 24);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 72, stack_bottom, GUEST_RAM_LOW_MAX - stack_bottom, 2);
    check_mmap_entry(&ram, GUEST_MB_MMAP + 96, GUEST_RAM_HIGH_BASE, high, 1);

    /* Less below 4 GiB (memory_below_4g): the map has a gap up to 4 GiB, the tables sit
     * at the top of the low part. Sizes must be whole pages. */
    struct guest_ram less = {ram.hva, 64 * MiB, high};
    assert_int_equal(guest_load_elf64(&less, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(b.cr3, 64 * MiB - (2 + pds) * PAGE_SIZE);
    check_mmap_entry(&less, GUEST_MB_MMAP + 96, GUEST_RAM_HIGH_BASE, high, 1);
    /* So little below 4 GiB that the tables for 256 GiB above it (260 PDs) and the
     * stack leave no room above 1 MiB: refused before anything is written. */
    struct guest_ram tiny = {ram.hva, 2 * MiB, 256 * 1024 * MiB};
    expect_error(guest_load_elf64(&tiny, img.data, img.size, NULL, &b, err), GUEST_ENOFIT, err,
                 "the boot page tables for RAM up to 0x4100000000 (1048 KiB) and the stack do not fit in the 0x200000");
    struct guest_ram odd = {ram.hva, GUEST_RAM_LOW_MAX, 100};
    expect_error(guest_load_multiboot(&odd, img.data, img.size, NULL, &b, err), GUEST_EINVAL, err, "4 KiB");
    img_free(&img);
    munmap(ram.hva, GUEST_RAM_LOW_MAX);
}

static void test_elf64_errors(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct test_image img;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    struct seg_spec segs[3];

    /* A segment reaching into the boot stack / page tables at the top of RAM. */
    memcpy(segs, elf64_segs, sizeof segs);
    segs[2].paddr = RAM_SIZE - 0x20000;
    img_elf64(&img, 0x100000, segs, 3);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_ENOFIT, err,
                 "boot stack and page tables");
    img_free(&img);

    memcpy(segs, elf64_segs, sizeof segs);
    img_elf64(&img, 0x100000, segs, 3);
    img_put16(img.data + 18, 3);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EUNSUPPORTED, err, "x86-64");
    img_put16(img.data + 18, 62);
    img.data[4] = 1;
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EUNSUPPORTED, err, "ELF class 1");
    img.data[4] = 2;
    /* 64-bit wrap-around of paddr + memsz and of offset + filesz. */
    img_put64(img_phdr(&img, true, 2) + 24, 0xfffffffffffff000ull);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err, "wraps");
    img_put64(img_phdr(&img, true, 2) + 24, 0x400000);
    img_put64(img_phdr(&img, true, 2) + 8, 0xffffffffffffff00ull);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err,
                 "past the end of the file");
    img_put64(img_phdr(&img, true, 2) + 8, img.seg_off[2]);
    img_put64(img_phdr(&img, true, 2) + 40, 0x8000000000000000ull);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_ENOFIT, err, "outside guest RAM");
    img_put64(img_phdr(&img, true, 2) + 40, 0x10000);
    img_put64(img.data + 24, 0xffffffff90000000ull);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err, "entry point");
    img_put64(img.data + 32, 0xfffffffffffffff0ull); /* e_phoff */
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EBADIMAGE, err, "program headers");
    assert_true(ram_untouched(&ram));
    img_free(&img);

    /* A Multiboot ELF32 kernel is not an ELF64 one. */
    mb_image(&img, 0);
    expect_error(guest_load_elf64(&ram, img.data, img.size, NULL, &b, err), GUEST_EUNSUPPORTED, err, "ELF class 1");
    img_free(&img);
    ram_free(&ram);
}

/* ---- real mode ---- */

static void test_real(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(MiB);
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    uint8_t *blob = malloc(GUEST_REAL_MAX + 1);
    for (size_t i = 0; i <= GUEST_REAL_MAX; i++)
        blob[i] = img_pattern(0, i);

    assert_int_equal(guest_load_real(&ram, blob, 512, &b, err), 0);
    assert_int_equal(b.kind, GUEST_IMAGE_REAL);
    assert_int_equal(b.mode, GUEST_MODE_REAL16);
    assert_int_equal(b.cs, 0);
    assert_int_equal(b.rip, 0x7c00);
    assert_int_equal(b.rsp, 0x7c00);
    assert_int_equal(b.ds, 0);
    assert_int_equal(b.info, 0);
    assert_int_equal(b.cr0 & 1, 0);
    assert_memory_equal(ram.hva + 0x7c00, blob, 512);
    expect_fill(&ram, 0x7e00, 0x100, POISON);
    expect_fill(&ram, 0x7b00, 0x100, POISON);

    /* The largest image ends exactly at 0x9fc00. */
    assert_int_equal(guest_load_real(&ram, blob, GUEST_REAL_MAX, &b, err), 0);
    assert_int_equal(b.load_hi, 0x9fc00);
    assert_int_equal(ram.hva[0x9fc00], POISON);
    ram_free(&ram);

    ram = ram_new(MiB);
    expect_error(guest_load_real(&ram, blob, GUEST_REAL_MAX + 1, &b, err), GUEST_ENOFIT, err, "exceeds");
    expect_error(guest_load_real(&ram, blob, 0, &b, err), GUEST_EBADIMAGE, err, "empty");
    expect_error(guest_load_real(&ram, NULL, 10, &b, err), GUEST_EBADIMAGE, err, "empty");
    assert_true(ram_untouched(&ram));
    ram_free(&ram);
    ram = ram_new(0x8000);
    expect_error(guest_load_real(&ram, blob, 0x401, &b, err), GUEST_EINVAL, err, "cannot hold");
    assert_int_equal(guest_load_real(&ram, blob, 0x400, &b, err), 0);
    ram_free(&ram);
    free(blob);
}

/* ---- probing and dispatch ---- */

static void test_probe_and_dispatch(void **state)
{
    (void)state;
    struct test_image img;
    struct guest_ram ram = ram_new(RAM_SIZE);
    struct guest_boot b;
    char err[GUEST_ERR_LEN];

    mb_image(&img, 0);
    assert_int_equal(guest_image_probe(img.data, img.size), GUEST_IMAGE_MULTIBOOT);
    assert_int_equal(guest_load(GUEST_IMAGE_MULTIBOOT, &ram, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(b.mode, GUEST_MODE_PROT32);
    img_free(&img);

    img_elf64(&img, 0x100000, elf64_segs, 3);
    assert_int_equal(guest_image_probe(img.data, img.size), GUEST_IMAGE_ELF64);
    assert_int_equal(guest_load(GUEST_IMAGE_ELF64, &ram, img.data, img.size, NULL, &b, err), 0);
    assert_int_equal(b.mode, GUEST_MODE_LONG64);
    /* An ELF64 kernel carrying a Multiboot (kludge) header is booted as Multiboot. */
    img_put_mb_header(img.data + 0x200, BIT(16), 0x100200, 0x100000, 0, 0, 0x100300);
    assert_int_equal(guest_image_probe(img.data, img.size), GUEST_IMAGE_MULTIBOOT);
    img_free(&img);

    uint8_t junk[600];
    memset(junk, 0x90, sizeof junk);
    assert_int_equal(guest_image_probe(junk, sizeof junk), GUEST_IMAGE_UNKNOWN);
    assert_int_equal(guest_image_probe(junk, 0), GUEST_IMAGE_UNKNOWN);
    assert_int_equal(guest_image_probe(NULL, 100), GUEST_IMAGE_UNKNOWN);
    assert_int_equal(guest_load(GUEST_IMAGE_REAL, &ram, junk, sizeof junk, NULL, &b, err), 0);
    expect_error(guest_load(GUEST_IMAGE_UNKNOWN, &ram, junk, sizeof junk, NULL, &b, err), GUEST_EINVAL, err,
                 "unknown kind");
    ram_free(&ram);
}

/* ---- robustness: every truncation, random corruption ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

typedef int (*loader_fn)(const struct guest_ram *, const void *, size_t, const char *, struct guest_boot *, char *);

/* A result must be coherent: success with an entry inside what was loaded, or a
 * failure with a message and (checked when `check_ram`) untouched RAM. */
static void run_one(loader_fn load, struct guest_ram *ram, const uint8_t *data, size_t size, bool check_ram)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct guest_boot b;
    char err[GUEST_ERR_LEN] = "";
    int rc = load(ram, copy, size, "x", &b, err);
    if (rc == 0) {
        assert_true(b.load_lo >= GUEST_MIN_LOAD && b.load_lo < b.load_hi && b.load_hi <= ram->size);
        assert_true(b.rip >= b.load_lo && b.rip < b.load_hi);
        memset(ram->hva, POISON, ram->size);
    } else {
        assert_true(rc >= GUEST_EINVAL && rc <= GUEST_EBADIMAGE);
        assert_true(err[0] != 0);
        if (check_ram)
            assert_true(ram_untouched(ram));
    }
    free(copy);
}

static void test_every_truncation(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(4 * MiB);
    struct test_image img;
    mb_image(&img, 0);
    for (size_t n = 0; n <= img.size; n++)
        run_one(guest_load_multiboot, &ram, img.data, n, n % 64 == 0);
    img_free(&img);
    img_aout(&img, 0x2000, 0x40, 0, 0x100040, 0x100000, 0x101800, 0x103000, 0x100100);
    for (size_t n = 0; n <= img.size; n++)
        run_one(guest_load_multiboot, &ram, img.data, n, n % 64 == 0);
    img_free(&img);
    img_elf64(&img, 0xffffffff80100040ull, elf64_segs, 2);
    for (size_t n = 0; n <= img.size; n++)
        run_one(guest_load_elf64, &ram, img.data, n, n % 64 == 0);
    img_free(&img);
    ram_free(&ram);
}

static void test_random_corruption(void **state)
{
    (void)state;
    struct guest_ram ram = ram_new(4 * MiB);
    struct test_image mb, aout, e64;
    mb_image(&mb, 0);
    img_aout(&aout, 0x2000, 0x40, 0, 0x100040, 0x100000, 0x101800, 0x103000, 0x100100);
    img_elf64(&e64, 0x100040, elf64_segs, 2);
    struct test_image *imgs[] = {&mb, &aout, &e64};
    for (int it = 0; it < 3000; it++) {
        struct test_image *src = imgs[it % 3];
        struct test_image t;
        img_copy(&t, src);
        int flips = 1 + rnd() % 4;
        for (int k = 0; k < flips; k++) {
            /* Mostly the headers, where the interesting fields are. */
            size_t at = rnd() % 4 ? rnd() % 0x140 : rnd() % t.size;
            t.data[at] = rnd() % 2 ? (uint8_t)rnd() : t.data[at] ^ (uint8_t)(1u << (rnd() % 8));
        }
        if (src == &aout && rnd() % 2)
            img_fix_mb_checksum(&t); /* let flag and address corruptions reach the kludge checks */
        run_one(src == &e64 ? guest_load_elf64 : guest_load_multiboot, &ram, t.data, t.size, it % 16 == 0);
        img_free(&t);
    }
    img_free(&mb);
    img_free(&aout);
    img_free(&e64);
    ram_free(&ram);
}

int main(void)
{
    /* The loaders report through their return value and must not print. */
    capture_forbid_output(true);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mb_elf32_good),
        cmocka_unit_test(test_mb_entry_and_options),
        cmocka_unit_test(test_mb_bad_ram),
        cmocka_unit_test(test_mb_unknown_required_flag),
        cmocka_unit_test(test_mb_header_search),
        cmocka_unit_test(test_mb_elf32_errors),
        cmocka_unit_test(test_mb_aout_good),
        cmocka_unit_test(test_mb_aout_errors),
        cmocka_unit_test(test_mb_kernel_linked_at_0x8000),
        cmocka_unit_test(test_boot_area_placement_order),
        cmocka_unit_test(test_mb_memory_map_agrees_with_firmware),
        cmocka_unit_test(test_elf64_good),
        cmocka_unit_test(test_ram_above_4g),
        cmocka_unit_test(test_elf64_errors),
        cmocka_unit_test(test_real),
        cmocka_unit_test(test_probe_and_dispatch),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_random_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
