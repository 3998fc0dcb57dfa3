/* Turns GRUB's Multiboot2 information tags into Keel's struct bootinfo. Everything is
 * copied out, so the information block may be overwritten once this returns. The tag
 * parser is host-tested; the entry (which reads BIOS memory) is not built there. */
#include "boot/bootinfo.h"
#include "boot/multiboot2/mb2_info.h"
#include "vmm/lib/config.h"
#include "vmm/lib/string.h"

STATIC_ASSERT(BOOTINFO_MAX_MODULES >= MAX_VMS + 1, "every VM's image and keel.cfg must fit");

#define MB2_TAG_END 0
#define MB2_TAG_CMDLINE 1
#define MB2_TAG_LOADER_NAME 2
#define MB2_TAG_MODULE 3
#define MB2_TAG_MMAP 6
#define MB2_TAG_FRAMEBUFFER 8
#define MB2_TAG_ACPI_OLD 14
#define MB2_TAG_ACPI_NEW 15

#define KERNEL_VBASE 0xFFFFFFFF80000000ull

struct mb2_tag {
    uint32_t type;
    uint32_t size;
} PACKED;

struct mb2_mmap_entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;
    uint32_t reserved;
} PACKED;

/* GRUB hands over a copy of the RSDP inside the tag, not its address, and the tag
 * memory is reusable: keep the copy in the image. */
static uint8_t rsdp_copy[64] ALIGNED(16);

static uint32_t mb2_mem_type(uint32_t t)
{
    switch (t) {
    case 1: return MEM_USABLE;
    case 3: return MEM_ACPI_RECLAIMABLE;
    case 4: return MEM_ACPI_NVS;
    case 5: return MEM_UNUSABLE;
    default: return MEM_RESERVED;
    }
}

static hpa_t image_pa(const void *va)
{
    return (hpa_t)(uintptr_t)va - KERNEL_VBASE;
}

static void add_region(struct bootinfo *bi, uint64_t base, uint64_t len, uint32_t type)
{
    if (bi->mem_count >= BOOTINFO_MAX_MEM || !len)
        return;
    /* Insertion keeps the list sorted; BIOS maps are short. */
    uint32_t i = bi->mem_count++;
    while (i && bi->mem[i - 1].base > base) {
        bi->mem[i] = bi->mem[i - 1];
        i--;
    }
    bi->mem[i] = (struct mem_region){.base = base, .length = len, .type = type};
}

#ifndef KEEL_HOST_TEST
static bool rsdp_at(hpa_t pa)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)pa;
    if (memcmp(p, "RSD PTR ", 8))
        return false;
    uint8_t sum = 0;
    for (int i = 0; i < 20; i++)
        sum += p[i];
    return sum == 0;
}

/* Old loaders give no ACPI tag: search the EBDA's first KiB and the BIOS area, as the
 * ACPI specification describes for legacy systems. */
static hpa_t find_rsdp_legacy(void)
{
    /* The BIOS data area word at 0x40e holds the EBDA segment. Hide the constant
     * address from the compiler, which otherwise treats it as a NULL-based array. */
    uintptr_t bda = 0x40e;
    __asm__("" : "+r"(bda));
    hpa_t ebda = (hpa_t)(*(volatile uint16_t *)bda) << 4;
    if (ebda >= 0x80000 && ebda < 0xa0000)
        for (hpa_t a = ebda; a < ebda + 1024; a += 16)
            if (rsdp_at(a))
                return a;
    for (hpa_t a = 0xe0000; a < 0x100000; a += 16)
        if (rsdp_at(a))
            return a;
    return 0;
}
#endif

