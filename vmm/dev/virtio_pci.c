/* virtio over PCI, modern transport (see virtio_pci.h). */
#include "vmm/dev/virtio_pci.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define CAP_LEN 16
#define NOTIFY_CAP_LEN 20
#define CAP_OFF_TYPE 3
#define CAP_OFF_BAR 4
#define CAP_OFF_OFFSET 8
#define CAP_OFF_LENGTH 12
#define CAP_OFF_MULTIPLIER 16
#define ISR_QUEUE 1
#define ISR_CONFIG 2

static bool add_virtio_cap(struct virtio_pci *vp, uint8_t type, uint32_t offset, uint32_t length)
{
    unsigned len = type == VIRTIO_PCI_CAP_NOTIFY_CFG ? NOTIFY_CAP_LEN : CAP_LEN;
    unsigned at = pci_ep_add_cap(&vp->pci, PCI_CAP_ID_VENDOR, len);
    if (!at)
        return false;
    pci_ep_cfg_set(&vp->pci, at + 2, 1, len);
    pci_ep_cfg_set(&vp->pci, at + CAP_OFF_TYPE, 1, type);
    pci_ep_cfg_set(&vp->pci, at + CAP_OFF_BAR, 1, VIRTIO_PCI_BAR);
    pci_ep_cfg_set(&vp->pci, at + CAP_OFF_OFFSET, 4, offset);
    pci_ep_cfg_set(&vp->pci, at + CAP_OFF_LENGTH, 4, length);
    if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
        pci_ep_cfg_set(&vp->pci, at + CAP_OFF_MULTIPLIER, 4, VIRTIO_PCI_NOTIFY_MULTIPLIER);
    return true;
}

static void reset(struct virtio_pci *vp)
{
    vp->status = 0;
    vp->driver_features = 0;
    vp->dfselect = vp->gfselect = 0;
    vp->queue_select = 0;
    vp->msix_config = PCI_MSIX_NO_VECTOR;
    vp->isr = 0;
    vp->logged_broken = false;
    pci_ep_set_intx(&vp->pci, false);
    for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
        virtq_reset(&vp->vq[q], q < vp->ops->queues ? vp->ops->queue_size : 0, PCI_MSIX_NO_VECTOR);
}

bool virtio_pci_init(struct virtio_pci *vp, const struct virtio_device_ops *ops, void *dev, uint64_t features,
                     unsigned slot, struct vm_bus *bus, const struct irq_sink *irq, const struct msi_sink *msi,
                     const struct dev_ram *ram, const char *vm_name)
{
    if (!ops->queues || ops->queues > VIRTIO_MAX_QUEUES || !ops->queue_size || ops->queue_size > VIRTQ_MAX_SIZE ||
        (ops->queue_size & (ops->queue_size - 1)) || ops->config_len > VIRTIO_PCI_REGION_SIZE || !ops->notify ||
        (ops->config_len && !ops->config_read))
        return false;
    memset(vp, 0, sizeof(*vp));
    vp->ops = ops;
    vp->dev = dev;
    vp->ram = *ram;
    vp->device_features = features | VIRTIO_F_VERSION_1;
    pci_ep_init(&vp->pci,
                    &(struct pci_endpoint_ids){.vendor = VIRTIO_PCI_VENDOR,
                                             .device = (uint16_t)(VIRTIO_PCI_DEVICE_BASE + ops->device_id),
                                             .revision = VIRTIO_PCI_REVISION, .class_code = ops->class_code,
                                             .subsys_vendor = VIRTIO_PCI_VENDOR, .subsys = VIRTIO_PCI_SUBSYS},
                    slot, bus, irq, msi, ops->name, vm_name);
    reset(vp);
    return pci_ep_add_bar(&vp->pci, VIRTIO_PCI_BAR, VIRTIO_PCI_BAR_SIZE, &virtio_pci_bar_ops, vp, ops->name) &&
           pci_ep_add_msix(&vp->pci, VIRTIO_PCI_MSIX_BAR, ops->queues + 1u) &&
           add_virtio_cap(vp, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF, VIRTIO_COMMON_SIZE) &&
           add_virtio_cap(vp, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1) &&
           add_virtio_cap(vp, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
                          VIRTIO_PCI_NOTIFY_MULTIPLIER * ops->queues) &&
           (!ops->config_len || add_virtio_cap(vp, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, ops->config_len));
}

