/* Host tests for the Linux boot-protocol loader (vmm/loaders/linux_boot.c): a synthetic
 * bzImage shaped like Debian's (protocol 2.15, 64-bit entry, relocatable, 2 MiB
 * alignment, pref_address 16 MiB) loaded and its zero page checked field by field, then
 * malformed and unfitting images. Guest RAM is poisoned with 0xAA, so a failed load can
 * be shown to have written nothing.
 * SOURCES: vmm/loaders/linux_boot.c vmm/lib/printf.c vmm/lib/string.c tests/unit/console_capture.c
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
#include "vmm/loaders/linux_boot.h"

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

static bool ram_untouched(const struct guest_ram *r)
{
    for (uint64_t i = 0; i < r->size; i++)
        if (r->hva[i] != POISON)
            return false;
    return true;
}

static void p16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void p32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void p64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint16_t g16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t g32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t g64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* The synthetic kernel: SETUP_SECTS setup sectors, then KERNEL_BYTES of a pattern. */
#define SETUP_SECTS 27
#define SETUP_SIZE ((SETUP_SECTS + 1) * 512)
#define KERNEL_BYTES (64 * KiB)
#define IMAGE_SIZE (SETUP_SIZE + KERNEL_BYTES)
#define INIT_SIZE (8 * MiB)
#define PREF (16 * MiB)
#define RAM (64 * MiB)

static uint8_t kernel_byte(uint64_t i) { return (uint8_t)(i * 7 + 3); }

