/* QEMU's pc-testdev (hw/misc/pc-testdev.c), the device kvm-unit-tests and other test
 * kernels written for QEMU drive: opt-in per VM (`testdev = on`).
 *
 * As QEMU has it:
 *   - 0xE0-0xE3: a 32-bit scratch register, any width, byte lanes by port (0xE2 is its
 *     bits 23:16);
 *   - 0xE4-0xE7: the flush page: a 32-bit write of a guest-physical address makes the
 *     host drop its mappings of that page (QEMU mprotects it away and back), so the
 *     guest's next access to it goes through a fresh second-stage translation; the
 *     contents stay. Reads give 0; narrower writes are refused by the bus;
 *   - 0xE8-0xEB: the same scratch register, taken a byte at a time;
 *   - 0x2000-0x2017: interrupt lines 0-23: a byte write sets line (port - 0x2000) to
 *     the level !!value (QEMU accepts only byte writes; wider ones are dropped and
 *     logged once). Reads give all-ones: QEMU has nothing to read there;
 *   - 0xFF000000-0xFF00FFFF: 64 KiB of MMIO scratch memory, QEMU's IOMEM_LEN, read and
 *     written at 1, 2 or 4 bytes (the bus splits 8-byte accesses, as QEMU does).
 * Left out: nothing of QEMU's device. */
#ifndef KEEL_VMM_DEV_PC_TESTDEV_H
#define KEEL_VMM_DEV_PC_TESTDEV_H

#include "vmm/dev/bus.h"
#include "vmm/dev/irq.h"

#define PC_TESTDEV_SCRATCH_PORT 0xe0
#define PC_TESTDEV_FLUSH_PORT 0xe4
#define PC_TESTDEV_BYTE_PORT 0xe8
#define PC_TESTDEV_IRQ_PORT 0x2000
#define PC_TESTDEV_IRQ_LINES 24
#define PC_TESTDEV_MMIO_BASE 0xff000000ull
#define PC_TESTDEV_MMIO_SIZE 0x10000u

STATIC_ASSERT(PC_TESTDEV_IRQ_LINES <= VM_IRQ_LINES, "every test line is a VM line");

struct pc_testdev {
    uint32_t scratch;
    uint32_t lines_high; /* bit n: line n driven high */
    struct irq_sink irq;
    /* Drops the host's translations of the guest page at gpa (4 KiB aligned). */
    void (*flush_page)(void *ctx, uint64_t gpa);
    void *flush_ctx;
    const char *vm_name;
    bool logged_irq_width;
    uint8_t iomem[PC_TESTDEV_MMIO_SIZE];
};

/* Zeroes the scratch state and puts the ports and the MMIO page on the bus. flush_page
 * may be NULL on a VM whose second-stage mappings have nothing to drop. Returns 0 or a
 * negative bus error. */
int pc_testdev_attach(struct pc_testdev *t, struct vm_bus *bus, const struct irq_sink *irq,
                      void (*flush_page)(void *ctx, uint64_t gpa), void *flush_ctx, const char *vm_name);

/* Power-on state again, for a VM that restarts: scratch zeroed, every line it drove
 * high lowered. */
void pc_testdev_reset(struct pc_testdev *t);

#endif