bool virtio_pci_live(const struct virtio_pci *vp)
{
    return (vp->status & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_NEEDS_RESET);
}

/* ---- interrupts ---- */

static void interrupt(struct virtio_pci *vp, uint16_t vector, uint8_t isr_bit)
{
    if (pci_ep_msix_enabled(&vp->pci)) {
        pci_ep_msix_notify(&vp->pci, vector);
        return;
    }
    vp->isr |= isr_bit;
    pci_ep_set_intx(&vp->pci, true);
}

void virtio_pci_queue_done(struct virtio_pci *vp, unsigned q)
{
    if (q < vp->ops->queues && virtq_wants_interrupt(&vp->vq[q]))
        interrupt(vp, vp->vq[q].msix_vector, ISR_QUEUE);
}

void virtio_pci_queue_broken(struct virtio_pci *vp, unsigned q, const char *why)
{
    if (vp->status & VIRTIO_STATUS_NEEDS_RESET)
        return;
    vp->status |= VIRTIO_STATUS_NEEDS_RESET;
    if (!vp->logged_broken) {
        vp->logged_broken = true;
        kprintf("VM %s: %s 00:%02x.0: queue %u: %s; the device needs a reset\n", vp->pci.vm_name, vp->ops->name,
                vp->pci.slot, q, why);
    }
    vp->config_generation++;
    if (vp->status & VIRTIO_STATUS_DRIVER_OK)
        interrupt(vp, vp->msix_config, ISR_CONFIG);
}

static void run_queue(struct virtio_pci *vp, unsigned q)
{
    if (q >= vp->ops->queues || !virtio_pci_live(vp) || !vp->vq[q].enabled)
        return;
    vp->ops->notify(vp->dev, vp, q);
}

/* ---- common configuration ---- */

static struct virtq *selected(struct virtio_pci *vp)
{
    return vp->queue_select < vp->ops->queues ? &vp->vq[vp->queue_select] : NULL;
}

/* The structure as the driver reads it, laid out in buf (little-endian). */
static void common_image(struct virtio_pci *vp, uint8_t *buf)
{
    memset(buf, 0, VIRTIO_COMMON_SIZE);
    const struct virtq *q = selected(vp);
    uint32_t df = vp->dfselect < 2 ? (uint32_t)(vp->device_features >> (32 * vp->dfselect)) : 0;
    uint32_t gf = vp->gfselect < 2 ? (uint32_t)(vp->driver_features >> (32 * vp->gfselect)) : 0;
    uint16_t numq = vp->ops->queues;
    memcpy(buf + VIRTIO_COMMON_DFSELECT, &vp->dfselect, 4);
    memcpy(buf + VIRTIO_COMMON_DF, &df, 4);
    memcpy(buf + VIRTIO_COMMON_GFSELECT, &vp->gfselect, 4);
    memcpy(buf + VIRTIO_COMMON_GF, &gf, 4);
    memcpy(buf + VIRTIO_COMMON_MSIX, &vp->msix_config, 2);
    memcpy(buf + VIRTIO_COMMON_NUMQ, &numq, 2);
    buf[VIRTIO_COMMON_STATUS] = vp->status;
    buf[VIRTIO_COMMON_CFGGEN] = vp->config_generation;
    memcpy(buf + VIRTIO_COMMON_Q_SELECT, &vp->queue_select, 2);
    if (!q)
        return; /* queue_size 0: no such queue */
    uint16_t enable = q->enabled, noff = vp->queue_select;
    memcpy(buf + VIRTIO_COMMON_Q_SIZE, &q->size, 2);
    memcpy(buf + VIRTIO_COMMON_Q_MSIX, &q->msix_vector, 2);
    memcpy(buf + VIRTIO_COMMON_Q_ENABLE, &enable, 2);
    memcpy(buf + VIRTIO_COMMON_Q_NOFF, &noff, 2);
    memcpy(buf + VIRTIO_COMMON_Q_DESCLO, &q->desc_gpa, 8);
    memcpy(buf + VIRTIO_COMMON_Q_AVAILLO, &q->avail_gpa, 8);
    memcpy(buf + VIRTIO_COMMON_Q_USEDLO, &q->used_gpa, 8);
}