static uint8_t *image_new(void)
{
    uint8_t *im = calloc(1, IMAGE_SIZE);
    assert_non_null(im);
    im[LH_SETUP_SECTS] = SETUP_SECTS;
    p16(im + LH_BOOT_FLAG, LINUX_BOOT_FLAG);
    im[LH_JUMP] = 0xeb;
    im[LH_JUMP + 1] = 0x6a; /* header ends at 0x26c, as in 2.15 kernels */
    p32(im + LH_HEADER, LINUX_HDRS);
    p16(im + LH_VERSION, 0x020f);
    im[LH_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
    p32(im + LH_CODE32_START, 0x100000);
    p32(im + LH_INITRD_ADDR_MAX, 0x7fffffff);
    p32(im + LH_KERNEL_ALIGNMENT, 0x200000);
    im[LH_RELOCATABLE] = 1;
    im[LH_MIN_ALIGNMENT] = 21;
    p16(im + LH_XLOADFLAGS, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
    p32(im + LH_CMDLINE_SIZE, 0x7ff);
    p64(im + LH_PREF_ADDRESS, PREF);
    p32(im + LH_INIT_SIZE, INIT_SIZE);
    /* A field past the header's end must not reach the zero page. */
    p32(im + 0x26c, 0xdeadbeef);
    for (uint64_t i = 0; i < KERNEL_BYTES; i++)
        im[SETUP_SIZE + i] = kernel_byte(i);
    return im;
}

static void expect_error(int rc, int code, const char *err, const char *needle)
{
    if (rc != code || !strstr(err, needle))
        fail_msg("got %d \"%s\", expected %d with \"%s\"", rc, err, code, needle);
    assert_true(strlen(err) < GUEST_ERR_LEN);
}

/* Loads `im` into fresh RAM and expects failure `code` with `needle`, RAM untouched. */
static void expect_refused(uint8_t *im, size_t size, uint64_t ram_size, size_t initrd_size, const char *cmdline,
                           int code, const char *needle)
{
    struct guest_ram r = ram_new(ram_size);
    uint8_t *initrd = initrd_size ? calloc(1, initrd_size) : NULL;
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    int rc = guest_load_linux(&r, im, size, initrd, initrd_size, cmdline, &b, err);
    expect_error(rc, code, err, needle);
    assert_true(ram_untouched(&r));
    free(initrd);
    free(r.hva);
}

static void test_good_image(void **state)
{
    (void)state;
    uint8_t *im = image_new();
    struct guest_ram r = ram_new(RAM);
    const size_t initrd_size = 300 * KiB + 5;
    uint8_t *initrd = malloc(initrd_size);
    for (size_t i = 0; i < initrd_size; i++)
        initrd[i] = (uint8_t)(i ^ 0x5a);
    const char *cmd = "console=ttyS0 panic=-1";
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, initrd, initrd_size, cmd, &b, err), 0);
    assert_string_equal(err, "");

    /* The kernel at pref_address, byte for byte, and nothing after it. */
    for (uint64_t i = 0; i < KERNEL_BYTES; i++)
        if (r.hva[PREF + i] != kernel_byte(i))
            fail_msg("kernel byte %llu wrong", (unsigned long long)i);
    assert_int_equal(r.hva[PREF + KERNEL_BYTES], POISON);

    /* Entry: 64-bit at startup_64, RSI the zero page, flat GDT. */
    assert_int_equal(b.kind, GUEST_IMAGE_LINUX);
    assert_int_equal(b.mode, GUEST_MODE_LONG64);
    assert_int_equal(b.rip, PREF + 0x200);
    assert_int_equal(b.rsi, LINUX_ZERO_PAGE);
    assert_int_equal(b.info, LINUX_ZERO_PAGE);
    assert_int_equal(b.rax, 0);
    assert_int_equal(b.rbx, 0);
    assert_int_equal(b.rdi, 0);
    assert_int_equal(b.cs, 0x10);
    assert_int_equal(b.ds, 0x18);
    assert_int_equal(b.gdt_base, LINUX_GDT);
    assert_int_equal(b.gdt_limit, 0x1f);
    assert_int_equal(g64(r.hva + LINUX_GDT), 0);
    assert_int_equal(g64(r.hva + LINUX_GDT + 0x10), 0x00af9b000000ffffull);
    assert_int_equal(g64(r.hva + LINUX_GDT + 0x18), 0x00cf93000000ffffull);
    assert_int_equal(b.cr0 & 0x80000001u, 0x80000001u);
    assert_true(b.cr4 & BIT(5));
    assert_int_equal(b.efer & (BIT(8) | BIT(10)), BIT(8) | BIT(10));
    assert_int_equal(b.load_lo, PREF);
    assert_int_equal(b.load_hi, PREF + INIT_SIZE);

    /* The page tables identity-map 0-4 GiB in 2 MiB pages. */
    assert_int_equal(b.cr3, LINUX_PAGE_TABLES);
    uint64_t pml4 = g64(r.hva + b.cr3);
    assert_int_equal(pml4 & ~0xfffull, LINUX_PAGE_TABLES + PAGE_SIZE);
    for (unsigned gib = 0; gib < 4; gib++) {
        uint64_t pdpte = g64(r.hva + LINUX_PAGE_TABLES + PAGE_SIZE + gib * 8);
        assert_true(pdpte & 1);
        uint64_t pd = pdpte & ~0xfffull;
        for (unsigned i = 0; i < 512; i += 97) {
            uint64_t pde = g64(r.hva + pd + i * 8);
            assert_int_equal(pde & ~0xfffull, ((uint64_t)gib << 30) + ((uint64_t)i << 21));
            assert_int_equal(pde & 0x83, 0x83);
        }
    }
    assert_int_equal(g64(r.hva + LINUX_PAGE_TABLES + PAGE_SIZE + 4 * 8), 0);

    /* The zero page: the image's setup header, then what the loader sets. */
    const uint8_t *zp = r.hva + LINUX_ZERO_PAGE;
    assert_int_equal(zp[LH_SETUP_SECTS], SETUP_SECTS);
    assert_int_equal(g16(zp + LH_BOOT_FLAG), 0xaa55);
    assert_int_equal(g32(zp + LH_HEADER), LINUX_HDRS);
    assert_int_equal(g16(zp + LH_VERSION), 0x020f);
    assert_int_equal(zp[LH_TYPE_OF_LOADER], 0xff);
    assert_int_equal(zp[LH_LOADFLAGS], LOADFLAG_LOADED_HIGH);
    assert_int_equal(g32(zp + LH_CODE32_START), PREF);
    assert_int_equal(g32(zp + LH_KERNEL_ALIGNMENT), 0x200000);
    assert_int_equal(g64(zp + LH_PREF_ADDRESS), PREF);
    assert_int_equal(g32(zp + LH_INIT_SIZE), INIT_SIZE);
    assert_int_equal(g32(zp + 0x26c), 0); /* past the header: not copied */
    assert_int_equal(zp[0], 0);           /* screen_info and the rest: zero */
    assert_int_equal(g64(zp + BP_ACPI_RSDP_ADDR), 0);
    assert_int_equal(g32(zp + BP_EXT_RAMDISK_IMAGE), 0);
    assert_int_equal(g32(zp + BP_EXT_CMD_LINE_PTR), 0);

    /* Command line. */
    assert_int_equal(g32(zp + LH_CMD_LINE_PTR), LINUX_CMDLINE);
    assert_string_equal((const char *)r.hva + LINUX_CMDLINE, cmd);

    /* Initrd: page-aligned at the top of RAM (below initrd_addr_max), above the kernel. */
    uint32_t rd = g32(zp + LH_RAMDISK_IMAGE);
    assert_int_equal(g32(zp + LH_RAMDISK_SIZE), initrd_size);
    assert_int_equal(rd % PAGE_SIZE, 0);
    assert_int_equal(rd, RAM - ALIGN_UP(initrd_size, PAGE_SIZE));
    assert_int_equal(b.initrd, rd);
    assert_int_equal(b.initrd_size, initrd_size);
    assert_true(rd >= PREF + INIT_SIZE);
    assert_memory_equal(r.hva + rd, initrd, initrd_size);

    /* e820: low RAM, the reserved hole with the BIOS area (ACPI tables), RAM from 1 MiB. */
    assert_int_equal(zp[BP_E820_ENTRIES], 3);
    const uint8_t *e = zp + BP_E820_TABLE;
    assert_int_equal(g64(e), 0);
    assert_int_equal(g64(e + 8), 0x9fc00);
    assert_int_equal(g32(e + 16), E820_RAM);
    assert_int_equal(g64(e + 20), 0x9fc00);
    assert_int_equal(g64(e + 28), 0x100000 - 0x9fc00);
    assert_int_equal(g32(e + 36), E820_RESERVED);
    assert_int_equal(g64(e + 40), 0x100000);
    assert_int_equal(g64(e + 48), RAM - 0x100000);
    assert_int_equal(g32(e + 56), E820_RAM);

    /* acpi_rsdp_addr, once the tables are built. */
    linux_boot_set_rsdp(&r, &b, 0xe0000);
    assert_int_equal(g64(zp + BP_ACPI_RSDP_ADDR), 0xe0000);

    free(initrd);
    free(r.hva);
    free(im);
}

