/* Guest image loaders (see guest_image.h). Each loader runs in two phases: validate
 * everything, reading the image only through bounds-checked accessors, then write.
 * Field layouts are those of the Multiboot 0.6.96 specification and the System V
 * ELF specification; images are read byte-wise, so they may sit at any alignment. */
#include "vmm/loaders/guest_image.h"
#include "vmm/loaders/loader_common.h"

/* ELF identification and header values. */
#define EI_CLASS 4
#define EI_DATA 5
#define EI_VERSION 6
#define ELFCLASS32 1
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
#define ET_EXEC 2
#define EM_386 3
#define EM_X86_64 62
#define PT_LOAD 1
#define ELF32_EHDR_SIZE 52
#define ELF64_EHDR_SIZE 64
#define ELF32_PHDR_SIZE 32
#define ELF64_PHDR_SIZE 56
/* More program headers than any kernel has; bounds the pairwise overlap check. */
#define ELF_MAX_PHNUM 256

/* Multiboot header flags. */
#define MB_FLAG_PAGE_ALIGN BIT(0)
#define MB_FLAG_MEMINFO BIT(1)
#define MB_FLAG_VIDEO BIT(2)
#define MB_FLAG_AOUT_KLUDGE BIT(16)
#define MB_REQUIRED_MASK 0xffffu
#define MB_KNOWN_REQUIRED (MB_FLAG_PAGE_ALIGN | MB_FLAG_MEMINFO | MB_FLAG_VIDEO)
#define MB_HEADER_BASE_LEN 12
#define MB_HEADER_AOUT_LEN 32
#define MB_HEADER_VIDEO_LEN 48

/* Multiboot information structure offsets. */
#define MBI_MEM_LOWER 4
#define MBI_MEM_UPPER 8
#define MBI_CMDLINE 16
#define MBI_MMAP_LENGTH 44
#define MBI_MMAP_ADDR 48
#define MBI_LOADER_NAME 64
#define MBI_SIZE 116
#define MMAP_ENTRY_SIZE 24 /* the 4-byte size field (20) included */
#define MMAP_AVAILABLE 1
#define MMAP_RESERVED 2

#define GUEST_MAX_RAM_ELF64 (512ull << 30) /* one PDPT */

STATIC_ASSERT(GUEST_MB_INFO_OFF + MBI_SIZE <= GUEST_MB_MMAP_OFF, "MBI overlaps its memory map");
STATIC_ASSERT(GUEST_MB_MMAP_OFF + 4 * MMAP_ENTRY_SIZE <= GUEST_MB_LOADER_NAME_OFF, "memory map too long");
STATIC_ASSERT(GUEST_MB_CMDLINE_OFF + GUEST_CMDLINE_MAX + 1 <= GUEST_BOOT_SIZE, "command line area too small");
STATIC_ASSERT(GUEST_GDT_OFF + GUEST_GDT_LIMIT + 1 <= GUEST_MB_INFO_OFF, "GDT overlaps the MBI");
STATIC_ASSERT(GUEST_BOOT_AREA - GUEST_BOOT_STACK_SIZE >= GUEST_MIN_LOAD &&
                  GUEST_BOOT_AREA_END <= GUEST_LOW_MEM_END,
              "the preferred boot area must lie in low RAM");

struct image {
    const uint8_t *p;
    size_t size;
};


/* True when [off, off+n) lies inside the image. */
static bool in_image(const struct image *im, uint64_t off, uint64_t n)
{
    return off <= im->size && n <= im->size - off;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
    return a < b + blen && b < a + alen;
}

/* ---- placement rules shared by every protected/long-mode image ---- */

struct layout {
    const char *who;   /* message prefix */
    uint64_t ram_size;
    uint64_t top;      /* loaded bytes must end at or below this */
    uint64_t addr_end; /* size of the image's address space: 2^32, or ~0 for ELF64 */
};