static void copy_string(char *dst, size_t size, const struct mb2_tag *tag, size_t offset)
{
    size_t avail = tag->size > offset ? tag->size - offset : 0;
    const char *src = (const char *)tag + offset;
    size_t n = strnlen(src, avail);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* A module whose name is "keel.cfg" (or ends in "/keel.cfg") is Keel's configuration. */
static bool is_config_name(const char *name)
{
    size_t len = strlen(name);
    return !strcmp(name, "keel.cfg") || (len > 9 && !strcmp(name + len - 9, "/keel.cfg"));
}

void mb2_parse_tags(struct bootinfo *bi, uintptr_t info)
{
    uint32_t total = *(volatile uint32_t *)info;
    uintptr_t end = info + total;
    for (uintptr_t p = info + 8; p + sizeof(struct mb2_tag) <= end;) {
        const struct mb2_tag *tag = (const struct mb2_tag *)p;
        if (tag->type == MB2_TAG_END || tag->size < sizeof(*tag) || p + tag->size > end)
            break;
        switch (tag->type) {
        case MB2_TAG_CMDLINE:
            copy_string(bi->cmdline, sizeof(bi->cmdline), tag, 8);
            break;
        case MB2_TAG_LOADER_NAME:
            copy_string(bi->loader_name, sizeof(bi->loader_name), tag, 8);
            break;
        case MB2_TAG_MODULE: {
            if (tag->size < 16)
                break;
            const uint32_t *m = (const uint32_t *)(tag + 1);
            if (m[1] < m[0])
                break;
            struct boot_module mod = {.base = m[0], .size = m[1] - m[0]};
            copy_string(mod.name, sizeof(mod.name), tag, 16);
            /* The configuration is found even past the module limit: without it
             * Keel would run the defaults and blame every VM's image. */
            if (is_config_name(mod.name)) {
                bi->config = mod.base;
                bi->config_len = mod.size;
            }
            if (bi->module_count < BOOTINFO_MAX_MODULES)
                bi->modules[bi->module_count++] = mod;
            else
                bi->modules_dropped++;
            break;
        }
        case MB2_TAG_MMAP: {
            const uint32_t *hdr = (const uint32_t *)(tag + 1);
            uint32_t esize = hdr[0];
            if (esize < sizeof(struct mb2_mmap_entry))
                break;
            for (uintptr_t e = p + 16; e + esize <= p + tag->size; e += esize) {
                const struct mb2_mmap_entry *me = (const struct mb2_mmap_entry *)e;
                add_region(bi, me->base, me->length, mb2_mem_type(me->type));
            }
            break;
        }
        case MB2_TAG_FRAMEBUFFER: {
            if (tag->size < 8 + 8 + 4 + 4 + 4 + 1)
                break;
            const uint8_t *f = (const uint8_t *)(tag + 1);
            bi->has_framebuffer = true;
            memcpy(&bi->fb.base, f, 8);
            memcpy(&bi->fb.pitch, f + 8, 4);
            memcpy(&bi->fb.width, f + 12, 4);
            memcpy(&bi->fb.height, f + 16, 4);
            bi->fb.bpp = f[20];
            break;
        }
        case MB2_TAG_ACPI_OLD:
        case MB2_TAG_ACPI_NEW: {
            size_t n = tag->size - 8;
            /* Prefer the ACPI 2.0 copy when both are present. */
            if (n > sizeof(rsdp_copy) || (bi->rsdp && tag->type == MB2_TAG_ACPI_OLD))
                break;
            memcpy(rsdp_copy, tag + 1, n);
            bi->rsdp = image_pa(rsdp_copy);
            break;
        }
        }
        p += ALIGN_UP(tag->size, 8);
    }
}

#ifndef KEEL_HOST_TEST
extern char __image_start[], __image_end[];
static struct bootinfo mb2_bootinfo;

/* Called from entry32.asm in 64-bit mode on the boot stack. */
NORETURN void mb2_boot(uint32_t magic, uint32_t info);
NORETURN void mb2_boot(uint32_t magic, uint32_t info)
{
    (void)magic; /* checked by the assembly entry */
    struct bootinfo *bi = &mb2_bootinfo;
    bi->magic = BOOTINFO_MAGIC;
    bi->version = BOOTINFO_VERSION;
    bi->source = BOOT_SOURCE_MULTIBOOT2;
    bi->kernel_phys_base = image_pa(__image_start);
    bi->kernel_size = (uint64_t)(__image_end - __image_start);
    kstrlcpy(bi->loader_name, "multiboot2", sizeof(bi->loader_name));

    mb2_parse_tags(bi, info);
    if (!bi->rsdp)
        bi->rsdp = find_rsdp_legacy();

    keel_entry64(bi);
    for (;;)
        __asm__ volatile("cli; hlt");
}
#endif