static uint16_t checked_vector(const struct virtio_pci *vp, uint64_t v)
{
    return v < vp->pci.msix_vectors ? (uint16_t)v : PCI_MSIX_NO_VECTOR;
}

static void set_half(uint64_t *field, unsigned half, uint64_t value, unsigned width)
{
    if (width == 8)
        *field = value;
    else if (half)
        *field = (*field & 0xffffffffull) | value << 32;
    else
        *field = (*field & ~0xffffffffull) | (uint32_t)value;
}

static void write_status(struct virtio_pci *vp, uint8_t v)
{
    if (!v) {
        reset(vp);
        return;
    }
    if ((v & VIRTIO_STATUS_FEATURES_OK) && !(vp->status & VIRTIO_STATUS_FEATURES_OK) &&
        ((vp->driver_features & ~vp->device_features) || !(vp->driver_features & VIRTIO_F_VERSION_1)))
        v &= (uint8_t)~VIRTIO_STATUS_FEATURES_OK; /* refused: the driver reads it back clear */
    bool now_ok = (v & VIRTIO_STATUS_DRIVER_OK) && !(vp->status & VIRTIO_STATUS_DRIVER_OK);
    vp->status = (uint8_t)((v & ~VIRTIO_STATUS_NEEDS_RESET) | (vp->status & VIRTIO_STATUS_NEEDS_RESET));
    if (now_ok)
        for (unsigned q = 0; q < vp->ops->queues; q++)
            run_queue(vp, q);
}

/* Which field an access at off of width bytes is, at its natural width; -1 if none. */
static int natural_field(unsigned off, unsigned width)
{
    static const struct {
        uint8_t off, width;
    } fields[] = {
        {VIRTIO_COMMON_DFSELECT, 4}, {VIRTIO_COMMON_DF, 4}, {VIRTIO_COMMON_GFSELECT, 4},
        {VIRTIO_COMMON_GF, 4},       {VIRTIO_COMMON_MSIX, 2}, {VIRTIO_COMMON_NUMQ, 2},
        {VIRTIO_COMMON_STATUS, 1},   {VIRTIO_COMMON_CFGGEN, 1}, {VIRTIO_COMMON_Q_SELECT, 2},
        {VIRTIO_COMMON_Q_SIZE, 2},   {VIRTIO_COMMON_Q_MSIX, 2}, {VIRTIO_COMMON_Q_ENABLE, 2},
        {VIRTIO_COMMON_Q_NOFF, 2},   {VIRTIO_COMMON_Q_DESCLO, 8}, {VIRTIO_COMMON_Q_AVAILLO, 8},
        {VIRTIO_COMMON_Q_USEDLO, 8}, {VIRTIO_COMMON_Q_DESCHI, 4}, {VIRTIO_COMMON_Q_AVAILHI, 4},
        {VIRTIO_COMMON_Q_USEDHI, 4}, {VIRTIO_COMMON_Q_DESCLO, 4}, {VIRTIO_COMMON_Q_AVAILLO, 4},
        {VIRTIO_COMMON_Q_USEDLO, 4},
    };
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
        if (fields[i].off == off && fields[i].width == width)
            return (int)off;
    return -1;
}

static void odd_access(struct virtio_pci *vp, const char *what, unsigned off, unsigned width)
{
    if (vp->logged_width)
        return;
    vp->logged_width = true;
    kprintf("VM %s: %s 00:%02x.0: %u-byte write at offset 0x%x of its %s is not a register at its natural width: "
            "ignored (logged once)\n",
            vp->pci.vm_name, vp->ops->name, vp->pci.slot, width, off, what);
}

