/* Configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2) and the 440FX host bridge
 * (Intel 82441FX datasheet, "PCI configuration registers"). */
#include "vmm/dev/pci_host.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define CFG_VENDOR 0x00
#define CFG_DEVICE 0x02
#define CFG_COMMAND 0x04
#define CFG_STATUS 0x06
#define CFG_REVISION 0x08
#define CFG_CLASS 0x09 /* prog-if, subclass, class */
#define CFG_CACHE_LINE 0x0c
#define CFG_LATENCY 0x0d
#define CFG_HEADER_TYPE 0x0e
#define CFG_SUBSYS_VENDOR 0x2c
#define CFG_SUBSYS 0x2e
#define CMD_MEMORY_MASTER 0x0006
#define STATUS_FASTB2B_DEVSEL_MEDIUM 0x0280
#define PMC_REVISION 0x02
#define CLASS_HOST_BRIDGE 0x060000
#define QEMU_SUBSYS_VENDOR 0x1af4 /* what QEMU's devices carry: guests see the same IDs */
#define QEMU_SUBSYS 0x1100
#define CF9_OFFSET 1

static uint32_t width_ones(unsigned width)
{
    return width >= 4 ? 0xffffffffu : (1u << (8 * width)) - 1;
}

/* ---- the host bridge's own configuration space ---- */

static uint32_t bridge_read(void *dev, unsigned offset, unsigned width)
{
    const uint8_t *cfg = dev;
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint32_t)cfg[offset + i] << (8 * i);
    return v;
}

static void bridge_write(void *dev, unsigned offset, unsigned width, uint32_t value)
{
    uint8_t *cfg = dev;
    for (unsigned i = 0; i < width; i++) {
        unsigned at = offset + i;
        if (at == CFG_CACHE_LINE || at == CFG_LATENCY)
            cfg[at] = (uint8_t)(value >> (8 * i));
    }
}

static const struct pci_function_ops bridge_ops = {.read = bridge_read, .write = bridge_write};

static void put16(uint8_t *p, unsigned at, uint16_t v)
{
    p[at] = (uint8_t)v;
    p[at + 1] = (uint8_t)(v >> 8);
}

static void bridge_reset(uint8_t *cfg)
{
    memset(cfg, 0, PCI_CONFIG_BYTES);
    put16(cfg, CFG_VENDOR, PCI_HOST_VENDOR);
    put16(cfg, CFG_DEVICE, PCI_HOST_DEVICE);
    put16(cfg, CFG_COMMAND, CMD_MEMORY_MASTER);
    put16(cfg, CFG_STATUS, STATUS_FASTB2B_DEVSEL_MEDIUM);
    cfg[CFG_REVISION] = PMC_REVISION;
    cfg[CFG_CLASS] = (uint8_t)CLASS_HOST_BRIDGE;
    cfg[CFG_CLASS + 1] = (uint8_t)(CLASS_HOST_BRIDGE >> 8);
    cfg[CFG_CLASS + 2] = (uint8_t)(CLASS_HOST_BRIDGE >> 16);
    cfg[CFG_HEADER_TYPE] = 0x00;
    put16(cfg, CFG_SUBSYS_VENDOR, QEMU_SUBSYS_VENDOR);
    put16(cfg, CFG_SUBSYS, QEMU_SUBSYS);
}

/* ---- the registry ---- */

static const struct pci_function *find(const struct pci_host *h, uint16_t bdf)
{
    for (unsigned i = 0; i < h->nfn; i++)
        if (h->fn[i].bdf == bdf)
            return &h->fn[i];
    return NULL;
}

int pci_host_add_function(struct pci_host *h, unsigned bus, unsigned device, unsigned function,
                          const struct pci_function_ops *ops, void *dev, const char *owner)
{
    const char *why = NULL;
    int err = -BUS_EINVAL;
    const struct pci_function *other = NULL;
    if (bus > 255 || device > 31 || function > 7)
        why = "no such address";
    else if (!ops || !ops->read || !ops->write)
        why = "it has no config-space handlers";
    else if ((other = find(h, PCI_BDF(bus, device, function))))
        why = "the address is taken", err = -BUS_EOVERLAP;
    else if (h->nfn == PCI_HOST_MAX_FUNCTIONS)
        why = "every slot of the registry is in use", err = -BUS_EFULL;
    if (why) {
        kprintf("VM %s: PCI %s at %02x:%02x.%x not added: %s%s%s\n", h->vm_name, owner ? owner : "(no owner)",
                bus & 0xff, device & 0x1f, function & 7, why, other ? " by " : "", other ? other->owner : "");
        return err;
    }
    h->fn[h->nfn++] = (struct pci_function){.bdf = PCI_BDF(bus, device, function), .ops = ops, .dev = dev,
                                            .owner = owner};
    return 0;
}

