/* PCI config space access (ECAM or ports 0xCF8/0xCFC) and a brute-force scan of
 * every bus. The ECAM path is plain memory access, so host tests drive it with a
 * buffer standing in for the window; the port path is never reached there. */
#include "drivers/pci.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"

#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA 0xcfc

struct ecam_window {
    hpa_t base; /* bus 0 of the segment, as in the MCFG */
    uint16_t seg;
    uint8_t start_bus, end_bus;
};

static struct ecam_window windows[ACPI_MAX_MCFG];
static size_t window_count;
static spinlock_t port_lock = SPINLOCK_INIT; /* the CF8/CFC pair is not atomic */

static struct pci_device devices[PCI_MAX_DEVICES];
static size_t device_count;

void pci_init(const struct acpi_info *acpi)
{
    window_count = 0;
    device_count = 0;
    if (!acpi || !acpi->have_mcfg) {
        kprintf("PCI: no MCFG, using configuration ports 0xcf8/0xcfc\n");
        return;
    }
    for (uint32_t i = 0; i < acpi->mcfg_count && i < ACPI_MAX_MCFG; i++) {
        const struct acpi_mcfg_seg *m = &acpi->mcfg[i];
        if (m->start_bus > m->end_bus)
            continue;
        hpa_t start = m->base + ((uint64_t)m->start_bus << 20);
        uint64_t size = ((uint64_t)m->end_bus - m->start_bus + 1) << 20;
        if (!paging_map_mmio(start, size)) {
            kprintf("PCI: cannot map ECAM for segment %u at 0x%lx (%lu MiB), segment skipped\n",
                    m->segment, start, size >> 20);
            continue;
        }
        windows[window_count++] = (struct ecam_window){
            .base = m->base, .seg = m->segment, .start_bus = m->start_bus, .end_bus = m->end_bus};
        kprintf("PCI: ECAM segment %u buses %u-%u at 0x%lx\n", m->segment, m->start_bus,
                m->end_bus, m->base);
    }
    if (!window_count)
        kprintf("PCI: no usable ECAM window, using configuration ports 0xcf8/0xcfc\n");
}

bool pci_using_ecam(void)
{
    return window_count != 0;
}

/* ---- access ---------------------------------------------------------------------- */

enum access_kind { ACCESS_NONE, ACCESS_ECAM, ACCESS_PORT };

/* Decides how (and whether) an access of `width` bytes at `off` can be done. */
static enum access_kind route(struct pci_addr a, uint16_t off, unsigned width, hva_t *ecam)
{
    if (a.dev > 31 || a.fn > 7 || (off & (width - 1)))
        return ACCESS_NONE;
    for (size_t i = 0; i < window_count; i++) {
        const struct ecam_window *w = &windows[i];
        if (w->seg == a.seg && a.bus >= w->start_bus && a.bus <= w->end_bus) {
            if (off >= PCI_ECAM_CONFIG_SIZE)
                return ACCESS_NONE;
            *ecam = w->base + pci_ecam_offset(a.bus, a.dev, a.fn, off);
            return ACCESS_ECAM;
        }
    }
    /* Buses no ECAM window covers (or no MCFG at all) may still answer on ports. */
    if (a.seg == 0 && off < PCI_CONFIG_SIZE)
        return ACCESS_PORT;
    return ACCESS_NONE;
}

static uint32_t port_read(struct pci_addr a, uint16_t off, unsigned width)
{
    uint64_t flags = spin_lock_irqsave(&port_lock);
    outl(PCI_CONFIG_ADDRESS, pci_cf8_address(a.bus, a.dev, a.fn, off));
    uint16_t port = PCI_CONFIG_DATA + (off & 3);
    uint32_t v = width == 1 ? inb(port) : width == 2 ? inw(port) : inl(port);
    spin_unlock_irqrestore(&port_lock, flags);
    return v;
}

static void port_write(struct pci_addr a, uint16_t off, unsigned width, uint32_t v)
{
    uint64_t flags = spin_lock_irqsave(&port_lock);
    outl(PCI_CONFIG_ADDRESS, pci_cf8_address(a.bus, a.dev, a.fn, off));
    uint16_t port = PCI_CONFIG_DATA + (off & 3);
    if (width == 1)
        outb(port, (uint8_t)v);
    else if (width == 2)
        outw(port, (uint16_t)v);
    else
        outl(port, v);
    spin_unlock_irqrestore(&port_lock, flags);
}

static uint32_t cfg_read(struct pci_addr a, uint16_t off, unsigned width)
{
    hva_t va = 0;
    switch (route(a, off, width, &va)) {
    case ACCESS_ECAM:
        return width == 1 ? mmio_read8(va) : width == 2 ? mmio_read16(va) : mmio_read32(va);
    case ACCESS_PORT:
        return port_read(a, off, width);
    default:
        return width == 1 ? 0xff : width == 2 ? 0xffff : 0xffffffffu;
    }
}

