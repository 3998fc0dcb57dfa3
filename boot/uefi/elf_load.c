/* ELF64 loader for the core image (see elf_load.h). Structure layouts are those of
 * the System V ABI's ELF-64 object file format. */
#include "boot/uefi/elf_load.h"
#include "vmm/lib/string.h"

struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define ET_EXEC 2
#define EM_X86_64 62
#define PT_LOAD 1

static void read_phdr(const void *elf, const struct elf64_ehdr *eh, unsigned i,
                      struct elf64_phdr *ph)
{
    memcpy(ph, (const uint8_t *)elf + eh->phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

static bool check_header(const void *elf, uint64_t size, struct elf64_ehdr *eh, const char **why)
{
    if (size < sizeof(*eh)) {
        *why = "file too small for an ELF header";
        return false;
    }
    memcpy(eh, elf, sizeof(*eh));
    if (memcmp(eh->ident, "\177ELF", 4) != 0) {
        *why = "not an ELF file (bad magic)";
        return false;
    }
    if (eh->ident[4] != ELFCLASS64 || eh->ident[5] != ELFDATA2LSB) {
        *why = "not a little-endian ELF64 file";
        return false;
    }
    if (eh->machine != EM_X86_64 || eh->type != ET_EXEC) {
        *why = "not an x86-64 executable";
        return false;
    }
    if (eh->phentsize != sizeof(struct elf64_phdr) || eh->phnum == 0) {
        *why = "missing or malformed program header table";
        return false;
    }
    if (eh->phoff > size || (uint64_t)eh->phnum * sizeof(struct elf64_phdr) > size - eh->phoff) {
        *why = "program header table runs past the end of the file";
        return false;
    }
    return true;
}

/* Looks for a plausible struct keel_image_header in the file bytes of every segment
 * that lands in the first KEEL_ELF_HEADER_WINDOW bytes of the image. A stray copy of
 * the magic (an immediate in code, say) fails the plausibility checks and is passed. */
static bool find_image_header(const void *elf, const struct elf64_ehdr *eh, uint64_t lo,
                              uint64_t hi, struct keel_elf_image *img)
{
    uint64_t window_end = lo > UINT64_MAX - KEEL_ELF_HEADER_WINDOW ? UINT64_MAX
                                                                    : lo + KEEL_ELF_HEADER_WINDOW;

    for (unsigned i = 0; i < eh->phnum; i++) {
        struct elf64_phdr ph;
        read_phdr(elf, eh, i, &ph);
        /* Same filter as keel_elf_inspect, which bounds-checked exactly these. */
        if (ph.type != PT_LOAD || ph.memsz == 0 || ph.vaddr >= window_end)
            continue;
        uint64_t span = MIN(ph.filesz, window_end - ph.vaddr);
        for (uint64_t off = (8 - ph.vaddr % 8) % 8; off + sizeof(struct keel_image_header) <= span;
             off += 8) {
            struct keel_image_header h;
            memcpy(&h, (const uint8_t *)elf + ph.offset + off, sizeof(h));
            if (h.magic != KEEL_IMAGE_MAGIC)
                continue;
            if (h.image_vbase > lo || h.image_vbase % PAGE_SIZE != 0 || h.image_end < hi ||
                h.image_end - h.image_vbase > KEEL_ELF_MAX_IMAGE || h.entry64 < lo ||
                h.entry64 >= hi)
                continue;
            img->image_vbase = h.image_vbase;
            img->image_end = h.image_end;
            img->entry64 = h.entry64;
            return true;
        }
    }
    return false;
}

bool keel_elf_inspect(const void *elf, uint64_t size, struct keel_elf_image *img, const char **why)
{
    struct elf64_ehdr eh;
    uint64_t lo = UINT64_MAX, hi = 0;

    if (!check_header(elf, size, &eh, why))
        return false;

    for (unsigned i = 0; i < eh.phnum; i++) {
        struct elf64_phdr ph;
        read_phdr(elf, &eh, i, &ph);
        if (ph.type != PT_LOAD || ph.memsz == 0)
            continue;
        if (ph.filesz > ph.memsz) {
            *why = "a PT_LOAD segment has more file bytes than memory bytes";
            return false;
        }
        if (ph.offset > size || ph.filesz > size - ph.offset) {
            *why = "a PT_LOAD segment runs past the end of the file";
            return false;
        }
        if (ph.vaddr > UINT64_MAX - ph.memsz) {
            *why = "a PT_LOAD segment wraps around the address space";
            return false;
        }
        lo = MIN(lo, ph.vaddr);
        hi = MAX(hi, ph.vaddr + ph.memsz);
    }
    if (hi == 0) {
        *why = "no PT_LOAD segments";
        return false;
    }
    if (hi - lo > KEEL_ELF_MAX_IMAGE) {
        *why = "the segments span more than 256 MiB";
        return false;
    }
    if (!find_image_header(elf, &eh, lo, hi, img)) {
        *why = "no valid Keel image header (KEELIMG1) in the first 32 KiB of the image";
        return false;
    }
    return true;
}

void keel_elf_place(const void *elf, const struct keel_elf_image *img, void *dest)
{
    const struct elf64_ehdr *ehp = elf;
    struct elf64_ehdr eh;

    memcpy(&eh, ehp, sizeof(eh));
    memset(dest, 0, img->image_end - img->image_vbase);
    for (unsigned i = 0; i < eh.phnum; i++) {
        struct elf64_phdr ph;
        read_phdr(elf, &eh, i, &ph);
        if (ph.type != PT_LOAD || ph.memsz == 0)
            continue;
        memcpy((uint8_t *)dest + (ph.vaddr - img->image_vbase),
               (const uint8_t *)elf + ph.offset, ph.filesz);
    }
}
