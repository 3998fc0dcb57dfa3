/* hello: the smallest useful guest. Proves the Multiboot hand-off (magic, command line,
 * memory information) and the UART path. */
#include "guest.h"

const char guest_prefix[] = "hello:";

static void print_entry(const struct mb_mmap_entry *e, void *arg)
{
    (void)arg;
    printf("hello: mmap 0x%08llx-0x%08llx type %u\n", e->addr, e->addr + e->len - 1, e->type);
}

int main(uint32_t magic, uint32_t info_gpa)
{
    const char *args = cmdline_args();
    printf("hello: Hello from %s\n", *args ? args : "(no command line)");
    if (magic != MB_BOOT_MAGIC) {
        printf("hello: FAIL: EAX=0x%08x at entry, want 0x%08x\n", magic, MB_BOOT_MAGIC);
        return GUEST_EXIT_BAD_BOOT;
    }
    printf("hello: magic 0x%08x ok, info at 0x%x\n", magic, info_gpa);
    printf("hello: cmdline \"%s\"\n", mb_cmdline());

    uint32_t lower, upper;
    if (!mb_memory(&lower, &upper)) {
        printf("hello: FAIL: no memory information (flags 0x%x)\n", mb_info()->flags);
        return GUEST_EXIT_FAIL;
    }
    printf("hello: mem_lower=%u KiB mem_upper=%u KiB\n", lower, upper);
    if (mb_mmap_walk(print_entry, NULL) < 0)
        printf("hello: no memory map\n");
    printf("hello: done\n");
    return GUEST_EXIT_OK;
}