/* Protocol 2.13 (no acpi_rsdp_addr) without XLF_KERNEL_64: 32-bit entry at
 * code32_start, paging off, and the RSDP left to the kernel's BIOS-area scan. */
/* RAM beyond 3584 MiB: the e820 map ends with the RAM at 4 GiB; kernel and initrd stay
 * below 4 GiB. The low block is reserved, not touched. */
static void test_ram_above_4g(void **state)
{
    (void)state;
    uint8_t *im = image_new();
    void *p = mmap(NULL, GUEST_RAM_LOW_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(p != MAP_FAILED);
    const uint64_t high = 3 * 1024 * MiB;
    struct guest_ram r = {p, GUEST_RAM_LOW_MAX, high};
    uint8_t initrd[4096] = {1, 2, 3};
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, initrd, sizeof initrd, "console=ttyS0", &b, err), 0);
    const uint8_t *zp = r.hva + LINUX_ZERO_PAGE;
    assert_int_equal(zp[BP_E820_ENTRIES], 4);
    const uint8_t *e = zp + BP_E820_TABLE;
    assert_int_equal(g64(e + 48), GUEST_RAM_LOW_MAX - 0x100000);
    assert_int_equal(g64(e + 60), GUEST_RAM_HIGH_BASE);
    assert_int_equal(g64(e + 68), high);
    assert_int_equal(g32(e + 76), E820_RAM);
    uint32_t initrd_at = g32(zp + LH_RAMDISK_IMAGE);
    assert_true(initrd_at + sizeof initrd <= GUEST_RAM_LOW_MAX);
    assert_memory_equal(r.hva + initrd_at, initrd, sizeof initrd);

    /* Less below 4 GiB (memory_below_4g): RAM from 1 MiB ends there, the rest at 4 GiB. */
    struct guest_ram less = {p, 512 * MiB, high};
    assert_int_equal(guest_load_linux(&less, im, IMAGE_SIZE, NULL, 0, "", &b, err), 0);
    assert_int_equal(zp[BP_E820_ENTRIES], 4);
    assert_int_equal(g64(e + 48), 512 * MiB - 0x100000);
    assert_int_equal(g64(e + 60), GUEST_RAM_HIGH_BASE);
    struct guest_ram odd = {p, 512 * MiB, 100};
    expect_error(guest_load_linux(&odd, im, IMAGE_SIZE, NULL, 0, "", &b, err), GUEST_EINVAL, err, "4 KiB");
    munmap(p, GUEST_RAM_LOW_MAX);
    free(im);
}

