/* The one hand-over contract between a loader (UEFI or Multiboot2) and the core.
 *
 * A loader enters keel_entry64(struct bootinfo *) in 64-bit mode with:
 *   - paging on, the core image mapped at its link address (KERNEL_VBASE) and at
 *     least the first 4 GiB identity-mapped, including every address below;
 *   - interrupts disabled, a 16-byte aligned stack of at least 16 KiB;
 *   - everything the core needs copied into this structure or into memory the
 *     memory map marks as something other than MEM_USABLE.
 * After the call the core never calls firmware. In BOOT_PLATFORM_CHECK mode the
 * firmware is still alive: the core may use only MEM_USABLE ranges (the loader
 * hands it a private pool), must leave interrupts off, and returns to the loader. */
#ifndef KEEL_BOOT_BOOTINFO_H
#define KEEL_BOOT_BOOTINFO_H

#include "vmm/lib/types.h"

#define BOOTINFO_MAGIC 0x544f4f424c45454bull /* "KEELBOOT" */
#define BOOTINFO_VERSION 3

#define BOOTINFO_MAX_MEM 512
/* Far more than MAX_VMS images plus keel.cfg, so a loader that passes extra files
 * still leaves room for every VM's; past it loaders count what they left out. */
#define BOOTINFO_MAX_MODULES 64
#define BOOTINFO_MAX_CMDLINE 512
#define BOOTINFO_MODULE_NAME 64

enum boot_source {
    BOOT_SOURCE_MULTIBOOT2 = 1,
    BOOT_SOURCE_UEFI = 2,
};

/* Flags */
#define BOOT_PLATFORM_CHECK BIT(0) /* firmware still alive: probe, report, return */
#define BOOT_HANDOVER_TEST BIT(1)  /* boot services ended without VT-x (handover_test):
                                      boot, report, power off */

enum mem_type {
    MEM_USABLE = 1,
    MEM_RESERVED = 2,
    MEM_ACPI_RECLAIMABLE = 3,
    MEM_ACPI_NVS = 4,
    MEM_MMIO = 5,
    MEM_UNUSABLE = 6,   /* defective RAM */
    MEM_FIRMWARE = 7,   /* owned by live firmware (runtime services, or boot
                           services while BOOT_PLATFORM_CHECK) */
    MEM_BOOT_DATA = 8,  /* the loader's hand-over data: this structure,
                           modules, hand-over page tables and stack */
};

struct mem_region {
    uint64_t base;
    uint64_t length;
    uint32_t type; /* enum mem_type */
    uint32_t reserved;
};

struct boot_module {
    hpa_t base;
    uint64_t size;
    char name[BOOTINFO_MODULE_NAME]; /* file name, or the Multiboot2 module string */
};

struct boot_framebuffer {
    hpa_t base;
    uint32_t width, height, pitch, bpp;
};

struct bootinfo {
    uint64_t magic;
    uint32_t version;
    uint32_t source; /* enum boot_source */
    uint64_t flags;

    hpa_t rsdp;             /* 0 if the loader found none */
    hpa_t kernel_phys_base; /* where the image's first byte sits in RAM */
    uint64_t kernel_size;   /* including .bss */
    hpa_t ap_trampoline;    /* one free page below 1 MiB reserved for AP start-up, 0 if none */

    char cmdline[BOOTINFO_MAX_CMDLINE];
    hpa_t config;        /* keel.cfg text, not NUL-terminated; 0 if none */
    uint64_t config_len;

    uint32_t mem_count;
    uint32_t module_count;
    uint32_t modules_dropped; /* modules the loader had but found no room for */
    struct mem_region mem[BOOTINFO_MAX_MEM]; /* sorted by base; may overlap, as firmware maps do */
    struct boot_module modules[BOOTINFO_MAX_MODULES];

    bool has_framebuffer;
    struct boot_framebuffer fb;

    char loader_name[48];

    /* UEFI hand-over: ExitBootServices calls the loader made, and how many of them the
     * firmware rejected for a stale map key. 0 on other paths. */
    uint32_t exit_bs_attempts;
    uint32_t exit_bs_stale_keys;
};

/* The core's 64-bit entry point; returns only in BOOT_PLATFORM_CHECK mode. */
int keel_entry64(struct bootinfo *bi);

/* The image header both loaders can find. It sits in the first 32 KiB of the image,
 * after the Multiboot2 header, so the UEFI loader can locate the 64-bit entry. */
#define KEEL_IMAGE_MAGIC 0x31474d494c45454bull /* "KEELIMG1" */
struct keel_image_header {
    uint64_t magic;
    uint64_t entry64;    /* virtual address of keel_entry64 */
    uint64_t image_vbase; /* link address of the first byte */
    uint64_t image_end;  /* link address past .bss */
};

const char *mem_type_name(uint32_t type);

#endif
