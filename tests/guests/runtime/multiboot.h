/* The Multiboot (version 1) information a guest receives in EBX. */
#ifndef GUEST_MULTIBOOT_H
#define GUEST_MULTIBOOT_H

#include <stdbool.h>
#include <stdint.h>

#define MB_BOOT_MAGIC 0x2BADB002u

#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)
#define MB_INFO_MMAP (1u << 6)

#define MB_MMAP_AVAILABLE 1u

struct mb_info {
    uint32_t flags;
    uint32_t mem_lower; /* KiB below 1 MiB */
    uint32_t mem_upper; /* KiB from 1 MiB to the first hole */
    uint32_t boot_device;
    uint32_t cmdline;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length;
    uint32_t mmap_addr;
} __attribute__((packed));

/* `size` counts the bytes after itself, so entries may grow beyond these fields. */
struct mb_mmap_entry {
    uint32_t size;
    uint64_t addr;
    uint64_t len;
    uint32_t type;
} __attribute__((packed));

/* Records the boot information; ignores it when the magic is wrong. */
void mb_init(uint32_t magic, uint32_t info_gpa);

/* NULL unless a Multiboot loader entered the guest. */
const struct mb_info *mb_info(void);

/* The whole command line, "" when there is none. */
const char *mb_cmdline(void);

/* The fields from MB_INFO_MEMORY; false when absent. */
bool mb_memory(uint32_t *lower_kib, uint32_t *upper_kib);

/* Calls fn for each well-formed memory map entry and returns how many there were;
 * stops with a message at a malformed one. Returns -1 when there is no map. */
int mb_mmap_walk(void (*fn)(const struct mb_mmap_entry *e, void *arg), void *arg);

/* One past the highest byte of available RAM, from the memory map (or mem_upper when
 * there is no map); 0 when neither is present. */
uint64_t mb_ram_end(void);

#endif
