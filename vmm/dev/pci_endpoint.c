/* A PCI endpoint function: config header, capabilities, BARs, INTx and MSI-X (the
 * behaviour is described in pci_endpoint.h). */
#include "vmm/dev/pci_endpoint.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define CFG_VENDOR 0x00
#define CFG_DEVICE 0x02
#define CFG_REVISION 0x08
#define CFG_CLASS 0x09
#define CFG_CACHE_LINE 0x0c
#define CFG_LATENCY 0x0d
#define CFG_SUBSYS_VENDOR 0x2c
#define CFG_SUBSYS 0x2e
#define CFG_BAR_END (PCI_CFG_BAR0 + 4 * PCI_MAX_BARS)
#define CAP_START 0x40
#define MSIX_CAP_LEN 12
#define MSIX_ENTRY_BYTES 16
#define INTA 1
#define BAR_MIN_SIZE 0x1000ull
#define COMMAND_WRITABLE (PCI_CMD_MEMORY | PCI_CMD_MASTER | PCI_CMD_INTX_DISABLE)

static uint32_t get(const uint8_t *p, unsigned at, unsigned width)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint32_t)p[at + i] << (8 * i);
    return v;
}

static void put(uint8_t *p, unsigned at, unsigned width, uint32_t v)
{
    for (unsigned i = 0; i < width; i++)
        p[at + i] = (uint8_t)(v >> (8 * i));
}

void pci_ep_cfg_set(struct pci_endpoint *d, unsigned offset, unsigned width, uint32_t value)
{
    if (offset + width <= PCI_CONFIG_BYTES)
        put(d->cfg, offset, width, value);
}

void pci_ep_init(struct pci_endpoint *d, const struct pci_endpoint_ids *ids, unsigned slot, struct vm_bus *bus,
                     const struct irq_sink *irq, const struct msi_sink *msi, const char *name, const char *vm_name)
{
    memset(d, 0, sizeof(*d));
    d->slot = slot;
    d->bus = bus;
    d->irq = irq;
    d->msi = msi;
    d->name = name;
    d->vm_name = vm_name;
    d->irq_line = PCI_INTX_IRQ(slot);
    d->cap_end = CAP_START;
    put(d->cfg, CFG_VENDOR, 2, ids->vendor);
    put(d->cfg, CFG_DEVICE, 2, ids->device);
    d->cfg[CFG_REVISION] = ids->revision;
    put(d->cfg, CFG_CLASS, 3, ids->class_code);
    put(d->cfg, CFG_SUBSYS_VENDOR, 2, ids->subsys_vendor);
    put(d->cfg, CFG_SUBSYS, 2, ids->subsys);
    d->cfg[PCI_CFG_INT_PIN] = INTA;
    d->cfg[PCI_CFG_INT_LINE] = (uint8_t)d->irq_line;
    put(d->wmask, PCI_CFG_COMMAND, 2, COMMAND_WRITABLE);
    d->wmask[CFG_CACHE_LINE] = 0xff;
    d->wmask[CFG_LATENCY] = 0xff;
    d->wmask[PCI_CFG_INT_LINE] = 0xff;
}

unsigned pci_ep_add_cap(struct pci_endpoint *d, uint8_t id, unsigned len)
{
    unsigned at = ALIGN_UP(d->cap_end, 4);
    if (len < 2 || at + len > PCI_CONFIG_BYTES)
        return 0;
    d->cfg[at] = id;
    d->cfg[at + 1] = 0;
    if (d->last_cap)
        d->cfg[d->last_cap + 1] = (uint8_t)at;
    else
        d->cfg[PCI_CFG_CAP_PTR] = (uint8_t)at;
    put(d->cfg, PCI_CFG_STATUS, 2, get(d->cfg, PCI_CFG_STATUS, 2) | PCI_STATUS_CAPS);
    d->last_cap = (uint8_t)at;
    d->cap_end = (uint8_t)MIN(at + len, 0xffu);
    return at;
}

bool pci_ep_add_bar(struct pci_endpoint *d, unsigned index, uint64_t size, const struct bus_ops *ops, void *dev,
                        const char *owner)
{
    if (index >= PCI_MAX_BARS || size < BAR_MIN_SIZE || (size & (size - 1)) || size > (1ull << 31) ||
        d->bar[index].size || !ops)
        return false;
    d->bar[index] = (struct pci_bar){.size = size, .ops = ops, .dev = dev, .owner = owner};
    return true;
}

/* ---- BAR decoding ---- */

static uint32_t sizing_pattern(const struct pci_bar *b)
{
    return (uint32_t)~(b->size - 1);
}

