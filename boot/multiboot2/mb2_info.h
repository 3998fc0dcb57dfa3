/* The Multiboot2 information parser, apart from the boot entry so host tests can feed
 * it tag lists. */
#ifndef KEEL_BOOT_MULTIBOOT2_MB2_INFO_H
#define KEEL_BOOT_MULTIBOOT2_MB2_INFO_H

#include "boot/bootinfo.h"

/* Adds the information block at `info` (its total-size word first) to *bi: command
 * line, loader name, modules (keel.cfg also as bi->config; past BOOTINFO_MAX_MODULES
 * counted in bi->modules_dropped), memory map, framebuffer, ACPI RSDP copy. */
void mb2_parse_tags(struct bootinfo *bi, uintptr_t info);

#endif