static int check_place(const struct layout *L, uint64_t lo, uint64_t len, const char *what, char *err)
{
    if (lo > L->addr_end || len > L->addr_end - lo)
        return fail(err, GUEST_EBADIMAGE, "%s: %s at 0x%lx, 0x%lx bytes, wraps past the end of the address space",
                    L->who, what, lo, len);
    uint64_t end = lo + len;
    if (lo < GUEST_MIN_LOAD)
        return fail(err, GUEST_ENOFIT, "%s: %s starts at 0x%lx, below 4 KiB", L->who, what, lo);
    if (lo >= L->ram_size || len > L->ram_size - lo)
        return fail(err, GUEST_ENOFIT, "%s: %s (0x%lx-0x%lx) lies outside guest RAM (0x%lx bytes)", L->who, what,
                    lo, end - 1, L->ram_size);
    if (overlaps(lo, len, GUEST_LOW_MEM_END, GUEST_HIGH_MEM - GUEST_LOW_MEM_END))
        return fail(err, GUEST_ENOFIT, "%s: %s (0x%lx-0x%lx) overlaps the reserved range 0x%lx-0x%lx", L->who,
                    what, lo, end - 1, GUEST_LOW_MEM_END, GUEST_HIGH_MEM - 1);
    if (end > L->top)
        return fail(err, GUEST_ENOFIT, "%s: %s (0x%lx-0x%lx) overlaps the boot stack and page tables at 0x%lx-0x%lx",
                    L->who, what, lo, end - 1, L->top, L->ram_size - 1);
    return 0;
}

/* The boot area's base for an image spanning [lo, hi): see guest_image.h. The block
 * (stack page, then the structures) must be RAM below top that neither the image nor
 * the reserved hole touches, with 32-bit addresses for the Multiboot pointers. */
static int place_boot_area(const struct layout *L, gpa_t lo, gpa_t hi, gpa_t *base, char *err)
{
    const uint64_t block = GUEST_BOOT_STACK_SIZE + GUEST_BOOT_SIZE;
    const gpa_t candidates[] = {
        GUEST_BOOT_AREA - GUEST_BOOT_STACK_SIZE,
        GUEST_MIN_LOAD,
        ALIGN_UP(hi, PAGE_SIZE),
        GUEST_HIGH_MEM,
    };
    for (unsigned i = 0; i < ARRAY_SIZE(candidates); i++) {
        gpa_t at = candidates[i];
        if (at < GUEST_MIN_LOAD || at > L->top || block > L->top - at || at + block > (1ull << 32))
            continue;
        if (overlaps(at, block, lo, hi - lo) || overlaps(at, block, GUEST_LOW_MEM_END, GUEST_HIGH_MEM - GUEST_LOW_MEM_END))
            continue;
        *base = at + GUEST_BOOT_STACK_SIZE;
        return 0;
    }
    return fail(err, GUEST_ENOFIT, "%s: no room for the boot information (0x%lx bytes) at 0x7000, 0x1000, 1 MiB or above the image 0x%lx-0x%lx",
                L->who, block, lo, hi - 1);
}

/* ---- ELF ---- */

struct elf {
    bool is64;
    uint64_t entry, phoff;
    uint32_t phentsize, phnum;
};

struct segment {
    uint32_t type;
    uint64_t offset, vaddr, paddr, filesz, memsz;
};

static int elf_parse(const struct image *im, bool want64, struct elf *e, const char *who, char *err)
{
    const uint8_t *p = im->p;
    unsigned ehsize = want64 ? ELF64_EHDR_SIZE : ELF32_EHDR_SIZE;
    if (im->size < 16 || memcmp(p, "\177ELF", 4) != 0)
        return fail(err, GUEST_EBADIMAGE, "%s: not an ELF file", who);
    if (p[EI_CLASS] != (want64 ? ELFCLASS64 : ELFCLASS32))
        return fail(err, GUEST_EUNSUPPORTED, "%s: ELF class %u, but this loader takes only %s files", who,
                    p[EI_CLASS], want64 ? "64-bit (ELFCLASS64)" : "32-bit (ELFCLASS32)");
    if (p[EI_DATA] != ELFDATA2LSB)
        return fail(err, GUEST_EBADIMAGE, "%s: ELF data encoding %u is not little-endian", who, p[EI_DATA]);
    if (p[EI_VERSION] != EV_CURRENT)
        return fail(err, GUEST_EBADIMAGE, "%s: ELF version %u is not 1", who, p[EI_VERSION]);
    if (im->size < ehsize)
        return fail(err, GUEST_EBADIMAGE, "%s: ELF header truncated (file has %zu of %u bytes)", who, im->size,
                    ehsize);
    uint16_t type = le16(p + 16), machine = le16(p + 18);
    if (type != ET_EXEC)
        return fail(err, GUEST_EUNSUPPORTED, "%s: ELF type %u is not an executable (ET_EXEC)", who, type);
    if (machine != (want64 ? EM_X86_64 : EM_386))
        return fail(err, GUEST_EUNSUPPORTED, "%s: ELF machine %u, expected %s", who, machine,
                    want64 ? "x86-64 (62)" : "i386 (3)");
    e->is64 = want64;
    if (want64) {
        e->entry = le64(p + 24);
        e->phoff = le64(p + 32);
        e->phentsize = le16(p + 54);
        e->phnum = le16(p + 56);
    } else {
        e->entry = le32(p + 24);
        e->phoff = le32(p + 28);
        e->phentsize = le16(p + 42);
        e->phnum = le16(p + 44);
    }
    unsigned phsize = want64 ? ELF64_PHDR_SIZE : ELF32_PHDR_SIZE;
    if (e->phnum == 0)
        return fail(err, GUEST_EBADIMAGE, "%s: ELF file has no program headers", who);
    if (e->phnum > ELF_MAX_PHNUM)
        return fail(err, GUEST_EBADIMAGE, "%s: %u program headers (at most %u accepted)", who, e->phnum,
                    ELF_MAX_PHNUM);
    if (e->phentsize < phsize)
        return fail(err, GUEST_EBADIMAGE, "%s: program header entry size %u, at least %u expected", who,
                    e->phentsize, phsize);
    if (!in_image(im, e->phoff, (uint64_t)e->phnum * e->phentsize))
        return fail(err, GUEST_EBADIMAGE, "%s: program headers (offset 0x%lx, %u x %u bytes) run past the end of the file (%zu bytes)",
                    who, e->phoff, e->phnum, e->phentsize, im->size);
    return 0;
}