static void test_32bit_entry(void **state)
{
    (void)state;
    uint8_t *im = image_new();
    p16(im + LH_VERSION, 0x020d);
    p16(im + LH_XLOADFLAGS, 0);
    struct guest_ram r = ram_new(RAM);
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, NULL, 0, NULL, &b, err), 0);
    assert_int_equal(b.mode, GUEST_MODE_PROT32);
    assert_int_equal(b.rip, PREF);
    assert_int_equal(b.rsi, LINUX_ZERO_PAGE);
    assert_int_equal(b.cr0 & 0x80000001u, 1);
    assert_int_equal(b.efer, 0);
    assert_int_equal(g64(r.hva + LINUX_GDT + 0x10), 0x00cf9b000000ffffull);
    const uint8_t *zp = r.hva + LINUX_ZERO_PAGE;
    assert_int_equal(g32(zp + LH_RAMDISK_IMAGE), 0);
    assert_int_equal(g32(zp + LH_RAMDISK_SIZE), 0);
    assert_int_equal(r.hva[LINUX_CMDLINE], 0);
    linux_boot_set_rsdp(&r, &b, 0xe0000);
    assert_int_equal(g64(zp + BP_ACPI_RSDP_ADDR), 0);
    free(r.hva);
    free(im);
}

/* A relocatable kernel whose pref_address does not fit goes to the lowest aligned
 * place at or above 1 MiB; a non-relocatable one is refused. */
static void test_relocation(void **state)
{
    (void)state;
    uint8_t *im = image_new();
    uint64_t small = 12 * MiB; /* 16 MiB + 8 MiB does not fit, 2 MiB + 8 MiB does */
    struct guest_ram r = ram_new(small);
    struct guest_boot b;
    char err[GUEST_ERR_LEN];
    assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, NULL, 0, NULL, &b, err), 0);
    assert_int_equal(b.load_lo, 2 * MiB);
    assert_int_equal(b.rip, 2 * MiB + 0x200);
    assert_int_equal(r.hva[2 * MiB], kernel_byte(0));
    assert_int_equal(g32(r.hva + LINUX_ZERO_PAGE + LH_CODE32_START), 2 * MiB);
    free(r.hva);

    im[LH_RELOCATABLE] = 0;
    expect_refused(im, IMAGE_SIZE, small, 0, NULL, GUEST_ENOFIT, "not relocatable");
    free(im);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t *im = image_new();

    /* Truncated: within the header, and within the setup part. */
    expect_refused(im, 0x100, RAM, 0, NULL, GUEST_EBADIMAGE, "too short for a setup header");
    expect_refused(im, SETUP_SIZE - 1, RAM, 0, NULL, GUEST_EBADIMAGE, "truncated");
    expect_refused(im, SETUP_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "truncated");
    expect_refused(NULL, 0, RAM, 0, NULL, GUEST_EBADIMAGE, "too short");

    /* Wrong magic: boot flag and HdrS. */
    p16(im + LH_BOOT_FLAG, 0x55aa);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "0xaa55");
    p16(im + LH_BOOT_FLAG, LINUX_BOOT_FLAG);
    p32(im + LH_HEADER, 0x53726449);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "HdrS");
    p32(im + LH_HEADER, LINUX_HDRS);

    /* Old protocol. */
    p16(im + LH_VERSION, 0x0205);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EUNSUPPORTED, "2.05 is older than 2.06");
    p16(im + LH_VERSION, 0x0100);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EUNSUPPORTED, "1.00");
    p16(im + LH_VERSION, 0x020f);

    /* Absurd setup_sects: past the 32 KiB setup limit, or past the file. */
    im[LH_SETUP_SECTS] = 200;
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "setup_sects 200");
    im[LH_SETUP_SECTS] = 63;
    expect_refused(im, 63 * 512, RAM, 0, NULL, GUEST_EBADIMAGE, "truncated");
    im[LH_SETUP_SECTS] = SETUP_SECTS;

    /* A header length (the jump at 0x200) beyond the setup part or too short. */
    im[LH_JUMP + 1] = 0x10;
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "setup header ending at 0x212");
    im[LH_JUMP] = 0x90;
    im[LH_JUMP + 1] = 0x6a;
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "the jump at 0x200");
    im[LH_JUMP] = 0xeb;

    /* Not a bzImage; bad alignment; init_size below the kernel's size. */
    im[LH_LOADFLAGS] = 0;
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EUNSUPPORTED, "zImage");
    im[LH_LOADFLAGS] = LOADFLAG_LOADED_HIGH;
    p32(im + LH_KERNEL_ALIGNMENT, 0x300000);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "kernel_alignment 0x300000");
    p32(im + LH_KERNEL_ALIGNMENT, 0x200000);
    p32(im + LH_INIT_SIZE, KERNEL_BYTES - 1);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_EBADIMAGE, "init_size");
    p32(im + LH_INIT_SIZE, INIT_SIZE);

    /* The good image still loads after all that patching back. */
    struct guest_ram r = ram_new(RAM);
    struct guest_boot b;
    assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, NULL, 0, NULL, &b, NULL), 0);
    free(r.hva);
    free(im);
}