uint32_t pci_host_slots(const struct pci_host *h)
{
    uint32_t slots = 0;
    for (unsigned i = 0; i < h->nfn; i++)
        if (h->fn[i].bdf >> 8 == 0 && h->fn[i].bdf)
            slots |= 1u << ((h->fn[i].bdf >> 3) & 31);
    return slots;
}

/* ---- configuration accesses ---- */

static bool aligned(unsigned offset, unsigned width)
{
    return (offset & (width - 1)) == 0;
}

uint32_t pci_host_config_read(struct pci_host *h, uint16_t bdf, unsigned offset, unsigned width)
{
    const struct pci_function *f = find(h, bdf);
    if (!f || offset + width > PCI_CONFIG_BYTES)
        return width_ones(width);
    if (aligned(offset, width))
        return f->ops->read(f->dev, offset, width) & width_ones(width);
    uint32_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (f->ops->read(f->dev, offset + i, 1) & 0xff) << (8 * i);
    return v;
}

void pci_host_config_write(struct pci_host *h, uint16_t bdf, unsigned offset, unsigned width, uint32_t value)
{
    const struct pci_function *f = find(h, bdf);
    if (!f || offset + width > PCI_CONFIG_BYTES)
        return;
    if (aligned(offset, width)) {
        f->ops->write(f->dev, offset, width, value & width_ones(width));
        return;
    }
    for (unsigned i = 0; i < width; i++)
        f->ops->write(f->dev, offset + i, 1, (value >> (8 * i)) & 0xff);
}

/* ---- the ports ---- */

static struct bus_result addr_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct pci_host *h = dev;
    if (offset == 0 && width == 4) {
        *value = h->address;
        return BUS_OK;
    }
    if (offset == CF9_OFFSET && width == 1 && h->cf9_ops)
        return h->cf9_ops->read(h->cf9_dev, 0, 1, value);
    /* Narrower accesses are not the address register: they reach nothing. */
    *value = ~0ull;
    return BUS_OK;
}

static struct bus_result addr_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pci_host *h = dev;
    if (offset == 0 && width == 4)
        h->address = (uint32_t)value & PCI_ADDR_MASK;
    else if (offset == CF9_OFFSET && width == 1 && h->cf9_ops)
        return h->cf9_ops->write(h->cf9_dev, 0, 1, value);
    return BUS_OK;
}

static struct bus_result data_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct pci_host *h = dev;
    if (!(h->address & PCI_ADDR_ENABLE))
        *value = ~0ull;
    else
        *value = pci_host_config_read(h, (uint16_t)(h->address >> 8), (h->address & 0xfc) + (unsigned)offset, width);
    return BUS_OK;
}

static struct bus_result data_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pci_host *h = dev;
    if (h->address & PCI_ADDR_ENABLE)
        pci_host_config_write(h, (uint16_t)(h->address >> 8), (h->address & 0xfc) + (unsigned)offset, width,
                              (uint32_t)value);
    return BUS_OK;
}

static const struct bus_ops addr_ops = {.read = addr_read, .write = addr_write};
static const struct bus_ops data_ops = {.read = data_read, .write = data_write};

int pci_host_attach(struct pci_host *h, struct vm_bus *bus, const struct bus_ops *cf9_ops, void *cf9_dev,
                    const char *vm_name)
{
    memset(h, 0, sizeof(*h));
    h->vm_name = vm_name;
    h->cf9_ops = cf9_ops;
    h->cf9_dev = cf9_dev;
    bridge_reset(h->bridge);
    h->fn[0] = (struct pci_function){.bdf = PCI_BDF(0, 0, 0), .ops = &bridge_ops, .dev = h->bridge,
                                     .owner = "host bridge"};
    h->nfn = 1;
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = PCI_HOST_ADDR_PORT, .len = 4,
                                                  .widths = BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4,
                                                  .ops = &addr_ops, .dev = h, .owner = "PCI config address"});
    if (id < 0)
        return id;
    id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = PCI_HOST_DATA_PORT, .len = 4,
                                              .widths = BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4, .ops = &data_ops,
                                              .dev = h, .owner = "PCI config data"});
    return id < 0 ? id : 0;
}