static void common_write(struct virtio_pci *vp, unsigned off, unsigned width, uint64_t v)
{
    if (natural_field(off, width) < 0) {
        odd_access(vp, "common configuration", off, width);
        return;
    }
    struct virtq *q = selected(vp);
    bool q_writable = q && !q->enabled;
    switch (off) {
    case VIRTIO_COMMON_DFSELECT: vp->dfselect = (uint32_t)v; break;
    case VIRTIO_COMMON_GFSELECT: vp->gfselect = (uint32_t)v; break;
    case VIRTIO_COMMON_GF:
        if (vp->gfselect < 2 && !(vp->status & VIRTIO_STATUS_FEATURES_OK))
            set_half(&vp->driver_features, vp->gfselect, v, 4);
        break;
    case VIRTIO_COMMON_MSIX: vp->msix_config = checked_vector(vp, v); break;
    case VIRTIO_COMMON_STATUS: write_status(vp, (uint8_t)v); break;
    case VIRTIO_COMMON_Q_SELECT: vp->queue_select = (uint16_t)v; break;
    case VIRTIO_COMMON_Q_SIZE:
        if (q_writable)
            q->size = (uint16_t)v;
        break;
    case VIRTIO_COMMON_Q_MSIX:
        if (q)
            q->msix_vector = checked_vector(vp, v);
        break;
    case VIRTIO_COMMON_Q_ENABLE:
        /* 0 is not the driver's to write (4.1.4.3.2); only a reset disables. */
        if (q_writable && v == 1 && !virtq_enable(q, &vp->ram))
            virtio_pci_queue_broken(vp, vp->queue_select, q->why);
        break;
    case VIRTIO_COMMON_Q_DESCLO:
    case VIRTIO_COMMON_Q_DESCHI:
        if (q_writable)
            set_half(&q->desc_gpa, off == VIRTIO_COMMON_Q_DESCHI, v, width);
        break;
    case VIRTIO_COMMON_Q_AVAILLO:
    case VIRTIO_COMMON_Q_AVAILHI:
        if (q_writable)
            set_half(&q->avail_gpa, off == VIRTIO_COMMON_Q_AVAILHI, v, width);
        break;
    case VIRTIO_COMMON_Q_USEDLO:
    case VIRTIO_COMMON_Q_USEDHI:
        if (q_writable)
            set_half(&q->used_gpa, off == VIRTIO_COMMON_Q_USEDHI, v, width);
        break;
    default: break; /* read-only: device_feature, num_queues, config_generation, queue_notify_off */
    }
}

/* ---- BAR 0 ---- */

static struct bus_result bar_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct virtio_pci *vp = dev;
    unsigned region = (unsigned)offset & ~(VIRTIO_PCI_REGION_SIZE - 1);
    unsigned off = (unsigned)offset & (VIRTIO_PCI_REGION_SIZE - 1);
    uint64_t v = 0;
    if (region == VIRTIO_PCI_COMMON_OFF && off + width <= VIRTIO_COMMON_SIZE) {
        uint8_t buf[VIRTIO_COMMON_SIZE];
        common_image(vp, buf);
        memcpy(&v, buf + off, width);
    } else if (region == VIRTIO_PCI_ISR_OFF && off == 0) {
        /* Reading ISR acknowledges it (4.1.4.5). */
        v = vp->isr;
        vp->isr = 0;
        pci_ep_set_intx(&vp->pci, false);
    } else if (region == VIRTIO_PCI_DEVICE_OFF && off + width <= vp->ops->config_len) {
        v = vp->ops->config_read(vp->dev, off, width);
    }
    *value = v;
    return BUS_OK;
}

static struct bus_result bar_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct virtio_pci *vp = dev;
    unsigned region = (unsigned)offset & ~(VIRTIO_PCI_REGION_SIZE - 1);
    unsigned off = (unsigned)offset & (VIRTIO_PCI_REGION_SIZE - 1);
    if (region == VIRTIO_PCI_COMMON_OFF) {
        common_write(vp, off, width, value);
    } else if (region == VIRTIO_PCI_NOTIFY_OFF) {
        /* The queue is the one whose notify address was written; the value is its
         * index again (no VIRTIO_F_NOTIFICATION_DATA). */
        if (off % VIRTIO_PCI_NOTIFY_MULTIPLIER == 0)
            run_queue(vp, off / VIRTIO_PCI_NOTIFY_MULTIPLIER);
        else
            odd_access(vp, "notification area", off, width);
    } else if (region == VIRTIO_PCI_DEVICE_OFF) {
        if (!vp->logged_config_write) {
            vp->logged_config_write = true;
            kprintf("VM %s: %s 00:%02x.0: write to its read-only device configuration at 0x%x ignored (logged "
                    "once)\n",
                    vp->pci.vm_name, vp->ops->name, vp->pci.slot, off);
        }
    } else {
        odd_access(vp, "ISR status", off, width);
    }
    return BUS_OK;
}

const struct bus_ops virtio_pci_bar_ops = {.read = bar_read, .write = bar_write};
