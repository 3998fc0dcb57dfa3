/* Fuzzes the guest image loaders (vmm/loaders/guest_image.c) through guest_load: Multiboot
 * (ELF32 and a.out kludge), ELF64 and real mode, plus guest_image_probe.
 *
 * Input: byte 0 picks the loader (bits 1:0: multiboot, elf64, real, probe-then-load),
 * bit 2 passes no command line, bit 3 adds (byte 0 >> 4) bytes to the RAM size (an odd
 * size, which must be refused); byte 1 picks a RAM size from ram_sizes[], byte 2 adds
 * (signed) 4 KiB pages to it; byte 3 is the command line's length n, the next n bytes
 * are the command line and the rest is the image, which ends where the input buffer does.
 *
 * Guest RAM ends flush against an inaccessible page and everything below it is
 * inaccessible too (or poisoned for ASan, within RAM's first page), so a write outside
 * RAM crashes. Untouched memory is never mapped: after a load, mincore() names every
 * page the loader wrote, and each
 * must belong to what guest_image.h lets a loader write (the loaded span, the boot
 * area, the ELF64 stack and page tables); a failed load must write nothing. On success
 * the boot state must describe a guest that starts inside its RAM: entry point in the
 * loaded bytes, stack and page tables inside RAM, a memory map and Multiboot
 * information that claim no byte beyond it.
 * SOURCES: vmm/loaders/guest_image.c vmm/lib/printf.c vmm/lib/string.c tests/fuzz/console_sink.c
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sanitizer/asan_interface.h>

#include "tests/fuzz/console_sink.h"
#include "vmm/loaders/guest_image.h"

#define PAGE 4096ul
#define RAM_MAX (0x40001000ul + 128 * PAGE) /* largest size the input can ask for */

static const uint64_t ram_sizes[] = {
    0x1000, 0x8000, 0xa0000, 0x100000, 0x1ff000, 0x200000, 0x201000, 0x400000, 0x1000000,
    0x40001000, /* ELF64: a second page directory */
};

static uint8_t *area;       /* RAM_MAX bytes of address space, then a PROT_NONE page */
static unsigned char *resident;

