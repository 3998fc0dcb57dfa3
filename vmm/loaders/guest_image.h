/* Guest image loaders: put a kernel image into a VM's RAM and say how its first vCPU
 * must start. Three kinds:
 *   - Multiboot version 1 (what QEMU's -kernel implements): an ELF32 image, or any
 *     image using the header's a.out-kludge address fields; started in 32-bit
 *     protected mode, paging off, EAX = 0x2BADB002, EBX = the info structure.
 *   - ELF64 (x86-64, ET_EXEC): started in 64-bit mode on identity page tables Keel
 *     builds at the top of guest RAM; RDI = EBX = the same Multiboot info structure,
 *     EAX = 0x2BADB002, RSP = a 64 KiB stack just below the tables.
 *   - Real mode: a flat binary at 0x7C00, started at 0000:7C00 with SP = 0x7C00. There
 *     is no BIOS behind it.
 *
 * Guest RAM is one block at guest-physical 0. Every loader checks the whole image
 * before it writes a byte of guest RAM, never reads outside the image buffer nor writes
 * outside guest RAM, and on failure returns a negative GUEST_E* code with a one-line
 * reason in `err` (the caller prints it; loaders print nothing). It writes only the
 * segments, their zero fill, and its boot structures: the caller hands in zeroed RAM.
 *
 * The boot structures (Multiboot and ELF64) sit in one block, the boot area, at an
 * offset from its base:
 *   +0x000  GDT: 0x08 flat 32-bit code, 0x10 flat data, 0x18 64-bit code
 *   +0x040  Multiboot information structure (mem, cmdline, mmap, boot loader name)
 *   +0x100  its memory map
 *   +0x200  boot loader name "Keel"
 *   +0x300  command line
 * and below the base, 4 KiB of scratch stack for a Multiboot kernel (ESP = the base;
 * Multiboot leaves ESP undefined, but kernels push before they set it). The base is
 * 0x8000 (GUEST_BOOT_AREA: GDT at 0x8000, information at 0x8040) when the image leaves
 * 0x7000-0x9FFF free, else the first of 0x2000, the page above the image's end and
 * 1 MiB (plus the stack page) whose block lies in RAM below the boot stack, ends below
 * 4 GiB, and meets neither [load_lo, load_hi) nor the reserved hole; an image that
 * leaves none of them is refused. So a kernel linked at 0x8000 loads, with its boot
 * information elsewhere: guest_boot.info and gdt_base say where.
 * Memory map given to the guest: [0, 0x9FC00) usable, [0x9FC00, 0x100000) reserved
 * (EBDA, VGA, option ROMs, and 0xE0000-0xFFFFF where the firmware tables go), and
 * [0x100000, top) usable, where top is the end of RAM (Multiboot) or the bottom of the
 * boot stack (ELF64; [top, end of RAM) is then reserved). Segments must lie in
 * [0x1000, top), outside the reserved hole. */
#ifndef KEEL_VMM_GUEST_IMAGE_H
#define KEEL_VMM_GUEST_IMAGE_H

#include "vmm/lib/types.h"
#include "vmm/lib/config.h"
#include "arch/x86/vcpu_arch.h" /* enum guest_cpu_mode */
#include "vmm/dev/dev_ram.h"       /* the RAM layout */

#define GUEST_ERR_LEN 160

/* A VM's RAM as the loaders see it (vmm/dev/dev_ram.h has the layout): images, boot
 * data and page tables go below 4 GiB; the RAM at 4 GiB appears in the memory maps the
 * guest is given (and in the ELF64 boot page tables). */
struct guest_ram {
    uint8_t *hva;       /* where Keel reaches guest-physical 0 */
    uint64_t size;      /* bytes from 0, a multiple of 4 KiB */
    uint64_t high_size; /* bytes from GUEST_RAM_HIGH_BASE, a multiple of 4 KiB (0: none) */
};

/* The image formats are the configuration's entry kinds, one set of values: a VM's
 * `entry` goes to the loader as it is. */
enum guest_image_kind {
    GUEST_IMAGE_UNKNOWN = 0,
    GUEST_IMAGE_MULTIBOOT = VM_ENTRY_MULTIBOOT,
    GUEST_IMAGE_ELF64 = VM_ENTRY_ELF64,
    GUEST_IMAGE_REAL = VM_ENTRY_REAL,
    GUEST_IMAGE_LINUX = VM_ENTRY_LINUX, /* vmm/loaders/linux_boot.h */
};

/* Errors (negative). */
#define GUEST_EBADIMAGE (-1)   /* malformed or self-contradictory image */
#define GUEST_ENOFIT (-2)      /* well-formed, but does not fit this VM's RAM layout */
#define GUEST_EUNSUPPORTED (-3) /* asks for something Keel does not offer */
#define GUEST_EINVAL (-4)      /* bad arguments: RAM too small or odd, command line too long */