static void cfg_write(struct pci_addr a, uint16_t off, unsigned width, uint32_t v)
{
    hva_t va = 0;
    switch (route(a, off, width, &va)) {
    case ACCESS_ECAM:
        if (width == 1)
            mmio_write8(va, (uint8_t)v);
        else if (width == 2)
            mmio_write16(va, (uint16_t)v);
        else
            mmio_write32(va, v);
        break;
    case ACCESS_PORT:
        port_write(a, off, width, v);
        break;
    default:
        break;
    }
}

uint8_t pci_read8(struct pci_addr a, uint16_t off) { return (uint8_t)cfg_read(a, off, 1); }
uint16_t pci_read16(struct pci_addr a, uint16_t off) { return (uint16_t)cfg_read(a, off, 2); }
uint32_t pci_read32(struct pci_addr a, uint16_t off) { return cfg_read(a, off, 4); }
void pci_write8(struct pci_addr a, uint16_t off, uint8_t v) { cfg_write(a, off, 1, v); }
void pci_write16(struct pci_addr a, uint16_t off, uint16_t v) { cfg_write(a, off, 2, v); }
void pci_write32(struct pci_addr a, uint16_t off, uint32_t v) { cfg_write(a, off, 4, v); }

/* ---- enumeration ----------------------------------------------------------------- */

void pci_decode_header(struct pci_addr a, const uint32_t hdr[4], struct pci_device *d)
{
    d->addr = a;
    d->vendor = (uint16_t)hdr[0];
    d->device = (uint16_t)(hdr[0] >> 16);
    d->revision = (uint8_t)hdr[2];
    d->prog_if = (uint8_t)(hdr[2] >> 8);
    d->subclass = (uint8_t)(hdr[2] >> 16);
    d->class_code = (uint8_t)(hdr[2] >> 24);
    uint8_t ht = (uint8_t)(hdr[3] >> 16);
    d->header_type = ht & 0x7f;
    d->multifunction = ht & PCI_HEADER_MULTIFUNCTION;
}

static bool vendor_present(uint16_t vendor)
{
    /* Absent functions read as all ones; some bridges return 0 instead. */
    return vendor != PCI_VENDOR_NONE && vendor != 0;
}

static size_t scan_function(struct pci_addr a)
{
    uint32_t hdr[4];
    for (unsigned i = 0; i < 4; i++)
        hdr[i] = pci_read32(a, (uint16_t)(i * 4));
    struct pci_device d;
    pci_decode_header(a, hdr, &d);
    if (!vendor_present(d.vendor))
        return 0;
    kprintf("PCI: %04x:%02x:%02x.%x %04x:%04x class %02x.%02x.%02x\n", a.seg, a.bus, a.dev, a.fn,
            d.vendor, d.device, d.class_code, d.subclass, d.prog_if);
    if (device_count < PCI_MAX_DEVICES)
        devices[device_count++] = d;
    return 1;
}

static size_t scan_bus(uint16_t seg, uint8_t bus)
{
    size_t found = 0;
    for (uint8_t dev = 0; dev < 32; dev++) {
        struct pci_addr a = {.seg = seg, .bus = bus, .dev = dev, .fn = 0};
        if (!vendor_present(pci_read16(a, PCI_VENDOR_ID)))
            continue;
        uint8_t fns = (pci_read8(a, PCI_HEADER_TYPE) & PCI_HEADER_MULTIFUNCTION) ? 8 : 1;
        for (uint8_t fn = 0; fn < fns; fn++) {
            a.fn = fn;
            found += scan_function(a);
        }
    }
    return found;
}

size_t pci_enumerate(void)
{
    size_t found = 0;
    device_count = 0;
    if (window_count) {
        for (size_t i = 0; i < window_count; i++)
            for (unsigned bus = windows[i].start_bus; bus <= windows[i].end_bus; bus++)
                found += scan_bus(windows[i].seg, (uint8_t)bus);
    } else {
        for (unsigned bus = 0; bus < 256; bus++)
            found += scan_bus(0, (uint8_t)bus);
    }
    if (found > device_count)
        kprintf("PCI: %zu devices found, only the first %zu recorded\n", found, device_count);
    kprintf("PCI: %zu devices\n", found);
    return found;
}

size_t pci_device_count(void)
{
    return device_count;
}

const struct pci_device *pci_device_at(size_t i)
{
    return i < device_count ? &devices[i] : NULL;
}

const struct pci_device *pci_find_class(uint8_t class_code, uint8_t subclass, size_t *cursor)
{
    for (size_t i = *cursor; i < device_count; i++) {
        if (devices[i].class_code == class_code && devices[i].subclass == subclass) {
            *cursor = i + 1;
            return &devices[i];
        }
    }
    *cursor = device_count;
    return NULL;
}