static void setup(void)
{
    uint8_t *m = mmap(NULL, PAGE + RAM_MAX + PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    FUZZ_CHECK(m != MAP_FAILED, "cannot reserve guest RAM");
    area = m + PAGE;
    FUZZ_CHECK(mprotect(area, RAM_MAX, PROT_READ | PROT_WRITE) == 0, "mprotect");
    resident = malloc(RAM_MAX / PAGE);
}

static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

struct range {
    uint64_t lo, hi;
};

static bool in_ranges(const struct range *r, size_t n, uint64_t lo, uint64_t hi)
{
    for (size_t i = 0; i < n; i++)
        if (lo < r[i].hi && r[i].lo < hi)
            return true;
    return false;
}

/* Every page of RAM the loader wrote must overlap an allowed range (given in
 * guest-physical addresses); with n == 0 none may have been written. */
__attribute__((no_sanitize("coverage"))) static void check_writes(uint64_t ram_off, uint64_t ram_size, const struct range *allowed, size_t n)
{
    uint64_t first = ram_off / PAGE;
    FUZZ_CHECK(mincore(area + first * PAGE, RAM_MAX - first * PAGE, resident + first) == 0, "mincore");
    for (uint64_t p = first; p < RAM_MAX / PAGE; p++) {
        if (!(resident[p] & 1))
            continue;
        uint64_t hva_lo = p * PAGE, hva_hi = hva_lo + PAGE;
        uint64_t lo = hva_lo > ram_off ? hva_lo - ram_off : 0, hi = MIN(hva_hi - ram_off, ram_size);
        FUZZ_CHECK(n > 0, "a failed load wrote guest RAM at 0x%lx", (unsigned long)lo);
        FUZZ_CHECK(in_ranges(allowed, n, lo, hi), "the loader wrote guest RAM at 0x%lx-0x%lx, outside what it may",
                   (unsigned long)lo, (unsigned long)hi - 1);
    }
}

static void check_text(const char *what, const char *s, size_t array, bool may_be_empty)
{
    size_t n = strnlen(s, array);
    FUZZ_CHECK(n < array, "%s not terminated", what);
    /* Formatting stops one short of the array: a message that long was cut. */
    FUZZ_CHECK(n + 1 < array, "%s was cut at %zu characters: %s", what, n, s);
    FUZZ_CHECK(n > 0 || may_be_empty, "%s is empty", what);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(s[i] >= 0x20 && s[i] < 0x7f, "%s has byte 0x%02x: %s", what, (unsigned char)s[i], s);
}

/* The boot area (its stack page included) must be RAM below 4 GiB that the image, the
 * reserved hole and the ELF64 stack leave free; the Multiboot information and memory
 * map in it must claim nothing beyond RAM, and the usable RAM they report ends at
 * `usable_top`. */
/* This input's RAM at 4 GiB (0: none): the memory map ends with it, and the ELF64 boot
 * tables map it. */
static uint64_t high_size;

static void check_boot_area(const uint8_t *ram, uint64_t size, const struct guest_boot *b, const char *cmdline,
                            uint64_t usable_top)
{
    gpa_t base = b->boot_area, lo = base - GUEST_BOOT_STACK_SIZE, hi = base + GUEST_BOOT_SIZE;
    FUZZ_CHECK(base % PAGE == 0 && base >= GUEST_MIN_LOAD + GUEST_BOOT_STACK_SIZE && hi <= usable_top &&
                   hi <= 1ull << 32,
               "boot area at 0x%lx in 0x%lx bytes of RAM (usable to 0x%lx)", (unsigned long)base, (unsigned long)size,
               (unsigned long)usable_top);
    FUZZ_CHECK(hi <= b->load_lo || lo >= b->load_hi, "boot area 0x%lx-0x%lx overlaps the image 0x%lx-0x%lx",
               (unsigned long)lo, (unsigned long)hi - 1, (unsigned long)b->load_lo, (unsigned long)b->load_hi - 1);
    FUZZ_CHECK(hi <= GUEST_LOW_MEM_END || lo >= GUEST_HIGH_MEM, "boot area 0x%lx-0x%lx in the reserved hole",
               (unsigned long)lo, (unsigned long)hi - 1);
    FUZZ_CHECK(b->gdt_base == base + GUEST_GDT_OFF && b->info == base + GUEST_MB_INFO_OFF && b->rbx == b->info,
               "boot area pointers");
    const uint8_t *mbi = ram + b->info;
    uint32_t flags = rd32(mbi);
    uint32_t want = MBI_FLAG_MEM | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME | (cmdline ? MBI_FLAG_CMDLINE : 0);
    FUZZ_CHECK(flags == want, "MBI flags 0x%x, expected 0x%x", flags, want);
    FUZZ_CHECK(rd32(mbi + 4) * 1024ull == GUEST_LOW_MEM_END, "mem_lower %u KiB", rd32(mbi + 4));
    FUZZ_CHECK(GUEST_HIGH_MEM + rd32(mbi + 8) * 1024ull <= usable_top, "mem_upper %u KiB runs past 0x%lx",
               rd32(mbi + 8), (unsigned long)usable_top);
    if (cmdline) {
        FUZZ_CHECK(rd32(mbi + 16) == base + GUEST_MB_CMDLINE_OFF, "cmdline pointer 0x%x", rd32(mbi + 16));
        FUZZ_CHECK(strcmp((const char *)ram + base + GUEST_MB_CMDLINE_OFF, cmdline) == 0,
                   "command line not copied whole");
    }
    FUZZ_CHECK(strcmp((const char *)ram + rd32(mbi + 64), "Keel") == 0, "boot loader name");
    uint32_t len = rd32(mbi + 44), addr = rd32(mbi + 48);
    FUZZ_CHECK(addr == base + GUEST_MB_MMAP_OFF && len % 24 == 0 && len >= 3 * 24 && len <= (high_size ? 5 : 4) * 24,
               "memory map at 0x%x, %u bytes", addr, len);
    if (high_size) {
        /* The last entry is the RAM at 4 GiB, whole; the rest covers the RAM below. */
        const uint8_t *e = ram + addr + len - 24;
        FUZZ_CHECK(rd64(e + 4) == GUEST_RAM_HIGH_BASE && rd64(e + 12) == high_size && rd32(e + 20) == 1,
                   "last memory map entry 0x%lx+0x%lx type %u, not the RAM at 4 GiB", (unsigned long)rd64(e + 4),
                   (unsigned long)rd64(e + 12), rd32(e + 20));
        len -= 24;
    }
    uint64_t covered = 0, usable_end = 0;
    for (uint32_t off = 0; off < len; off += 24) {
        const uint8_t *e = ram + addr + off;
        uint64_t base = rd64(e + 4), n = rd64(e + 12);
        uint32_t type = rd32(e + 20);
        FUZZ_CHECK(rd32(e) == 20, "memory map entry size %u", rd32(e));
        FUZZ_CHECK(base == covered, "memory map entry at 0x%lx leaves a gap or overlaps (expected 0x%lx)",
                   (unsigned long)base, (unsigned long)covered);
        FUZZ_CHECK(n > 0 && base + n > base, "memory map entry of %lu bytes", (unsigned long)n);
        FUZZ_CHECK(type == 1 || type == 2, "memory map type %u", type);
        covered = base + n;
        if (type == 1)
            usable_end = covered;
    }
    FUZZ_CHECK(covered == size, "the memory map covers 0x%lx bytes of 0x%lx", (unsigned long)covered,
               (unsigned long)size);
    FUZZ_CHECK(usable_end == usable_top, "usable RAM ends at 0x%lx, not 0x%lx", (unsigned long)usable_end,
               (unsigned long)usable_top);
    /* The GDT the boot state's selectors refer to. */
    FUZZ_CHECK(rd64(ram + b->gdt_base + GUEST_SEL_CODE32) >> 47 & 1, "code32 descriptor not present");
    FUZZ_CHECK(rd64(ram + b->gdt_base + GUEST_SEL_DATA) >> 47 & 1, "data descriptor not present");
    FUZZ_CHECK((rd64(ram + b->gdt_base + GUEST_SEL_CODE64) >> 53 & 1), "code64 descriptor is not 64-bit");
}

static void check_elf64_tables(const uint8_t *ram, uint64_t size, const struct guest_boot *b)
{
    uint64_t cr3 = b->cr3;
    FUZZ_CHECK(cr3 % PAGE == 0 && cr3 < size, "CR3 0x%lx", (unsigned long)cr3);
    uint64_t pml4 = rd64(ram + cr3);
    uint64_t pdpt = pml4 & ~0xfffull;
    FUZZ_CHECK((pml4 & 1) && pdpt + PAGE <= size, "PML4[0] = 0x%lx", (unsigned long)pml4);
    /* Every 2 MiB page of RAM identity-mapped, through tables inside RAM. */
    for (uint64_t va = 0; va < size; va += 2ull << 20) {
        uint64_t pdpte = rd64(ram + pdpt + (va >> 30) * 8);
        uint64_t pd = pdpte & ~0xfffull;
        FUZZ_CHECK((pdpte & 1) && pd >= cr3 && pd + PAGE <= size, "PDPT entry for 0x%lx = 0x%lx", (unsigned long)va,
                   (unsigned long)pdpte);
        uint64_t pde = rd64(ram + pd + ((va >> 21) & 511) * 8);
        FUZZ_CHECK((pde & 0x83) == 0x83 && (pde & ~0xfffull) == va, "PD entry for 0x%lx = 0x%lx", (unsigned long)va,
                   (unsigned long)pde);
    }
    /* The RAM at 4 GiB: its first and last 2 MiB pages (all of them would slow the
     * fuzzer down to a crawl for hundreds of GiB). */
    if (high_size) {
        uint64_t last = GUEST_RAM_HIGH_BASE + ((high_size - 1) & ~((2ull << 20) - 1));
        for (uint64_t va = GUEST_RAM_HIGH_BASE;; va = last) {
            uint64_t pdpte = rd64(ram + pdpt + (va >> 30) * 8);
            uint64_t pd = pdpte & ~0xfffull;
            FUZZ_CHECK((pdpte & 1) && pd >= cr3 && pd + PAGE <= size, "PDPT entry for 0x%lx = 0x%lx",
                       (unsigned long)va, (unsigned long)pdpte);
            uint64_t pde = rd64(ram + pd + ((va >> 21) & 511) * 8);
            FUZZ_CHECK((pde & 0x83) == 0x83 && (pde & ~0xfffull) == va, "PD entry for 0x%lx = 0x%lx",
                       (unsigned long)va, (unsigned long)pde);
            if (va == last)
                break;
        }
    }
}

static void check_boot(const uint8_t *ram, uint64_t size, const struct guest_boot *b, enum guest_image_kind kind,
                       const uint8_t *image, size_t image_size, const char *cmdline)
{
    FUZZ_CHECK(b->kind == kind, "boot kind %d for a %d load", b->kind, kind);
    check_text("note", b->note, sizeof b->note, true);
    FUZZ_CHECK(b->load_lo >= GUEST_MIN_LOAD && b->load_lo < b->load_hi && b->load_hi <= size,
               "loaded span 0x%lx-0x%lx in 0x%lx bytes of RAM", (unsigned long)b->load_lo, (unsigned long)b->load_hi,
               (unsigned long)size);
    FUZZ_CHECK(b->rip >= b->load_lo && b->rip < b->load_hi, "entry 0x%lx outside the loaded span 0x%lx-0x%lx",
               (unsigned long)b->rip, (unsigned long)b->load_lo, (unsigned long)b->load_hi);
    FUZZ_CHECK(b->rip < GUEST_LOW_MEM_END || b->rip >= GUEST_HIGH_MEM, "entry 0x%lx in the reserved hole",
               (unsigned long)b->rip);
    switch (kind) {
    case GUEST_IMAGE_REAL:
        FUZZ_CHECK(b->mode == GUEST_MODE_REAL16 && b->rip == GUEST_REAL_LOAD && b->rsp == GUEST_REAL_LOAD,
                   "real mode start state");
        FUZZ_CHECK(b->load_lo == GUEST_REAL_LOAD && b->load_hi == GUEST_REAL_LOAD + image_size &&
                       b->load_hi <= GUEST_LOW_MEM_END,
                   "real-mode image at 0x%lx-0x%lx", (unsigned long)b->load_lo, (unsigned long)b->load_hi);
        FUZZ_CHECK(memcmp(ram + GUEST_REAL_LOAD, image, image_size) == 0, "real-mode image not copied as is");
        break;
    case GUEST_IMAGE_MULTIBOOT:
        FUZZ_CHECK(b->mode == GUEST_MODE_PROT32 && b->cs == GUEST_SEL_CODE32 && b->ds == GUEST_SEL_DATA,
                   "protected-mode start state");
        FUZZ_CHECK(b->load_hi <= 1ull << 32, "Multiboot image ends above 4 GiB");
        FUZZ_CHECK(b->rax == MULTIBOOT_BOOTLOADER_MAGIC && b->rsp == b->boot_area, "Multiboot registers");
        check_boot_area(ram, size, b, cmdline, size);
        break;
    case GUEST_IMAGE_ELF64: {
        FUZZ_CHECK(b->mode == GUEST_MODE_LONG64 && b->cs == GUEST_SEL_CODE64, "long-mode start state");
        uint64_t stack_bottom = b->cr3 - GUEST_ELF64_STACK_SIZE;
        FUZZ_CHECK(b->rsp + 8 == b->cr3 && (b->rsp + 8) % 16 == 0, "RSP 0x%lx, CR3 0x%lx", (unsigned long)b->rsp,
                   (unsigned long)b->cr3);
        FUZZ_CHECK(b->load_hi <= stack_bottom, "image (to 0x%lx) overlaps the boot stack at 0x%lx",
                   (unsigned long)b->load_hi, (unsigned long)stack_bottom);
        FUZZ_CHECK(b->rdi == b->info, "ELF64 registers");
        check_elf64_tables(ram, size, b);
        check_boot_area(ram, size, b, cmdline, stack_bottom);
        break;
    }
    default:
        fuzz_fail("load succeeded for kind %d", kind);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!area)
        setup();
    if (size < 4)
        return 0;
    sink_reset();
    unsigned sel = data[0];
    int64_t ram_size = (int64_t)ram_sizes[data[1] % ARRAY_SIZE(ram_sizes)] + (int8_t)data[2] * (int64_t)PAGE;
    if (sel & 8)
        ram_size += sel >> 4;
    if (ram_size < 0)
        ram_size = 0;
    size_t cl = data[3];
    if (size < 4 + cl)
        return 0;
    char *cmdline = NULL;
    if (!(sel & 4)) {
        cmdline = malloc(cl + 1);
        memcpy(cmdline, data + 4, cl);
        cmdline[cl] = 0;
    }
    /* libFuzzer's buffer ends where the input does, so the image ends flush with it. */
    size_t image_size = size - 4 - cl;
    const uint8_t *image = data + 4 + cl;

    uint64_t ram_off = RAM_MAX - (uint64_t)ram_size;
    /* RAM at 4 GiB besides: never written by the loaders (they only map and report
     * it), so any size, up to past what the ELF64 boot tables can cover. */
    high_size = (uint64_t)(data[1] >> 5) * (37ull << 30);
    struct guest_ram ram = {area + ram_off, (uint64_t)ram_size, high_size};
    /* Below RAM: whole pages inaccessible, and ASan guards the part of RAM's first page
     * that is not RAM (for the odd sizes). */
    uint64_t below = ram_off / PAGE * PAGE;
    if (below)
        FUZZ_CHECK(mprotect(area, below, PROT_NONE) == 0, "mprotect");
    ASAN_POISON_MEMORY_REGION(area + below, ram_off - below);

    enum guest_image_kind kind;
    switch (sel & 3) {
    case 0: kind = GUEST_IMAGE_MULTIBOOT; break;
    case 1: kind = GUEST_IMAGE_ELF64; break;
    case 2: kind = GUEST_IMAGE_REAL; break;
    default: kind = guest_image_probe(image_size ? image : NULL, image_size); break;
    }
    FUZZ_CHECK(kind == GUEST_IMAGE_MULTIBOOT || kind == GUEST_IMAGE_ELF64 || kind == GUEST_IMAGE_REAL ||
                   kind == GUEST_IMAGE_UNKNOWN,
               "probe returned %d", kind);

    struct guest_boot boot;
    char err[GUEST_ERR_LEN];
    memset(err, 0x5a, sizeof err);
    int rc = guest_load(kind, &ram, image_size ? image : NULL, image_size, cmdline, &boot, err);
    FUZZ_CHECK(rc == 0 || rc == GUEST_EBADIMAGE || rc == GUEST_ENOFIT || rc == GUEST_EUNSUPPORTED || rc == GUEST_EINVAL,
               "guest_load returned %d", rc);
    static int verbose = -1;
    if (verbose < 0)
        verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose)
        fprintf(stderr, "    | kind %d, RAM 0x%lx: %d %s\n", kind, (unsigned long)ram.size, rc, rc ? err : "loaded");
    if (rc) {
        check_text("error", err, sizeof err, false);
        check_writes(ram_off, ram.size, NULL, 0);
    } else {
        FUZZ_CHECK(ram.size % PAGE == 0, "a load into RAM of 0x%lx bytes (not whole pages) succeeded",
                   (unsigned long)ram.size);
        struct range allowed[3] = {
            {boot.load_lo, boot.load_hi},
            {boot.boot_area, boot.boot_area + GUEST_BOOT_SIZE}, /* the stack page below it stays the guest's */
            {kind == GUEST_IMAGE_ELF64 ? boot.cr3 - GUEST_ELF64_STACK_SIZE : 0, kind == GUEST_IMAGE_ELF64 ? ram.size : 0},
        };
        /* Before anything here reads RAM: a read would map pages too. */
        check_writes(ram_off, ram.size, allowed, kind == GUEST_IMAGE_REAL ? 1 : 3);
        check_boot(ram.hva, ram.size, &boot, kind, image, image_size, cmdline);
    }
    FUZZ_CHECK(sink_lines() == 0, "a loader printed: %s", sink_last());

    ASAN_UNPOISON_MEMORY_REGION(area + below, ram_off - below);
    if (below)
        FUZZ_CHECK(mprotect(area, below, PROT_READ | PROT_WRITE) == 0, "mprotect");
    madvise(area, RAM_MAX, MADV_DONTNEED); /* back to untouched, zeroed RAM */
    free(cmdline);
    return 0;
}