/* Reads program header i; elf_parse has checked that the table lies in the image. */
static void elf_segment(const struct image *im, const struct elf *e, uint32_t i, struct segment *s)
{
    const uint8_t *ph = im->p + e->phoff + (uint64_t)i * e->phentsize;
    s->type = le32(ph);
    if (e->is64) {
        s->offset = le64(ph + 8);
        s->vaddr = le64(ph + 16);
        s->paddr = le64(ph + 24);
        s->filesz = le64(ph + 32);
        s->memsz = le64(ph + 40);
    } else {
        s->offset = le32(ph + 4);
        s->vaddr = le32(ph + 8);
        s->paddr = le32(ph + 12);
        s->filesz = le32(ph + 16);
        s->memsz = le32(ph + 20);
    }
}

static bool loadable(const struct segment *s)
{
    return s->type == PT_LOAD && s->memsz;
}

/* Checks every PT_LOAD segment and the entry point; returns the entry as a
 * guest-physical address and the span the segments cover. */
static int elf_check(const struct image *im, const struct elf *e, const struct layout *L, gpa_t *entry,
                     gpa_t *lo, gpa_t *hi, char *err)
{
    unsigned count = 0;
    *lo = ~0ull;
    *hi = 0;
    for (uint32_t i = 0; i < e->phnum; i++) {
        struct segment s;
        char what[24];
        elf_segment(im, e, i, &s);
        if (s.type != PT_LOAD)
            continue;
        if (s.filesz > s.memsz)
            return fail(err, GUEST_EBADIMAGE, "%s: segment %u: file size 0x%lx exceeds memory size 0x%lx", L->who,
                        i, s.filesz, s.memsz);
        if (!s.memsz)
            continue;
        if (!in_image(im, s.offset, s.filesz))
            return fail(err, GUEST_EBADIMAGE, "%s: segment %u: file bytes 0x%lx+0x%lx run past the end of the file (0x%zx bytes)",
                        L->who, i, s.offset, s.filesz, im->size);
        ksnprintf(what, sizeof what, "segment %u", i);
        int rc = check_place(L, s.paddr, s.memsz, what, err);
        if (rc)
            return rc;
        for (uint32_t j = 0; j < i; j++) {
            struct segment o;
            elf_segment(im, e, j, &o);
            if (loadable(&o) && overlaps(s.paddr, s.memsz, o.paddr, o.memsz))
                return fail(err, GUEST_EBADIMAGE, "%s: segments %u (0x%lx-0x%lx) and %u (0x%lx-0x%lx) overlap", L->who,
                            j, o.paddr, o.paddr + o.memsz - 1, i, s.paddr, s.paddr + s.memsz - 1);
        }
        count++;
        *lo = MIN(*lo, s.paddr);
        *hi = MAX(*hi, s.paddr + s.memsz);
    }
    if (!count)
        return fail(err, GUEST_EBADIMAGE, "%s: no loadable (PT_LOAD) segment", L->who);

    /* e_entry is a virtual address; like GRUB, translate it through the segment whose
     * virtual range holds it, else take it as physical. Either way it must point at
     * bytes that come from the file. */
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < e->phnum; i++) {
            struct segment s;
            elf_segment(im, e, i, &s);
            uint64_t base = pass ? s.paddr : s.vaddr;
            if (loadable(&s) && e->entry >= base && e->entry - base < s.filesz) {
                *entry = s.paddr + (e->entry - base);
                return 0;
            }
        }
    }
    return fail(err, GUEST_EBADIMAGE, "%s: entry point 0x%lx is not inside the file bytes of any loaded segment",
                L->who, e->entry);
}

