/* virtio-blk (virtio 1.1, 5.2) over the PCI transport: one request queue, backed by a
 * disk image in host memory that the VM may read and, unless read-only, write (the
 * writes change that memory only: Keel has no storage of its own, so they are gone at
 * power-off).
 *
 * Features: SEG_MAX (queue size - 2, so a request fits the ring without indirect
 * descriptors), BLK_SIZE (512), FLUSH, and RO for a read-only disk. Requests: IN, OUT
 * (IOERR on a read-only disk), FLUSH (nothing to write back: OK), GET_ID (the VM's
 * name, up to 20 bytes); others answer UNSUPP. A request past the end of the disk, or
 * whose data is not whole sectors, answers IOERR. A chain without the 16-byte header
 * in its readable part or without a writable status byte at its end is malformed: the
 * device needs a reset. Capacity is the image size in 512-byte sectors; a tail
 * shorter than a sector is left out (and logged at attach). */
#ifndef KEEL_VMM_DEV_VIRTIO_BLK_H
#define KEEL_VMM_DEV_VIRTIO_BLK_H

#include "vmm/lib/types.h"
#include "vmm/dev/virtio_pci.h"

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SECTOR 512u
#define VIRTIO_BLK_ID_BYTES 20

#define VIRTIO_BLK_F_SEG_MAX BIT(2)
#define VIRTIO_BLK_F_RO BIT(5)
#define VIRTIO_BLK_F_BLK_SIZE BIT(6)
#define VIRTIO_BLK_F_FLUSH BIT(9)

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

/* Device configuration offsets (5.2.4) */
#define VIRTIO_BLK_CFG_CAPACITY 0
#define VIRTIO_BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_CFG_BLK_SIZE 20
/* The whole of struct virtio_blk_config as virtio 1.2 has it (fields past blk_size are
 * for features not offered and read 0): a driver may size its reads by the struct. */
#define VIRTIO_BLK_CFG_LEN 0x40

struct virtio_blk {
    struct virtio_pci vp;
    uint8_t *data;
    uint64_t sectors;
    bool readonly;
    char id[VIRTIO_BLK_ID_BYTES];
    uint64_t requests, bytes_read, bytes_written;
};

/* A disk of `size` bytes at data (host memory the device may write unless readonly),
 * as PCI function 00:slot.0; the caller plugs it (pci_ep_plug). False when the
 * transport could not be set up or the image holds no whole sector. */
bool virtio_blk_init(struct virtio_blk *b, void *data, uint64_t size, bool readonly, unsigned slot,
                     struct vm_bus *bus, const struct irq_sink *irq, const struct msi_sink *msi,
                     const struct dev_ram *ram, const char *vm_name);

#endif
