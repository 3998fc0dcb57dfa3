/* virtio-blk (see virtio_blk.h). */
#include "vmm/dev/virtio_blk.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define CLASS_STORAGE_SCSI 0x010000 /* what QEMU's virtio-blk says; Linux matches on IDs */
#define REQ_HEADER_BYTES 16

struct req_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t sector;
};
STATIC_ASSERT(sizeof(struct req_header) == REQ_HEADER_BYTES, "virtio_blk_req header");

static uint32_t config_read(void *dev, unsigned offset, unsigned width)
{
    struct virtio_blk *b = dev;
    uint8_t cfg[VIRTIO_BLK_CFG_LEN] = {0};
    uint32_t seg_max = VIRTIO_BLK_QUEUE_SIZE - 2, blk_size = VIRTIO_BLK_SECTOR;
    memcpy(cfg + VIRTIO_BLK_CFG_CAPACITY, &b->sectors, 8);
    memcpy(cfg + VIRTIO_BLK_CFG_SEG_MAX, &seg_max, 4);
    memcpy(cfg + VIRTIO_BLK_CFG_BLK_SIZE, &blk_size, 4);
    uint32_t v = 0;
    memcpy(&v, cfg + offset, width);
    return v;
}

/* One request; returns the bytes written into its writable part, or -1 (malformed,
 * *why set). */
static int64_t serve(struct virtio_blk *b, const struct virtq_chain *c, const char **why)
{
    struct req_header h;
    if (virtq_chain_read(c, 0, &h, sizeof(h)) != sizeof(h)) {
        *why = "a request without its 16-byte header in device-readable buffers";
        return -1;
    }
    const struct virtq_seg *last = c->nwrite ? &c->seg[c->nread + c->nwrite - 1] : NULL;
    if (!last || !last->len) {
        *why = "a request without a device-writable status byte at its end";
        return -1;
    }
    uint32_t data_in = c->write_bytes - 1;          /* writable bytes before the status */
    uint32_t data_out = c->read_bytes - REQ_HEADER_BYTES; /* readable bytes after the header */
    uint8_t status = VIRTIO_BLK_S_OK;
    uint32_t written = 0;
    b->requests++;
    switch (h.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
        bool in = h.type == VIRTIO_BLK_T_IN;
        uint32_t len = in ? data_in : data_out;
        uint64_t count = len / VIRTIO_BLK_SECTOR;
        if (len % VIRTIO_BLK_SECTOR || h.sector > b->sectors || count > b->sectors - h.sector) {
            status = VIRTIO_BLK_S_IOERR;
        } else if (in) {
            written = virtq_chain_write(c, 0, b->data + h.sector * VIRTIO_BLK_SECTOR, len);
            b->bytes_read += len;
        } else if (b->readonly) {
            status = VIRTIO_BLK_S_IOERR;
        } else {
            virtq_chain_read(c, REQ_HEADER_BYTES, b->data + h.sector * VIRTIO_BLK_SECTOR, len);
            b->bytes_written += len;
        }
        break;
    }
    case VIRTIO_BLK_T_FLUSH: break;
    case VIRTIO_BLK_T_GET_ID:
        written = virtq_chain_write(c, 0, b->id, MIN(data_in, (uint32_t)VIRTIO_BLK_ID_BYTES));
        break;
    default: status = VIRTIO_BLK_S_UNSUPP; break;
    }
    last->hva[last->len - 1] = status;
    return (int64_t)written + 1;
}

static void notify(void *dev, struct virtio_pci *vp, unsigned q)
{
    struct virtio_blk *b = dev;
    struct virtq *vq = &vp->vq[q];
    bool pushed = false;
    for (;;) {
        enum virtq_pop_result r = virtq_pop(vq, &vp->chain);
        if (r == VIRTQ_EMPTY)
            break;
        if (r == VIRTQ_BROKEN) {
            virtio_pci_queue_broken(vp, q, vq->why);
            return;
        }
        const char *why = NULL;
        int64_t n = serve(b, &vp->chain, &why);
        if (n < 0) {
            virtio_pci_queue_broken(vp, q, why);
            return;
        }
        virtq_push(vq, vp->chain.head, (uint32_t)n);
        pushed = true;
    }
    if (pushed)
        virtio_pci_queue_done(vp, q);
}

static const struct virtio_device_ops blk_ops = {
    .device_id = VIRTIO_ID_BLOCK,
    .name = "virtio-blk",
    .class_code = CLASS_STORAGE_SCSI,
    .queues = 1,
    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
    .config_len = VIRTIO_BLK_CFG_LEN,
    .config_read = config_read,
    .notify = notify,
};

bool virtio_blk_init(struct virtio_blk *b, void *data, uint64_t size, bool readonly, unsigned slot,
                     struct vm_bus *bus, const struct irq_sink *irq, const struct msi_sink *msi,
                     const struct dev_ram *ram, const char *vm_name)
{
    memset(b, 0, sizeof(*b));
    b->data = data;
    b->sectors = size / VIRTIO_BLK_SECTOR;
    b->readonly = readonly;
    ksnprintf(b->id, sizeof(b->id), "keel-%s", vm_name);
    if (!b->sectors) {
        kprintf("VM %s: virtio-blk: the disk image (%lu bytes) holds no whole 512-byte sector\n", vm_name, size);
        return false;
    }
    if (size % VIRTIO_BLK_SECTOR)
        kprintf("VM %s: virtio-blk: the last %lu bytes of the disk image are not a whole sector and are left out\n",
                vm_name, size % VIRTIO_BLK_SECTOR);
    uint64_t features = VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE | VIRTIO_BLK_F_FLUSH |
                        (readonly ? VIRTIO_BLK_F_RO : 0);
    return virtio_pci_init(&b->vp, &blk_ops, b, features, slot, bus, irq, msi, ram, vm_name);
}