static void bar_update(struct pci_endpoint *d, struct pci_bar *b)
{
    bool decode = get(d->cfg, PCI_CFG_COMMAND, 2) & PCI_CMD_MEMORY;
    bool want = decode && b->value && b->value != sizing_pattern(b);
    if (!want) {
        if (b->range_id > 0)
            vm_bus_remove(d->bus, b->range_id);
        b->range_id = 0;
        return;
    }
    if (b->range_id > 0 && b->mapped_at == b->value)
        return;
    if (b->range_id > 0 && vm_bus_move(d->bus, b->range_id, b->value) < 0) {
        vm_bus_remove(d->bus, b->range_id);
        b->range_id = 0;
    }
    if (b->range_id <= 0) {
        int id = vm_bus_add(d->bus, &(struct bus_region){.space = BUS_MMIO, .base = b->value, .len = b->size,
                                                         .widths = BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4 |
                                                                   BUS_WIDTH_8,
                                                         .ops = b->ops, .dev = b->dev, .owner = b->owner});
        b->range_id = id > 0 ? id : 0;
    }
    b->mapped_at = b->value;
}

static void bars_update(struct pci_endpoint *d)
{
    for (unsigned i = 0; i < PCI_MAX_BARS; i++)
        if (d->bar[i].size)
            bar_update(d, &d->bar[i]);
}

/* ---- interrupts ---- */

static void intx_update(struct pci_endpoint *d)
{
    bool disabled = get(d->cfg, PCI_CFG_COMMAND, 2) & PCI_CMD_INTX_DISABLE;
    uint32_t status = get(d->cfg, PCI_CFG_STATUS, 2) & ~PCI_STATUS_INTX;
    put(d->cfg, PCI_CFG_STATUS, 2, status | (d->intx_level ? PCI_STATUS_INTX : 0));
    irq_set(d->irq, d->irq_line, d->intx_level && !disabled && !pci_ep_msix_enabled(d));
}

void pci_ep_set_intx(struct pci_endpoint *d, bool level)
{
    d->intx_level = level;
    intx_update(d);
}

static uint16_t msix_control(const struct pci_endpoint *d)
{
    return d->msix_cap ? (uint16_t)get(d->cfg, d->msix_cap + 2, 2) : 0;
}

bool pci_ep_msix_enabled(const struct pci_endpoint *d)
{
    return msix_control(d) & PCI_MSIX_CTRL_ENABLE;
}

static bool vector_masked(const struct pci_endpoint *d, unsigned v)
{
    return (msix_control(d) & PCI_MSIX_CTRL_MASK_ALL) || (d->msix[v].ctrl & PCI_MSIX_ENTRY_MASKED);
}

static void msix_send(struct pci_endpoint *d, unsigned v)
{
    const struct pci_msix_entry *e = &d->msix[v];
    if (d->msi && d->msi->send)
        d->msi->send(d->msi->ctx, (uint64_t)e->addr_hi << 32 | e->addr_lo, e->data);
}

void pci_ep_msix_notify(struct pci_endpoint *d, unsigned v)
{
    if (v >= d->msix_vectors || !pci_ep_msix_enabled(d))
        return;
    if (vector_masked(d, v))
        d->msix_pending |= 1u << v;
    else
        msix_send(d, v);
}

/* Pending vectors whose masks have gone are sent now (PCI 3.0, 6.8.2.9). */
static void msix_flush_pending(struct pci_endpoint *d)
{
    if (!pci_ep_msix_enabled(d))
        return;
    for (unsigned v = 0; v < d->msix_vectors; v++)
        if ((d->msix_pending & (1u << v)) && !vector_masked(d, v)) {
            d->msix_pending &= ~(1u << v);
            msix_send(d, v);
        }
}

static struct bus_result msix_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct pci_endpoint *d = dev;
    uint64_t v = 0;
    for (unsigned half = 0; half < width; half += 4) {
        uint64_t off = offset + half;
        uint32_t dw = 0;
        if (off < (uint64_t)d->msix_vectors * MSIX_ENTRY_BYTES && !(off & 3))
            dw = ((const uint32_t *)&d->msix[off / MSIX_ENTRY_BYTES])[(off % MSIX_ENTRY_BYTES) / 4];
        else if (off == PCI_MSIX_PBA_OFFSET)
            dw = d->msix_pending;
        v |= (uint64_t)dw << (8 * half);
    }
    *value = v;
    return BUS_OK;
}

static struct bus_result msix_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pci_endpoint *d = dev;
    for (unsigned half = 0; half < width; half += 4) {
        uint64_t off = offset + half;
        if (off >= (uint64_t)d->msix_vectors * MSIX_ENTRY_BYTES || (off & 3))
            continue; /* the PBA and the rest of the BAR are read-only */
        uint32_t *dw = &((uint32_t *)&d->msix[off / MSIX_ENTRY_BYTES])[(off % MSIX_ENTRY_BYTES) / 4];
        *dw = (uint32_t)(value >> (8 * half));
        if ((off % MSIX_ENTRY_BYTES) == 12)
            *dw &= PCI_MSIX_ENTRY_MASKED; /* vector control: the rest is reserved */
    }
    msix_flush_pending(d);
    return BUS_OK;
}

