/* Direct boot of a Linux bzImage by the x86 boot protocol (Documentation/arch/x86/
 * boot.rst), the way QEMU's -kernel and Firecracker do it: no firmware and no real-mode
 * setup code run; Keel does what the setup code would have done and enters the
 * protected-mode kernel.
 *
 * The image is a real-mode setup part ((setup_sects + 1) * 512 bytes, the setup header
 * at 0x1F1) followed by the protected-mode kernel. Checked before a byte of guest RAM
 * is written: the boot-sector flag 0xAA55 and "HdrS", protocol 2.06 or later, a
 * setup_sects that keeps the setup part inside its 32 KiB and the file, the header's
 * own length, a kernel that is not empty, an initrd and command line that fit the
 * limits the header gives, and room in RAM for init_size bytes (the kernel's whole
 * footprint while it decompresses itself) at the load address.
 *
 * Load address: pref_address (2.10+; 1 MiB before) when the kernel fits there; a
 * relocatable kernel otherwise goes to the lowest kernel_alignment-aligned address at
 * or above 1 MiB where it fits. A kernel that fits nowhere is refused.
 *
 * Guest-physical layout (all below 1 MiB, in RAM the e820 map calls usable, as QEMU and
 * Firecracker do; the kernel copies what it needs before it reuses that memory):
 *   0x00500  GDT: 0x10 code (64-bit when entered in long mode, else 32-bit), 0x18 data
 *   0x07000  the zero page (struct boot_params)
 *   0x08000  boot stack, RSP = 0x8ff0
 *   0x09000  page tables: PML4, a PDPT and 4 PDs mapping 0-4 GiB in 2 MiB pages
 *   0x20000  the command line
 * the kernel at its load address, the initrd at the highest page-aligned address below
 * min(end of RAM, initrd_addr_max + 1) that stays above the kernel's init_size.
 *
 * e820 map: [0, 0x9FC00) RAM, [0x9FC00, 1 MiB) reserved (EBDA, VGA, the BIOS area where
 * Keel's ACPI tables are, vmm/guest_acpi.h), [1 MiB, end of RAM) RAM.
 *
 * Entry: with XLF_KERNEL_64 in 64-bit mode at load address + 0x200 (startup_64), else
 * in 32-bit protected mode, paging off, at code32_start (= the load address). Either
 * way CS = 0x10, DS = ES = SS = 0x18, interrupts off, RSI = the zero page, the other
 * general registers zero. */
#ifndef KEEL_VMM_LINUX_BOOT_H
#define KEEL_VMM_LINUX_BOOT_H

#include "vmm/loaders/guest_image.h"

#define LINUX_GDT 0x500ul
#define LINUX_GDT_LIMIT 0x1f
#define LINUX_SEL_CS 0x10 /* __BOOT_CS */
#define LINUX_SEL_DS 0x18 /* __BOOT_DS */
#define LINUX_ZERO_PAGE 0x7000ul
#define LINUX_STACK_TOP 0x8ff0ul
#define LINUX_PAGE_TABLES 0x9000ul
#define LINUX_PAGE_TABLES_SIZE (6 * PAGE_SIZE) /* PML4, PDPT, 4 PDs */
#define LINUX_CMDLINE 0x20000ul
#define LINUX_CMDLINE_AREA 0x1000ul
#define LINUX_LOW_LOAD 0x100000ul /* where kernels before 2.10 go, and the lowest place for others */
#define LINUX_64BIT_ENTRY_OFF 0x200ul
#define LINUX_MIN_PROTOCOL 0x0206u
#define LINUX_SETUP_MAX 0x8000ul /* the setup part's limit (its linker script asserts it) */

/* Setup header fields, as offsets in the image and in the zero page alike. */
#define LH_SETUP_SECTS 0x1f1
#define LH_BOOT_FLAG 0x1fe
#define LH_JUMP 0x200
#define LH_HEADER 0x202
#define LH_VERSION 0x206
#define LH_TYPE_OF_LOADER 0x210
#define LH_LOADFLAGS 0x211
#define LH_CODE32_START 0x214
#define LH_RAMDISK_IMAGE 0x218
#define LH_RAMDISK_SIZE 0x21c
#define LH_HEAP_END_PTR 0x224
#define LH_CMD_LINE_PTR 0x228
#define LH_INITRD_ADDR_MAX 0x22c
#define LH_KERNEL_ALIGNMENT 0x230
#define LH_RELOCATABLE 0x234
#define LH_MIN_ALIGNMENT 0x235
#define LH_XLOADFLAGS 0x236
#define LH_CMDLINE_SIZE 0x238
#define LH_PREF_ADDRESS 0x258
#define LH_INIT_SIZE 0x260
#define LH_END_MAX 0x290 /* where the zero page's setup header area ends */

/* Zero page fields outside the setup header. */
#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_E820_ENTRY_SIZE 20
#define BP_E820_MAX 128

#define LINUX_BOOT_FLAG 0xaa55u
#define LINUX_HDRS 0x53726448u /* "HdrS" */
#define LINUX_LOADER_TYPE 0xff /* a boot loader without an assigned ID */
#define LOADFLAG_LOADED_HIGH BIT(0)
#define LOADFLAG_CAN_USE_HEAP BIT(7)
#define XLF_KERNEL_64 BIT(0)
#define XLF_CAN_BE_LOADED_ABOVE_4G BIT(1)
#define E820_RAM 1
#define E820_RESERVED 2

/* What the setup header says, after the checks. */
struct linux_header {
    uint16_t version;        /* 0x020f for 2.15 */
    uint32_t setup_size;     /* bytes of the real-mode part, the boot sector included */
    uint64_t kernel_offset;  /* in the file: = setup_size */
    uint64_t kernel_size;    /* protected-mode kernel bytes in the file */
    uint32_t header_end;     /* end of the setup header in the image (and zero page) */
    uint8_t loadflags;
    uint16_t xloadflags;     /* 0 before 2.12 */
    bool relocatable;        /* 0 before 2.05 */
    uint32_t kernel_alignment;
    uint32_t initrd_addr_max;
    uint32_t cmdline_size;   /* characters, NUL excluded */
    uint64_t pref_address;
    uint64_t init_size;      /* before 2.10: kernel_size (the header gives none) */
};

/* Reads and checks the setup header of a bzImage of `size` bytes. */
int linux_parse_header(const void *image, size_t size, struct linux_header *h, char err[GUEST_ERR_LEN]);

/* Loads a bzImage, its initrd (NULL/0: none) and command line (NULL: empty) into zeroed
 * guest RAM and fills *out (info = boot_area = the zero page, rsi too; load_lo/hi = the
 * kernel's init_size span; initrd/initrd_size where the initrd went). On failure
 * nothing is written to guest RAM. */
int guest_load_linux(const struct guest_ram *ram, const void *image, size_t size, const void *initrd,
                     size_t initrd_size, const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN]);

/* Tells the kernel where the ACPI RSDP is (the zero page's acpi_rsdp_addr, protocol
 * 2.14+; older kernels scan the BIOS area, where Keel's tables are anyway). Called once
 * the VM's tables are built, which happens after loading. */
void linux_boot_set_rsdp(const struct guest_ram *ram, const struct guest_boot *boot, gpa_t rsdp);

#endif