static void elf_load(const struct guest_ram *ram, const struct image *im, const struct elf *e)
{
    for (uint32_t i = 0; i < e->phnum; i++) {
        struct segment s;
        elf_segment(im, e, i, &s);
        if (!loadable(&s))
            continue;
        memcpy(ram->hva + s.paddr, im->p + s.offset, s.filesz);
        memset(ram->hva + s.paddr + s.filesz, 0, s.memsz - s.filesz);
    }
}

/* ---- boot information (GDT + Multiboot information structure) ---- */

static void put_mmap(uint8_t **m, uint64_t base, uint64_t len, uint32_t type)
{
    put32(*m, MMAP_ENTRY_SIZE - 4);
    put64(*m + 4, base);
    put64(*m + 12, len);
    put32(*m + 20, type);
    *m += MMAP_ENTRY_SIZE;
}

/* Fills the boot area at base. RAM from usable_top to its end is reported reserved. */
static void build_boot_area(const struct guest_ram *ram, gpa_t base, const char *cmdline, uint64_t usable_top)
{
    uint8_t *b = ram->hva + base;
    memset(b, 0, GUEST_BOOT_SIZE);

    put64(b + GUEST_GDT_OFF + GUEST_SEL_CODE32, GDT_CODE32);
    put64(b + GUEST_GDT_OFF + GUEST_SEL_DATA, GDT_DATA);
    put64(b + GUEST_GDT_OFF + GUEST_SEL_CODE64, GDT_CODE64);

    /* The hole is what a PC's firmware keeps (EBDA, VGA, option ROMs, the BIOS area where
     * the RSDP scan looks), so the map agrees with the guest's ACPI tables there. */
    uint8_t *m = b + GUEST_MB_MMAP_OFF;
    put_mmap(&m, 0, GUEST_LOW_MEM_END, MMAP_AVAILABLE);
    put_mmap(&m, GUEST_LOW_MEM_END, GUEST_HIGH_MEM - GUEST_LOW_MEM_END, MMAP_RESERVED);
    put_mmap(&m, GUEST_HIGH_MEM, usable_top - GUEST_HIGH_MEM, MMAP_AVAILABLE);
    if (usable_top < ram->size)
        put_mmap(&m, usable_top, ram->size - usable_top, MMAP_RESERVED);
    if (ram->high_size)
        put_mmap(&m, GUEST_RAM_HIGH_BASE, ram->high_size, MMAP_AVAILABLE);

    memcpy(b + GUEST_MB_LOADER_NAME_OFF, "Keel", 5);

    uint8_t *mbi = b + GUEST_MB_INFO_OFF;
    uint32_t flags = MBI_FLAG_MEM | MBI_FLAG_MMAP | MBI_FLAG_LOADER_NAME;
    if (cmdline) {
        memcpy(b + GUEST_MB_CMDLINE_OFF, cmdline, strlen(cmdline) + 1);
        put32(mbi + MBI_CMDLINE, (uint32_t)(base + GUEST_MB_CMDLINE_OFF));
        flags |= MBI_FLAG_CMDLINE;
    }
    put32(mbi, flags);
    put32(mbi + MBI_MEM_LOWER, GUEST_LOW_MEM_END / 1024);
    put32(mbi + MBI_MEM_UPPER, (uint32_t)MIN((usable_top - GUEST_HIGH_MEM) / 1024, 0xffffffffull));
    put32(mbi + MBI_MMAP_LENGTH, (uint32_t)(m - (b + GUEST_MB_MMAP_OFF)));
    put32(mbi + MBI_MMAP_ADDR, (uint32_t)(base + GUEST_MB_MMAP_OFF));
    put32(mbi + MBI_LOADER_NAME, (uint32_t)(base + GUEST_MB_LOADER_NAME_OFF));
}

