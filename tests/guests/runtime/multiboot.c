#include "guest.h"

/* Bounds on loader-provided sizes, so a corrupt structure cannot send us far. */
#define CMDLINE_MAX 4096u
#define MMAP_MAX_BYTES 65536u
#define MMAP_ENTRY_MIN 20u /* addr + len + type */

static const struct mb_info *info;

void mb_init(uint32_t magic, uint32_t info_gpa)
{
    info = magic == MB_BOOT_MAGIC && info_gpa ? (const struct mb_info *)(uintptr_t)info_gpa
                                              : 0;
}

const struct mb_info *mb_info(void)
{
    return info;
}

const char *mb_cmdline(void)
{
    if (!info || !(info->flags & MB_INFO_CMDLINE) || !info->cmdline)
        return "";
    const char *s = (const char *)(uintptr_t)info->cmdline;
    if (strnlen(s, CMDLINE_MAX) == CMDLINE_MAX) {
        printf("%s multiboot: command line not terminated within %u bytes; ignored\n",
               guest_prefix, CMDLINE_MAX);
        return "";
    }
    return s;
}

bool mb_memory(uint32_t *lower_kib, uint32_t *upper_kib)
{
    if (!info || !(info->flags & MB_INFO_MEMORY))
        return false;
    *lower_kib = info->mem_lower;
    *upper_kib = info->mem_upper;
    return true;
}

int mb_mmap_walk(void (*fn)(const struct mb_mmap_entry *e, void *arg), void *arg)
{
    if (!info || !(info->flags & MB_INFO_MMAP))
        return -1;
    uint32_t len = info->mmap_length;
    if (len > MMAP_MAX_BYTES) {
        printf("%s multiboot: memory map of %u bytes is implausible; using the first %u\n",
               guest_prefix, len, MMAP_MAX_BYTES);
        len = MMAP_MAX_BYTES;
    }
    int count = 0;
    uint32_t off = 0;
    while (off + 4 <= len) {
        const struct mb_mmap_entry *e = (const void *)(uintptr_t)(info->mmap_addr + off);
        if (e->size < MMAP_ENTRY_MIN || e->size > len - off - 4) {
            printf("%s multiboot: bad memory map entry at offset %u (size %u); map cut "
                   "short\n", guest_prefix, off, e->size);
            break;
        }
        fn(e, arg);
        count++;
        off += e->size + 4;
    }
    return count;
}

static void track_end(const struct mb_mmap_entry *e, void *arg)
{
    uint64_t *end = arg;
    if (e->type == MB_MMAP_AVAILABLE && e->len && e->addr + e->len > *end)
        *end = e->addr + e->len;
}

uint64_t mb_ram_end(void)
{
    uint64_t end = 0;
    if (mb_mmap_walk(track_end, &end) > 0 && end)
        return end;
    uint32_t lower, upper;
    if (mb_memory(&lower, &upper))
        return (1ull << 20) + (uint64_t)upper * 1024;
    return 0;
}