static const struct bus_ops msix_ops = {.read = msix_read, .write = msix_write};

bool pci_ep_add_msix(struct pci_endpoint *d, unsigned bar, unsigned vectors)
{
    if (!vectors || vectors > PCI_MSIX_MAX_VECTORS || d->msix_cap)
        return false;
    if (!pci_ep_add_bar(d, bar, BAR_MIN_SIZE, &msix_ops, d, "PCI MSI-X table"))
        return false;
    unsigned at = pci_ep_add_cap(d, PCI_CAP_ID_MSIX, MSIX_CAP_LEN);
    if (!at)
        return false;
    d->msix_cap = (uint8_t)at;
    d->msix_bar = bar;
    d->msix_vectors = vectors;
    put(d->cfg, at + 2, 2, vectors - 1);        /* table size - 1; disabled, unmasked */
    put(d->cfg, at + 4, 4, 0 | bar);            /* table at offset 0 */
    put(d->cfg, at + 8, 4, PCI_MSIX_PBA_OFFSET | bar);
    d->wmask[at + 3] = (uint8_t)((PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASK_ALL) >> 8);
    for (unsigned v = 0; v < vectors; v++)
        d->msix[v].ctrl = PCI_MSIX_ENTRY_MASKED;
    return true;
}

/* ---- config space ---- */

static uint32_t cfg_read(void *dev, unsigned offset, unsigned width)
{
    struct pci_endpoint *d = dev;
    if (offset >= PCI_CFG_BAR0 && offset < CFG_BAR_END) {
        /* Registers are dword-aligned and offset + width never crosses one. */
        const struct pci_bar *b = &d->bar[(offset - PCI_CFG_BAR0) / 4];
        uint8_t dw[4];
        put(dw, 0, 4, b->value);
        return get(dw, offset & 3, width);
    }
    return get(d->cfg, offset, width);
}

static void cfg_write(void *dev, unsigned offset, unsigned width, uint32_t value)
{
    struct pci_endpoint *d = dev;
    if (offset >= PCI_CFG_BAR0 && offset < CFG_BAR_END) {
        struct pci_bar *b = &d->bar[(offset - PCI_CFG_BAR0) / 4];
        if (!b->size)
            return; /* an unimplemented BAR reads 0 whatever is written, so sizing sees "none" */
        uint8_t dw[4];
        put(dw, 0, 4, b->value);
        put(dw, offset & 3, width, value);
        b->value = get(dw, 0, 4) & sizing_pattern(b);
        bar_update(d, b);
        return;
    }
    uint16_t old_ctrl = msix_control(d);
    for (unsigned i = 0; i < width; i++) {
        unsigned at = offset + i;
        uint8_t m = d->wmask[at];
        d->cfg[at] = (uint8_t)((d->cfg[at] & ~m) | ((value >> (8 * i)) & m));
    }
    if (offset < PCI_CFG_COMMAND + 2 && offset + width > PCI_CFG_COMMAND) {
        bars_update(d);
        intx_update(d);
    }
    if (d->msix_cap && msix_control(d) != old_ctrl) {
        intx_update(d); /* MSI-X enabled: INTA# is not used (PCI 3.0, 6.8.2) */
        msix_flush_pending(d);
    }
}

const struct pci_function_ops pci_ep_cfg_ops = {.read = cfg_read, .write = cfg_write};

bool pci_ep_plug(struct pci_endpoint *d, struct pci_host *host, uint64_t *next_base)
{
    uint64_t at = *next_base;
    for (unsigned i = 0; i < PCI_MAX_BARS; i++) {
        struct pci_bar *b = &d->bar[i];
        if (!b->size)
            continue;
        at = ALIGN_UP(at, b->size);
        if (at + b->size > PCI_MMIO_WINDOW_END) {
            kprintf("VM %s: PCI %s: its BARs do not fit below 0x%lx\n", d->vm_name, d->name,
                    (uint64_t)PCI_MMIO_WINDOW_END);
            return false;
        }
        b->value = (uint32_t)at;
        at += b->size;
    }
    put(d->cfg, PCI_CFG_COMMAND, 2, PCI_CMD_MEMORY);
    bars_update(d);
    for (unsigned i = 0; i < PCI_MAX_BARS; i++)
        if (d->bar[i].size && d->bar[i].range_id <= 0)
            return false; /* the bus said why */
    if (pci_host_add_function(host, 0, d->slot, 0, &pci_ep_cfg_ops, d, d->name) < 0)
        return false;
    *next_base = at;
    return true;
}