static int check_ram(const struct guest_ram *ram, uint64_t min, const char *cmdline, const char *who, char *err)
{
    if (!ram || !ram->hva)
        return fail(err, GUEST_EINVAL, "%s: no guest RAM", who);
    if (ram->size % PAGE_SIZE || ram->high_size % PAGE_SIZE)
        return fail(err, GUEST_EINVAL, "%s: guest RAM size 0x%lx + 0x%lx is not a multiple of 4 KiB", who, ram->size,
                    ram->high_size);
    if (ram->size < min)
        return fail(err, GUEST_EINVAL, "%s: guest RAM of 0x%lx bytes is too small (at least 0x%lx needed)", who,
                    ram->size, min);
    if (cmdline && strnlen(cmdline, GUEST_CMDLINE_MAX + 1) > GUEST_CMDLINE_MAX)
        return fail(err, GUEST_EINVAL, "%s: command line longer than %u characters", who, GUEST_CMDLINE_MAX);
    return 0;
}

static void boot_common(struct guest_boot *b, enum guest_image_kind kind, gpa_t base, gpa_t lo, gpa_t hi)
{
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->ds = GUEST_SEL_DATA;
    b->boot_area = base;
    b->gdt_base = base + GUEST_GDT_OFF;
    b->gdt_limit = GUEST_GDT_LIMIT;
    b->info = base + GUEST_MB_INFO_OFF;
    b->rax = MULTIBOOT_BOOTLOADER_MAGIC;
    b->rbx = b->info;
    b->load_lo = lo;
    b->load_hi = hi;
}

/* ---- Multiboot ---- */

struct mb_header {
    uint64_t off; /* in the file */
    uint32_t flags;
    uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
    uint32_t mode_type, width, height, depth;
};

static int mb_find(const struct image *im, struct mb_header *h, char *err)
{
    const char *who = "multiboot";
    uint64_t limit = MIN((uint64_t)im->size, MULTIBOOT_SEARCH_LIMIT);
    bool bad_sum = false;
    uint64_t bad_off = 0;
    uint32_t bad_total = 0;
    for (uint64_t off = 0; off + 4 <= limit; off += 4) {
        if (le32(im->p + off) != MULTIBOOT_HEADER_MAGIC)
            continue;
        if (!in_image(im, off, MB_HEADER_BASE_LEN))
            return fail(err, GUEST_EBADIMAGE, "%s: header at offset 0x%lx is cut off by the end of the file (%zu bytes)",
                        who, off, im->size);
        uint32_t flags = le32(im->p + off + 4);
        uint32_t total = MULTIBOOT_HEADER_MAGIC + flags + le32(im->p + off + 8);
        if (total != 0) {
            if (!bad_sum) {
                bad_sum = true;
                bad_off = off;
                bad_total = total;
            }
            continue;
        }
        unsigned len = MB_HEADER_BASE_LEN;
        if (flags & MB_FLAG_AOUT_KLUDGE)
            len = MB_HEADER_AOUT_LEN;
        if (flags & MB_FLAG_VIDEO)
            len = MB_HEADER_VIDEO_LEN;
        if (!in_image(im, off, len))
            return fail(err, GUEST_EBADIMAGE, "%s: header at offset 0x%lx needs %u bytes (flags 0x%x) but the file ends at 0x%zx",
                        who, off, len, flags, im->size);
        if (off + len > MULTIBOOT_SEARCH_LIMIT)
            return fail(err, GUEST_EBADIMAGE, "%s: header at offset 0x%lx (%u bytes) is not wholly inside the first 8192 bytes",
                        who, off, len);
        const uint8_t *p = im->p + off;
        h->off = off;
        h->flags = flags;
        if (len >= MB_HEADER_AOUT_LEN) {
            h->header_addr = le32(p + 12);
            h->load_addr = le32(p + 16);
            h->load_end_addr = le32(p + 20);
            h->bss_end_addr = le32(p + 24);
            h->entry_addr = le32(p + 28);
        }
        if (len >= MB_HEADER_VIDEO_LEN) {
            h->mode_type = le32(p + 32);
            h->width = le32(p + 36);
            h->height = le32(p + 40);
            h->depth = le32(p + 44);
        }
        return 0;
    }
    if (bad_sum)
        return fail(err, GUEST_EBADIMAGE, "%s: header at offset 0x%lx has a bad checksum (magic + flags + checksum = 0x%x, must be 0)",
                    who, bad_off, bad_total);
    return fail(err, GUEST_EBADIMAGE, "%s: no Multiboot header (magic 0x%x, 4-byte aligned) in the first 8192 bytes", who,
                MULTIBOOT_HEADER_MAGIC);
}