static void test_does_not_fit(void **state)
{
    (void)state;
    uint8_t *im = image_new();

    /* Kernel larger than RAM: init_size beyond what the VM has, wherever it goes. */
    p32(im + LH_INIT_SIZE, 200 * MiB);
    expect_refused(im, IMAGE_SIZE, RAM, 0, NULL, GUEST_ENOFIT, "more than the VM's RAM");
    p32(im + LH_INIT_SIZE, INIT_SIZE);

    /* Initrd too large for the VM: bigger than RAM, and bigger than what is left above
     * the kernel; and an initrd_addr_max that leaves no room. */
    expect_refused(im, IMAGE_SIZE, RAM, RAM + 1, NULL, GUEST_ENOFIT, "initrd of");
    expect_refused(im, IMAGE_SIZE, RAM, RAM - PREF - INIT_SIZE + 1, NULL, GUEST_ENOFIT, "does not fit");
    p32(im + LH_INIT_SIZE, INIT_SIZE);
    p16(im + LH_XLOADFLAGS, XLF_KERNEL_64);
    p32(im + LH_INITRD_ADDR_MAX, PREF + INIT_SIZE + 4 * KiB - 1);
    expect_refused(im, IMAGE_SIZE, RAM, 8 * KiB, NULL, GUEST_ENOFIT, "initrd_addr_max");
    /* Just fits: one page right above the kernel. */
    {
        struct guest_ram r = ram_new(RAM);
        uint8_t page[4096] = {1};
        struct guest_boot b;
        assert_int_equal(guest_load_linux(&r, im, IMAGE_SIZE, page, sizeof page, NULL, &b, NULL), 0);
        assert_int_equal(b.initrd, PREF + INIT_SIZE);
        free(r.hva);
    }
    p32(im + LH_INITRD_ADDR_MAX, 0x7fffffff);

    /* RAM below the minimum; a command line over the kernel's cmdline_size. */
    expect_refused(im, IMAGE_SIZE, 1 * MiB, 0, NULL, GUEST_EINVAL, "too small");
    p32(im + LH_CMDLINE_SIZE, 10);
    expect_refused(im, IMAGE_SIZE, RAM, 0, "console=ttyS0", GUEST_EINVAL, "limit of 10");
    free(im);
}

/* Every truncation of the image fails cleanly or loads; none reads past the end (ASan). */
static void test_every_truncation(void **state)
{
    (void)state;
    uint8_t *full = image_new();
    struct guest_ram r = ram_new(RAM);
    for (size_t len = 0; len <= SETUP_SIZE + 16; len++) {
        uint8_t *cut = malloc(len ? len : 1);
        memcpy(cut, full, len);
        struct guest_boot b;
        char err[GUEST_ERR_LEN];
        int rc = guest_load_linux(&r, cut, len, NULL, 0, NULL, &b, err);
        if (len <= SETUP_SIZE)
            assert_int_equal(rc, GUEST_EBADIMAGE);
        else
            assert_int_equal(rc, 0);
        free(cut);
    }
    free(r.hva);
    free(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_image),
        cmocka_unit_test(test_ram_above_4g),
        cmocka_unit_test(test_32bit_entry),
        cmocka_unit_test(test_relocation),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_does_not_fit),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