/* Fixed guest-physical addresses. */
#define GUEST_MIN_LOAD 0x1000ul
#define GUEST_BOOT_STACK_SIZE 0x1000ul /* below the boot area's base */
#define GUEST_BOOT_SIZE 0x2000ul       /* from the base: GDT .. command line */
#define GUEST_GDT_OFF 0x000ul
#define GUEST_MB_INFO_OFF 0x040ul
#define GUEST_MB_MMAP_OFF 0x100ul
#define GUEST_MB_LOADER_NAME_OFF 0x200ul
#define GUEST_MB_CMDLINE_OFF 0x300ul
/* The preferred base, and where each structure is when the boot area is there. */
#define GUEST_BOOT_AREA 0x8000ul
#define GUEST_BOOT_AREA_END (GUEST_BOOT_AREA + GUEST_BOOT_SIZE)
#define GUEST_GDT (GUEST_BOOT_AREA + GUEST_GDT_OFF)
#define GUEST_MB_INFO (GUEST_BOOT_AREA + GUEST_MB_INFO_OFF)
#define GUEST_MB_MMAP (GUEST_BOOT_AREA + GUEST_MB_MMAP_OFF)
#define GUEST_MB_LOADER_NAME (GUEST_BOOT_AREA + GUEST_MB_LOADER_NAME_OFF)
#define GUEST_MB_CMDLINE (GUEST_BOOT_AREA + GUEST_MB_CMDLINE_OFF)
#define GUEST_CMDLINE_MAX 4095u        /* characters, without the NUL */
#define GUEST_LOW_MEM_END 0x9FC00ul   /* EBDA, VGA and BIOS area follow */
#define GUEST_HIGH_MEM 0x100000ul
#define GUEST_REAL_LOAD 0x7C00ul
#define GUEST_REAL_MAX (GUEST_LOW_MEM_END - GUEST_REAL_LOAD)
#define GUEST_ELF64_STACK_SIZE 0x10000ul
#define GUEST_MIN_RAM (2ul << 20)     /* Multiboot and ELF64 guests */

#define GUEST_SEL_CODE32 0x08
#define GUEST_SEL_DATA 0x10
#define GUEST_SEL_CODE64 0x18
#define GUEST_GDT_LIMIT 0x1f

#define MULTIBOOT_HEADER_MAGIC 0x1BADB002u
#define MULTIBOOT_BOOTLOADER_MAGIC 0x2BADB002u
#define MULTIBOOT_SEARCH_LIMIT 8192u

/* Multiboot information flags Keel sets. */
#define MBI_FLAG_MEM BIT(0)
#define MBI_FLAG_CMDLINE BIT(2)
#define MBI_FLAG_MMAP BIT(6)
#define MBI_FLAG_LOADER_NAME BIT(9)

/* How the first vCPU starts. Segment registers other than CS take `ds` (with base 0
 * and limit 4 GiB in protected and long mode; base ds*16 in real mode). In protected
 * and long mode the hidden parts must match the GDT descriptors above. The control
 * registers hold only what the mode needs; the VMX fixed bits are the caller's. */
struct guest_boot {
    enum guest_image_kind kind;
    enum guest_cpu_mode mode;
    uint64_t rip, rsp, rax, rbx, rsi, rdi;
    uint16_t cs, ds;
    uint64_t cr0, cr3, cr4, efer;
    gpa_t gdt_base;      /* 0 in real mode */
    uint16_t gdt_limit;
    gpa_t info;          /* Multiboot information structure, 0 in real mode */
    gpa_t boot_area;     /* base of the boot structures (GDT first), 0 in real mode: they take
                          * [boot_area - GUEST_BOOT_STACK_SIZE, boot_area + GUEST_BOOT_SIZE) */
    gpa_t load_lo, load_hi; /* lowest loaded byte and the end of the highest (bss included) */
    gpa_t initrd;           /* Linux: where its initrd is (initrd_size 0: none) */
    uint64_t initrd_size;
    char note[GUEST_ERR_LEN]; /* something the caller should tell the user, or "" */
};

/* Recognises an image: a valid Multiboot header in its first 8 KiB -> MULTIBOOT, else
 * an ELF64 file -> ELF64, else UNKNOWN (real-mode binaries have no signature). */
enum guest_image_kind guest_image_probe(const void *image, size_t size);

/* `cmdline` may be NULL (no command line flag in the info structure). */
int guest_load_multiboot(const struct guest_ram *ram, const void *image, size_t size, const char *cmdline,
                         struct guest_boot *out, char err[GUEST_ERR_LEN]);
int guest_load_elf64(const struct guest_ram *ram, const void *image, size_t size, const char *cmdline,
                     struct guest_boot *out, char err[GUEST_ERR_LEN]);
int guest_load_real(const struct guest_ram *ram, const void *image, size_t size, struct guest_boot *out,
                    char err[GUEST_ERR_LEN]);
/* Dispatches on `kind` (cmdline is ignored for real-mode images). */
int guest_load(enum guest_image_kind kind, const struct guest_ram *ram, const void *image, size_t size,
               const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN]);

#endif