/* The a.out kludge: the header says where the file goes. Returns the file offset of
 * the first byte loaded and the extent in guest memory. */
/* Multiboot's video fields: mode type 0 linear graphics, 1 EGA text; a 0 width,
 * height or depth means "no preference", so it is printed as such, not as a number. */
static void video_note(char *note, size_t size, const struct mb_header *h)
{
    char w[12] = "any", ht[12] = "any", d[12] = "any", kind[32];
    if (h->width)
        ksnprintf(w, sizeof w, "%u", h->width);
    if (h->height)
        ksnprintf(ht, sizeof ht, "%u", h->height);
    if (h->depth)
        ksnprintf(d, sizeof d, "%u", h->depth);
    if (h->mode_type <= 1)
        kstrlcpy(kind, h->mode_type ? "an EGA text mode" : "a linear graphics mode", sizeof kind);
    else
        ksnprintf(kind, sizeof kind, "video mode type %u", h->mode_type);
    ksnprintf(note, size, "multiboot: the kernel asks for %s (width %s, height %s, depth %s); Keel offers only VGA text mode",
              kind, w, ht, d);
}

static int mb_check_kludge(const struct image *im, const struct mb_header *h, const struct layout *L,
                           uint64_t *file_start, uint64_t *load_len, uint64_t *mem_len, char *err)
{
    const char *who = L->who;
    if (h->load_addr > h->header_addr)
        return fail(err, GUEST_EBADIMAGE, "%s: load_addr 0x%x is above header_addr 0x%x", who, h->load_addr,
                    h->header_addr);
    uint64_t head = h->header_addr - h->load_addr;
    if (head > h->off)
        return fail(err, GUEST_EBADIMAGE, "%s: header_addr - load_addr = 0x%lx exceeds the header's file offset 0x%lx",
                    who, head, h->off);
    *file_start = h->off - head;
    uint64_t avail = im->size - *file_start;
    if (h->load_end_addr) {
        if (h->load_end_addr <= h->load_addr)
            return fail(err, GUEST_EBADIMAGE, "%s: load_end_addr 0x%x is not above load_addr 0x%x", who,
                        h->load_end_addr, h->load_addr);
        *load_len = (uint64_t)h->load_end_addr - h->load_addr;
        if (*load_len > avail)
            return fail(err, GUEST_EBADIMAGE, "%s: load_end_addr 0x%x asks for 0x%lx bytes from file offset 0x%lx; the file has 0x%lx",
                        who, h->load_end_addr, *load_len, *file_start, avail);
    } else {
        *load_len = avail;
    }
    uint64_t load_end = h->load_addr + *load_len;
    unsigned hlen = h->flags & MB_FLAG_VIDEO ? MB_HEADER_VIDEO_LEN : MB_HEADER_AOUT_LEN;
    if ((uint64_t)h->header_addr + hlen > load_end)
        return fail(err, GUEST_EBADIMAGE, "%s: the header (0x%x) is not inside the loaded bytes 0x%x-0x%lx", who,
                    h->header_addr, h->load_addr, load_end - 1);
    *mem_len = *load_len;
    if (h->bss_end_addr) {
        if (h->bss_end_addr < load_end)
            return fail(err, GUEST_EBADIMAGE, "%s: bss_end_addr 0x%x is below the end of the loaded bytes 0x%lx", who,
                        h->bss_end_addr, load_end);
        *mem_len = (uint64_t)h->bss_end_addr - h->load_addr;
    }
    if (h->entry_addr < h->load_addr || h->entry_addr >= load_end)
        return fail(err, GUEST_EBADIMAGE, "%s: entry_addr 0x%x is outside the loaded bytes 0x%x-0x%lx", who,
                    h->entry_addr, h->load_addr, load_end - 1);
    return check_place(L, h->load_addr, *mem_len, "the image", err);
}

