/* QEMU's firmware configuration device (docs/specs/fw_cfg.rst in QEMU) as the x86 PC
 * has it: a 16-bit little-endian selector at 0x510 and a byte-wide data port at 0x511.
 * Kernels written for QEMU read the CPU count and RAM size here, so they must agree
 * with the VM's (a wrong CPU count makes them wait for CPUs that never come).
 *
 * Items: the signature "QEMU" (0x00), the feature ID (0x01: bit 0, the traditional
 * interface; no DMA), RAM_SIZE (0x03, le64), NB_CPUS (0x05, le16), MAX_CPUS (0x0f,
 * le16), the file directory (0x19: a be32 count, then per file a be32 size, be16
 * selector, be16 reserved and a 56-byte NUL-padded name, sorted by name as QEMU keeps
 * it) and the files (selectors from 0x20, in directory order). Reading past an item's
 * end gives zeros; so does an unknown key, logged once per VM. Left out: DMA (port
 * 0x514 stays unclaimed), writes through the data port (ignored since QEMU 2.4; logged
 * once), the items only firmware and -kernel loading use. */
#ifndef KEEL_VMM_DEV_FW_CFG_H
#define KEEL_VMM_DEV_FW_CFG_H

#include "vmm/dev/bus.h"

#define FW_CFG_PORT 0x510
#define FW_CFG_PORTS 2
#define FW_CFG_SIGNATURE 0x00
#define FW_CFG_ID 0x01
#define FW_CFG_RAM_SIZE 0x03
#define FW_CFG_NB_CPUS 0x05
#define FW_CFG_MAX_CPUS 0x0f
#define FW_CFG_FILE_DIR 0x19
#define FW_CFG_FILE_FIRST 0x20
#define FW_CFG_WRITE_CHANNEL 0x4000
#define FW_CFG_ARCH_LOCAL 0x8000
#define FW_CFG_ID_TRADITIONAL 0x01
#define FW_CFG_MAX_FILE_PATH 56 /* with the NUL */
#define FW_CFG_MAX_FILES 16
#define FW_CFG_DIR_ENTRY 64

struct fw_cfg_file {
    char name[FW_CFG_MAX_FILE_PATH];
    const void *data; /* not copied: must outlive the VM */
    uint32_t size;
};

enum fw_cfg_logged {
    FW_CFG_LOG_UNKNOWN = BIT(0), /* an unknown key selected */
    FW_CFG_LOG_WRITE = BIT(1),   /* a data port write */
    FW_CFG_LOG_ACCESS = BIT(2),  /* a read of the selector, or a byte write to it */
};

struct fw_cfg {
    uint16_t selector;
    uint32_t offset; /* into the selected item */
    uint8_t signature[4], id[4], ram_size[8], nb_cpus[2], max_cpus[2];
    struct fw_cfg_file files[FW_CFG_MAX_FILES];
    unsigned nfiles;
    uint8_t dir[4 + FW_CFG_DIR_ENTRY * FW_CFG_MAX_FILES];
    const char *vm_name;
    uint32_t logged;      /* enum fw_cfg_logged */
    uint64_t unknown_selects; /* every select of an unknown key, logged or not */
};

/* Sets the items from the VM's shape (cpus: the vCPUs the guest will find; max_cpus:
 * those it may ever have, at least cpus) and registers ports 0x510-0x511. Returns 0,
 * -BUS_EINVAL (logged) for counts that do not fit, or a negative bus error. */
int fw_cfg_attach(struct fw_cfg *fc, struct vm_bus *bus, unsigned cpus, unsigned max_cpus, uint64_t ram_size,
                  const char *vm_name);

/* Adds a named file ("etc/e820") before the guest runs. Returns 0, or -BUS_EINVAL
 * (empty, too long or duplicate name) or -BUS_EFULL, after logging why. */
int fw_cfg_add_file(struct fw_cfg *fc, const char *name, const void *data, uint32_t size);

/* The selector of a file, or -1. */
int fw_cfg_file_select(const struct fw_cfg *fc, const char *name);

#endif
