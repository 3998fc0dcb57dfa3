/* virtio-console (see virtio_console.h). */
#include "vmm/dev/virtio_console.h"
#include "vmm/lib/string.h"

#define CLASS_COMMUNICATION_OTHER 0x078000 /* as QEMU's virtio-serial */

static uint32_t config_read(void *dev, unsigned offset, unsigned width)
{
    (void)dev;
    (void)offset;
    (void)width;
    return 0; /* no size, one port, no emergency write */
}

static void transmit(struct virtio_console *c, const struct virtq_chain *ch)
{
    for (unsigned s = 0; s < ch->nread; s++)
        vm_console_write(&c->out, (const char *)ch->seg[s].hva, ch->seg[s].len);
    c->bytes_out += ch->read_bytes;
}

static void notify(void *dev, struct virtio_pci *vp, unsigned q)
{
    struct virtio_console *c = dev;
    if (q != VIRTIO_CONSOLE_TX)
        return; /* receive buffers wait for input Keel does not have yet */
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
        transmit(c, &vp->chain);
        virtq_push(vq, vp->chain.head, 0);
        pushed = true;
    }
    if (pushed)
        virtio_pci_queue_done(vp, q);
}

static const struct virtio_device_ops console_ops = {
    .device_id = VIRTIO_ID_CONSOLE,
    .name = "virtio-console",
    .class_code = CLASS_COMMUNICATION_OTHER,
    .queues = 2,
    .queue_size = VIRTIO_CONSOLE_QUEUE_SIZE,
    .config_len = VIRTIO_CONSOLE_CFG_LEN,
    .config_read = config_read,
    .notify = notify,
};

bool virtio_console_init(struct virtio_console *c, unsigned slot, struct vm_bus *bus, const struct irq_sink *irq,
                         const struct msi_sink *msi, const struct dev_ram *ram, const char *vm_name)
{
    memset(c, 0, sizeof(*c));
    vm_console_init(&c->out, vm_name);
    return virtio_pci_init(&c->vp, &console_ops, c, 0, slot, bus, irq, msi, ram, vm_name);
}