int guest_load_multiboot(const struct guest_ram *ram, const void *image, size_t size, const char *cmdline,
                         struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    char scratch[GUEST_ERR_LEN];
    if (!err)
        err = scratch;
    err[0] = 0;
    int rc = check_ram(ram, GUEST_MIN_RAM, cmdline, "multiboot", err);
    if (rc)
        return rc;
    struct image im = {image, image ? size : 0};
    struct mb_header h = {0};
    rc = mb_find(&im, &h, err);
    if (rc)
        return rc;
    uint32_t unknown = h.flags & MB_REQUIRED_MASK & ~MB_KNOWN_REQUIRED;
    if (unknown)
        return fail(err, GUEST_EUNSUPPORTED, "multiboot: the kernel requires features Keel does not offer (header flags 0x%x, unknown required bits 0x%x)",
                    h.flags, unknown);

    struct layout L = {"multiboot", ram->size, ram->size, 1ull << 32};
    struct elf e;
    gpa_t entry, lo, hi;
    uint64_t file_start = 0, load_len = 0, mem_len = 0;
    bool kludge = h.flags & MB_FLAG_AOUT_KLUDGE;
    if (kludge) {
        rc = mb_check_kludge(&im, &h, &L, &file_start, &load_len, &mem_len, err);
        entry = h.entry_addr;
        lo = h.load_addr;
        hi = lo + mem_len;
    } else {
        rc = elf_parse(&im, false, &e, "multiboot", err);
        if (!rc)
            rc = elf_check(&im, &e, &L, &entry, &lo, &hi, err);
    }
    gpa_t base = 0;
    if (!rc)
        rc = place_boot_area(&L, lo, hi, &base, err);
    if (rc)
        return rc;

    /* Everything checked: from here on nothing fails. */
    if (kludge) {
        memcpy(ram->hva + h.load_addr, im.p + file_start, load_len);
        memset(ram->hva + h.load_addr + load_len, 0, mem_len - load_len);
    } else {
        elf_load(ram, &im, &e);
    }
    build_boot_area(ram, base, cmdline, ram->size);

    boot_common(out, GUEST_IMAGE_MULTIBOOT, base, lo, hi);
    out->mode = GUEST_MODE_PROT32;
    out->rip = entry;
    out->rsp = base; /* Multiboot leaves ESP undefined: the scratch stack page below the boot area */
    out->cs = GUEST_SEL_CODE32;
    out->cr0 = CR0_PE | CR0_ET;
    if (h.flags & MB_FLAG_VIDEO)
        video_note(out->note, sizeof out->note, &h);
    return 0;
}

/* ---- ELF64 ---- */

int guest_load_elf64(const struct guest_ram *ram, const void *image, size_t size, const char *cmdline,
                     struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    char scratch[GUEST_ERR_LEN];
    if (!err)
        err = scratch;
    err[0] = 0;
    int rc = check_ram(ram, GUEST_MIN_RAM, cmdline, "elf64", err);
    if (rc)
        return rc;
    /* Identity map of all RAM in 2 MiB pages: PML4, one PDPT, one PD per GiB. With RAM
     * at 4 GiB that is everything up to its end, the device area between included
     * (where the guest finds its APICs). */
    uint64_t map_size = ram->high_size ? GUEST_RAM_HIGH_BASE + ALIGN_UP(ram->high_size, LARGE_PAGE_SIZE)
                                       : ALIGN_UP(ram->size, LARGE_PAGE_SIZE);
    if (map_size > GUEST_MAX_RAM_ELF64)
        return fail(err, GUEST_EINVAL, "elf64: guest RAM up to 0x%lx is more than the 512 GiB the boot page tables cover",
                    map_size);
    uint64_t pds = ALIGN_UP(map_size, HUGE_PAGE_SIZE) / HUGE_PAGE_SIZE;
    /* Up to 258 pages with RAM at 4 GiB: they and the stack must leave room for the
     * image above 1 MiB in the RAM below 4 GiB (memory_below_4g may make it small). */
    if ((2 + pds) * PAGE_SIZE + GUEST_ELF64_STACK_SIZE > ram->size - GUEST_HIGH_MEM)
        return fail(err, GUEST_ENOFIT,
                    "elf64: the boot page tables for RAM up to 0x%lx (%lu KiB) and the stack do not fit in the 0x%lx "
                    "bytes below 4 GiB",
                    map_size, (uint64_t)((2 + pds) * PAGE_SIZE / 1024), ram->size);
    gpa_t tables = ram->size - (2 + pds) * PAGE_SIZE;
    gpa_t stack_top = tables;
    gpa_t stack_bottom = stack_top - GUEST_ELF64_STACK_SIZE;

    struct image im = {image, image ? size : 0};
    struct layout L = {"elf64", ram->size, stack_bottom, ~0ull};
    struct elf e;
    gpa_t entry, lo, hi;
    gpa_t base = 0;
    rc = elf_parse(&im, true, &e, "elf64", err);
    if (!rc)
        rc = elf_check(&im, &e, &L, &entry, &lo, &hi, err);
    if (!rc)
        rc = place_boot_area(&L, lo, hi, &base, err);
    if (rc)
        return rc;

    elf_load(ram, &im, &e);
    build_boot_area(ram, base, cmdline, stack_bottom);

    uint8_t *t = ram->hva + tables;
    memset(t, 0, (2 + pds) * PAGE_SIZE);
    put64(t, (tables + PAGE_SIZE) | PTE_PRESENT | PTE_WRITE);
    for (uint64_t i = 0; i < pds; i++)
        put64(t + PAGE_SIZE + i * 8, (tables + (2 + i) * PAGE_SIZE) | PTE_PRESENT | PTE_WRITE);
    for (uint64_t i = 0; i < map_size / LARGE_PAGE_SIZE; i++)
        put64(t + 2 * PAGE_SIZE + i * 8, i * LARGE_PAGE_SIZE | PTE_PRESENT | PTE_WRITE | PTE_LARGE);
    /* As if the entry had been called: RSP+8 16-byte aligned, a zero return address. */
    put64(ram->hva + stack_top - 8, 0);

    boot_common(out, GUEST_IMAGE_ELF64, base, lo, hi);
    out->mode = GUEST_MODE_LONG64;
    out->rip = entry;
    out->rsp = stack_top - 8;
    out->rdi = out->info;
    out->cs = GUEST_SEL_CODE64;
    out->cr0 = CR0_PE | CR0_ET | CR0_PG;
    out->cr3 = tables;
    out->cr4 = CR4_PAE;
    out->efer = EFER_LME | EFER_LMA;
    return 0;
}

/* ---- real mode ---- */

int guest_load_real(const struct guest_ram *ram, const void *image, size_t size, struct guest_boot *out,
                    char err[GUEST_ERR_LEN])
{
    char scratch[GUEST_ERR_LEN];
    if (!err)
        err = scratch;
    err[0] = 0;
    int rc = check_ram(ram, PAGE_SIZE, NULL, "real", err);
    if (rc)
        return rc;
    if (!image || size == 0)
        return fail(err, GUEST_EBADIMAGE, "real: the image is empty");
    if (size > GUEST_REAL_MAX)
        return fail(err, GUEST_ENOFIT, "real: image of 0x%zx bytes exceeds the 0x%lx bytes between 0x%lx and 0x%lx", size,
                    GUEST_REAL_MAX, GUEST_REAL_LOAD, GUEST_LOW_MEM_END);
    if (GUEST_REAL_LOAD + size > ram->size)
        return fail(err, GUEST_EINVAL, "real: guest RAM of 0x%lx bytes cannot hold the image at 0x%lx-0x%lx", ram->size,
                    GUEST_REAL_LOAD, GUEST_REAL_LOAD + size - 1);
    memcpy(ram->hva + GUEST_REAL_LOAD, image, size);

    memset(out, 0, sizeof *out);
    out->kind = GUEST_IMAGE_REAL;
    out->mode = GUEST_MODE_REAL16;
    out->rip = GUEST_REAL_LOAD;
    out->rsp = GUEST_REAL_LOAD;
    out->cr0 = CR0_ET;
    out->load_lo = GUEST_REAL_LOAD;
    out->load_hi = GUEST_REAL_LOAD + size;
    return 0;
}

/* ---- dispatch ---- */

enum guest_image_kind guest_image_probe(const void *image, size_t size)
{
    char err[GUEST_ERR_LEN];
    struct image im = {image, image ? size : 0};
    struct mb_header h;
    if (mb_find(&im, &h, err) == 0)
        return GUEST_IMAGE_MULTIBOOT;
    if (im.size >= ELF64_EHDR_SIZE && memcmp(im.p, "\177ELF", 4) == 0 && im.p[EI_CLASS] == ELFCLASS64)
        return GUEST_IMAGE_ELF64;
    return GUEST_IMAGE_UNKNOWN;
}

int guest_load(enum guest_image_kind kind, const struct guest_ram *ram, const void *image, size_t size,
               const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    switch (kind) {
    case GUEST_IMAGE_MULTIBOOT:
        return guest_load_multiboot(ram, image, size, cmdline, out, err);
    case GUEST_IMAGE_ELF64:
        return guest_load_elf64(ram, image, size, cmdline, out, err);
    case GUEST_IMAGE_REAL:
        return guest_load_real(ram, image, size, out, err);
    default:
        if (err)
            ksnprintf(err, GUEST_ERR_LEN, "guest image: unknown kind %d", (int)kind);
        return GUEST_EINVAL;
    }
}
