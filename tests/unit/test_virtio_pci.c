/* virtio over PCI (vmm/dev/virtio_pci.c, pci_endpoint.c, virtio_blk.c, virtio_console.c,
 * msi_apic.c) driven as Linux's virtio_pci_modern drives it, through the host bridge's
 * ports and the VM's MMIO bus: config space and the capability walk, BAR sizing and
 * moving, feature negotiation, queue set-up in a fake guest RAM, block requests (read,
 * write, read-only, flush, ID, bad ones), interrupts through INTx/ISR and MSI-X (masking,
 * pending bits), MSI into a virtual LAPIC, and malformed requests and queues putting the
 * device into DEVICE_NEEDS_RESET with one log line until it is reset.
 * SOURCES: vmm/dev/virtio_blk.c vmm/dev/virtio_console.c vmm/dev/virtio_pci.c vmm/dev/virtqueue.c vmm/dev/pci_endpoint.c vmm/dev/pci_host.c vmm/dev/msi_apic.c vmm/dev/apic_bus.c vmm/dev/vlapic.c vmm/dev/console.c vmm/lib/console_buffer.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/virtio_blk.h"
#include "vmm/dev/virtio_console.h"
#include "vmm/dev/msi_apic.h"
#include "vmm/dev/vlapic.h"
#include "tests/unit/console_capture.h"

#define RAM_SIZE (4u << 20)
#define DISK_SIZE (64u << 10)
#define BLK_SLOT 1
#define CON_SLOT 2
#define QMEM 0x10000u  /* queue q's rings at QMEM + q * 0x4000 */
#define DATA 0x100000u /* request buffers */

static uint8_t *ram_bytes, *disk;
static struct dev_ram ram;
static struct vm_bus *bus;
static struct pci_host host;
static struct virtio_blk *blk;
static struct virtio_console *con;

static bool line_level[VM_IRQ_LINES];
static unsigned line_changes;
static void fake_irq(void *ctx, unsigned line, bool high)
{
    (void)ctx;
    assert_true(line < VM_IRQ_LINES);
    line_changes += line_level[line] != high;
    line_level[line] = high;
}
static const struct irq_sink irq = {.set = fake_irq};

static unsigned msis;
static uint64_t msi_addr;
static uint32_t msi_data;
static void fake_msi(void *ctx, uint64_t address, uint32_t data)
{
    (void)ctx;
    msis++;
    msi_addr = address;
    msi_data = data;
}
static const struct msi_sink msi = {.send = fake_msi};

/* ---- the guest's side: ports, MMIO, config space ---- */

static void out(uint16_t port, unsigned width, uint64_t v)
{
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, true, &v)), BUS_DONE);
}

static uint64_t in(uint16_t port, unsigned width)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_pio(bus, port, width, false, &v)), BUS_DONE);
    return v & (width == 4 ? 0xffffffffu : (1u << (8 * width)) - 1);
}

static uint32_t cfg(unsigned dev, unsigned reg, unsigned width)
{
    out(0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
    return (uint32_t)in((uint16_t)(0xcfc + (reg & 3)), width);
}

static void cfg_w(unsigned dev, unsigned reg, unsigned width, uint32_t v)
{
    out(0xcf8, 4, 0x80000000u | dev << 11 | (reg & 0xfc));
    out((uint16_t)(0xcfc + (reg & 3)), width, v);
}

static uint64_t rd(uint64_t gpa, unsigned width)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, gpa, width, false, &v)), BUS_DONE);
    return v;
}

static void wr(uint64_t gpa, unsigned width, uint64_t v)
{
    assert_int_equal(bus_action(vm_bus_access(bus, BUS_MMIO, gpa, width, true, &v)), BUS_DONE);
}

/* What virtio_pci_modern_probe finds through the capability list. */
struct layout {
    uint64_t common, isr, device, notify;
    uint32_t mult, device_len;
    unsigned msix_cap;
    uint64_t msix_table;
};

static struct layout probe(unsigned dev)
{
    struct layout L = {0};
    assert_true(cfg(dev, PCI_CFG_STATUS, 2) & PCI_STATUS_CAPS);
    unsigned seen = 0;
    for (unsigned p = cfg(dev, PCI_CFG_CAP_PTR, 1); p; p = cfg(dev, p + 1, 1)) {
        assert_true(p >= 0x40 && p < 0x100 && !(p & 3));
        assert_true(++seen < 48); /* no loop */
        unsigned id = cfg(dev, p, 1);
        if (id == PCI_CAP_ID_MSIX) {
            L.msix_cap = p;
            uint32_t t = cfg(dev, p + 4, 4);
            L.msix_table = (cfg(dev, PCI_CFG_BAR0 + 4 * (t & 7), 4) & ~0xfu) + (t & ~7u);
            continue;
        }
        assert_int_equal(id, PCI_CAP_ID_VENDOR);
        unsigned type = cfg(dev, p + 3, 1), barno = cfg(dev, p + 4, 1);
        assert_int_equal(barno, 0);
        uint64_t base = cfg(dev, PCI_CFG_BAR0, 4) & ~0xfu;
        uint64_t at = base + cfg(dev, p + 8, 4);
        uint32_t len = cfg(dev, p + 12, 4);
        assert_true(cfg(dev, p + 8, 4) + len <= VIRTIO_PCI_BAR_SIZE);
        switch (type) {
        case VIRTIO_PCI_CAP_COMMON_CFG: L.common = at; assert_true(len >= 0x38); break;
        case VIRTIO_PCI_CAP_ISR_CFG: L.isr = at; assert_true(len >= 1); break;
        case VIRTIO_PCI_CAP_DEVICE_CFG: L.device = at; L.device_len = len; break;
        case VIRTIO_PCI_CAP_NOTIFY_CFG:
            L.notify = at;
            assert_int_equal(cfg(dev, p + 2, 1), 20);
            L.mult = cfg(dev, p + 16, 4);
            break;
        default: fail_msg("unknown virtio capability type %u", type);
        }
    }
    assert_true(L.common && L.isr && L.notify && L.msix_cap);
    return L;
}

static void status_set(const struct layout *L, uint8_t bits)
{
    wr(L->common + VIRTIO_COMMON_STATUS, 1, rd(L->common + VIRTIO_COMMON_STATUS, 1) | bits);
}

static uint64_t device_features(const struct layout *L)
{
    wr(L->common + VIRTIO_COMMON_DFSELECT, 4, 0);
    uint64_t lo = rd(L->common + VIRTIO_COMMON_DF, 4);
    wr(L->common + VIRTIO_COMMON_DFSELECT, 4, 1);
    return lo | rd(L->common + VIRTIO_COMMON_DF, 4) << 32;
}

/* Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether it was kept. */
static bool negotiate(const struct layout *L, uint64_t features)
{
    wr(L->common + VIRTIO_COMMON_STATUS, 1, 0);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_STATUS, 1), 0);
    status_set(L, VIRTIO_STATUS_ACKNOWLEDGE);
    status_set(L, VIRTIO_STATUS_DRIVER);
    for (unsigned half = 0; half < 2; half++) {
        wr(L->common + VIRTIO_COMMON_GFSELECT, 4, half);
        wr(L->common + VIRTIO_COMMON_GF, 4, (uint32_t)(features >> (32 * half)));
    }
    status_set(L, VIRTIO_STATUS_FEATURES_OK);
    return rd(L->common + VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_FEATURES_OK;
}

static uint64_t qdesc(unsigned q) { return QMEM + q * 0x4000u; }
static uint64_t qavail(unsigned q) { return qdesc(q) + 0x1000; }
static uint64_t qused(unsigned q) { return qdesc(q) + 0x2000; }

static uint16_t qsize_set[VIRTIO_MAX_QUEUES], avail_idx[VIRTIO_MAX_QUEUES];
static uint16_t notify_off[VIRTIO_MAX_QUEUES];

static void setup_queue(const struct layout *L, unsigned q, uint16_t size, uint16_t vector)
{
    memset(ram_bytes + qdesc(q), 0, 0x3000); /* fresh rings, as the driver allocates them */
    wr(L->common + VIRTIO_COMMON_Q_SELECT, 2, q);
    assert_true(rd(L->common + VIRTIO_COMMON_Q_SIZE, 2) >= size);
    wr(L->common + VIRTIO_COMMON_Q_SIZE, 2, size);
    wr(L->common + VIRTIO_COMMON_Q_MSIX, 2, vector);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_Q_MSIX, 2), vector);
    /* 64-bit fields as two 32-bit halves, as vp_iowrite64_twopart does. */
    wr(L->common + VIRTIO_COMMON_Q_DESCLO, 4, (uint32_t)qdesc(q));
    wr(L->common + VIRTIO_COMMON_Q_DESCHI, 4, 0);
    wr(L->common + VIRTIO_COMMON_Q_AVAILLO, 4, (uint32_t)qavail(q));
    wr(L->common + VIRTIO_COMMON_Q_AVAILHI, 4, 0);
    wr(L->common + VIRTIO_COMMON_Q_USEDLO, 4, (uint32_t)qused(q));
    wr(L->common + VIRTIO_COMMON_Q_USEDHI, 4, 0);
    notify_off[q] = (uint16_t)rd(L->common + VIRTIO_COMMON_Q_NOFF, 2);
    wr(L->common + VIRTIO_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_Q_ENABLE, 2), 1);
    qsize_set[q] = size;
    avail_idx[q] = 0;
}

static void desc(unsigned q, unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
    uint8_t *d = ram_bytes + qdesc(q) + 16 * i;
    memcpy(d, &addr, 8);
    memcpy(d + 8, &len, 4);
    memcpy(d + 12, &flags, 2);
    memcpy(d + 14, &next, 2);
}

static void kick(const struct layout *L, unsigned q, uint16_t head)
{
    uint8_t *a = ram_bytes + qavail(q);
    memcpy(a + 4 + 2 * (avail_idx[q] % qsize_set[q]), &head, 2);
    avail_idx[q]++;
    memcpy(a + 2, &avail_idx[q], 2);
    wr(L->notify + (uint64_t)notify_off[q] * L->mult, 2, q);
}

static uint16_t used_idx(unsigned q)
{
    uint16_t v;
    memcpy(&v, ram_bytes + qused(q) + 2, 2);
    return v;
}

static void used_elem(unsigned q, unsigned slot, uint32_t *id, uint32_t *len)
{
    memcpy(id, ram_bytes + qused(q) + 4 + 8 * slot, 4);
    memcpy(len, ram_bytes + qused(q) + 8 + 8 * slot, 4);
}

/* A block request in descriptors 0 (header), 1 (data, unless len 0) and 2 (status). */
static uint8_t blk_request(const struct layout *L, uint32_t type, uint64_t sector, uint32_t len, bool data_in)
{
    uint8_t *h = ram_bytes + DATA;
    memset(h, 0, 16);
    memcpy(h, &type, 4);
    memcpy(h + 8, &sector, 8);
    ram_bytes[DATA + 0x10000] = 0xee;
    if (len) {
        desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
        desc(0, 1, DATA + 0x1000, len, VIRTQ_DESC_F_NEXT | (data_in ? VIRTQ_DESC_F_WRITE : 0), 2);
    } else {
        desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
    }
    desc(0, 2, DATA + 0x10000, 1, VIRTQ_DESC_F_WRITE, 0);
    uint16_t before = used_idx(0);
    kick(L, 0, 0);
    assert_int_equal(used_idx(0), (uint16_t)(before + 1));
    return ram_bytes[DATA + 0x10000];
}

/* ---- fixture ---- */

static struct layout blk_layout;

static void make_blk(bool readonly)
{
    assert_true(virtio_blk_init(blk, disk, DISK_SIZE, readonly, BLK_SLOT, bus, &irq, &msi, &ram, "test"));
    uint64_t next = PCI_BAR_ALLOC_BASE;
    assert_true(pci_ep_plug(&blk->vp.pci, &host, &next));
    blk_layout = probe(BLK_SLOT);
}

static int setup(void **state)
{
    (void)state;
    ram_bytes = calloc(1, RAM_SIZE);
    disk = malloc(DISK_SIZE);
    bus = calloc(1, sizeof(*bus));
    blk = calloc(1, sizeof(*blk));
    con = calloc(1, sizeof(*con));
    assert_true(ram_bytes && disk && bus && blk && con);
    for (unsigned i = 0; i < DISK_SIZE; i++)
        disk[i] = (uint8_t)(i * 7 + i / 512);
    ram = (struct dev_ram){.hva = ram_bytes, .size = RAM_SIZE};
    vm_bus_init(bus, "test");
    assert_int_equal(pci_host_attach(&host, bus, NULL, NULL, "test"), 0);
    memset(line_level, 0, sizeof line_level);
    line_changes = 0;
    msis = 0;
    capture_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(ram_bytes);
    free(disk);
    free(bus);
    free(blk);
    free(con);
    return 0;
}

/* ---- config space ---- */

static void test_config_space_as_linux_reads_it(void **state)
{
    (void)state;
    make_blk(false);
    assert_int_equal(cfg(BLK_SLOT, 0x00, 2), 0x1af4);
    assert_int_equal(cfg(BLK_SLOT, 0x02, 2), 0x1042);
    assert_int_equal(cfg(BLK_SLOT, 0x08, 1), 1); /* revision 1: modern */
    assert_int_equal(cfg(BLK_SLOT, 0x08, 4) >> 8, 0x010000); /* class, subclass, prog-if */
    assert_int_equal(cfg(BLK_SLOT, 0x0e, 1), 0); /* type-0 header, one function */
    assert_int_equal(cfg(BLK_SLOT, 0x2c, 2), 0x1af4);
    assert_int_equal(cfg(BLK_SLOT, 0x2e, 2), 0x1100);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_INT_PIN, 1), 1);                   /* INTA# */
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_INT_LINE, 1), PCI_INTX_IRQ(BLK_SLOT)); /* as a BIOS sets it */
    assert_int_equal(PCI_INTX_IRQ(BLK_SLOT), 11);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_COMMAND, 2) & PCI_CMD_MEMORY, PCI_CMD_MEMORY);
    /* BARs where firmware put them: 16 KiB virtio registers, then 4 KiB for MSI-X. */
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0, 4), PCI_BAR_ALLOC_BASE);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0 + 4, 4), PCI_BAR_ALLOC_BASE + 0x4000);
    for (unsigned b = 2; b < 6; b++)
        assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0 + 4 * b, 4), 0);
    assert_int_equal(blk_layout.common, PCI_BAR_ALLOC_BASE + VIRTIO_PCI_COMMON_OFF);
    assert_int_equal(blk_layout.isr, PCI_BAR_ALLOC_BASE + VIRTIO_PCI_ISR_OFF);
    assert_int_equal(blk_layout.device, PCI_BAR_ALLOC_BASE + VIRTIO_PCI_DEVICE_OFF);
    assert_int_equal(blk_layout.notify, PCI_BAR_ALLOC_BASE + VIRTIO_PCI_NOTIFY_OFF);
    assert_int_equal(blk_layout.mult, 4);
    /* MSI-X: 2 vectors (config + the queue), table and PBA in BAR 1, disabled. */
    assert_int_equal(cfg(BLK_SLOT, blk_layout.msix_cap + 2, 2), 1);
    assert_int_equal(cfg(BLK_SLOT, blk_layout.msix_cap + 8, 4), PCI_MSIX_PBA_OFFSET | 1);
    assert_int_equal(blk_layout.msix_table, PCI_BAR_ALLOC_BASE + 0x4000);
    /* Read-only registers stay. */
    cfg_w(BLK_SLOT, 0x00, 4, 0);
    assert_int_equal(cfg(BLK_SLOT, 0x00, 2), 0x1af4);
    cfg_w(BLK_SLOT, PCI_CFG_INT_PIN, 1, 3);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_INT_PIN, 1), 1);
    /* The interrupt line is the OS's to rewrite. */
    cfg_w(BLK_SLOT, PCI_CFG_INT_LINE, 1, 5);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_INT_LINE, 1), 5);
    assert_int_equal(pci_host_slots(&host), 1u << BLK_SLOT);
}

static void test_bar_sizing_and_moving(void **state)
{
    (void)state;
    make_blk(false);
    uint64_t old = PCI_BAR_ALLOC_BASE;
    /* Linux's __pci_read_base: decoding off, all-ones, read the mask, restore. */
    uint16_t cmd = (uint16_t)cfg(BLK_SLOT, PCI_CFG_COMMAND, 2);
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cmd & ~PCI_CMD_MEMORY);
    assert_null(vm_bus_find(bus, BUS_MMIO, old));
    cfg_w(BLK_SLOT, PCI_CFG_BAR0, 4, 0xffffffff);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0, 4), 0xffffc000u); /* 16 KiB, 32-bit memory */
    cfg_w(BLK_SLOT, PCI_CFG_BAR0 + 4, 4, 0xffffffff);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0 + 4, 4), 0xfffff000u);
    cfg_w(BLK_SLOT, PCI_CFG_BAR0 + 8, 4, 0xffffffff); /* no BAR 2 */
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0 + 8, 4), 0);
    /* Decoding on with the sizing pattern still in place maps nothing at the top. */
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cmd);
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xffffc000u));
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cmd & ~PCI_CMD_MEMORY);
    /* The OS moves both BARs and turns decoding back on. */
    cfg_w(BLK_SLOT, PCI_CFG_BAR0, 4, 0xfe100000u);
    cfg_w(BLK_SLOT, PCI_CFG_BAR0 + 4, 4, 0xfe104000u);
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfe100000u));
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cmd);
    assert_null(vm_bus_find(bus, BUS_MMIO, old));
    assert_non_null(vm_bus_find(bus, BUS_MMIO, 0xfe100000u));
    struct layout L = probe(BLK_SLOT);
    assert_int_equal(L.common, 0xfe100000u);
    assert_int_equal(L.msix_table, 0xfe104000u);
    assert_int_equal(rd(L.common + VIRTIO_COMMON_NUMQ, 2), 1);
    /* Unaligned bits are dropped; moving a mapped BAR while decoding stays on works. */
    cfg_w(BLK_SLOT, PCI_CFG_BAR0, 4, 0xfe200123u);
    assert_int_equal(cfg(BLK_SLOT, PCI_CFG_BAR0, 4), 0xfe200000u);
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfe100000u));
    assert_int_equal(rd(0xfe200000u + VIRTIO_COMMON_NUMQ, 2), 1);
    /* Onto the MSI-X BAR: the bus refuses the overlap (logged), BAR 0 decodes nowhere. */
    cfg_w(BLK_SLOT, PCI_CFG_BAR0, 4, 0xfe104000u);
    assert_logged("overlaps PCI MSI-X table");
    assert_null(vm_bus_find(bus, BUS_MMIO, 0xfe200000u));
    assert_int_equal(rd(0xfe104000u + 12, 4), PCI_MSIX_ENTRY_MASKED); /* still the MSI-X table */
    cfg_w(BLK_SLOT, PCI_CFG_BAR0, 4, 0xfe300000u);
    assert_int_equal(rd(0xfe300000u + VIRTIO_COMMON_NUMQ, 2), 1);
}

/* ---- features and status ---- */

static void test_feature_negotiation(void **state)
{
    (void)state;
    make_blk(true);
    const struct layout *L = &blk_layout;
    uint64_t f = device_features(L);
    assert_true(f & VIRTIO_F_VERSION_1);
    assert_true(f & VIRTIO_BLK_F_RO);
    assert_true(f & VIRTIO_BLK_F_FLUSH);
    assert_true(f & VIRTIO_BLK_F_SEG_MAX);
    assert_false(f & (BIT(28) | BIT(29))); /* no indirect descriptors, no event index */
    wr(L->common + VIRTIO_COMMON_DFSELECT, 4, 7);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_DF, 4), 0);
    /* A legacy driver (no VERSION_1) is refused; so is a feature not offered. */
    assert_false(negotiate(L, f & ~VIRTIO_F_VERSION_1));
    assert_false(negotiate(L, f | BIT(28)));
    assert_true(negotiate(L, f));
    /* Once FEATURES_OK is set the driver's features are fixed. */
    wr(L->common + VIRTIO_COMMON_GFSELECT, 4, 0);
    wr(L->common + VIRTIO_COMMON_GF, 4, 0);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_GF, 4), (uint32_t)f);
    /* Device configuration: capacity in sectors, seg_max, blk_size. */
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_CAPACITY, 4), DISK_SIZE / 512);
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_CAPACITY + 4, 4), 0);
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_SEG_MAX, 4), VIRTIO_BLK_QUEUE_SIZE - 2);
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_BLK_SIZE, 4), 512);
    assert_int_equal(L->device_len, VIRTIO_BLK_CFG_LEN);
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_LEN - 4, 4), 0); /* fields of features not offered */
    assert_int_equal(rd(L->device + VIRTIO_BLK_CFG_LEN, 4), 0);     /* past the structure */
    /* Reset clears status and features. */
    wr(L->common + VIRTIO_COMMON_STATUS, 1, 0);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_STATUS, 1), 0);
    wr(L->common + VIRTIO_COMMON_GFSELECT, 4, 1);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_GF, 4), 0);
}

static void test_odd_widths_in_common_config(void **state)
{
    (void)state;
    make_blk(false);
    const struct layout *L = &blk_layout;
    /* A byte write into queue_select is not the register at its width: dropped, once
     * logged. Reads of any width see the bytes. */
    wr(L->common + VIRTIO_COMMON_Q_SELECT, 1, 1);
    wr(L->common + VIRTIO_COMMON_Q_SELECT + 1, 1, 1);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_Q_SELECT, 2), 0);
    assert_int_equal(capture_count(), 1);
    assert_logged("1-byte write at offset 0x16 of its common configuration");
    assert_int_equal(rd(L->common + VIRTIO_COMMON_NUMQ, 1), 1);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_Q_SIZE, 4) & 0xffff, VIRTIO_BLK_QUEUE_SIZE);
    /* No such queue: size 0. */
    wr(L->common + VIRTIO_COMMON_Q_SELECT, 2, 5);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_Q_SIZE, 2), 0);
    /* An MSI-X vector beyond the table reads back as NO_VECTOR. */
    wr(L->common + VIRTIO_COMMON_MSIX, 2, 9);
    assert_int_equal(rd(L->common + VIRTIO_COMMON_MSIX, 2), 0xffff);
}

/* ---- requests and interrupts ---- */

static void start_blk(bool readonly, uint16_t queue_vector)
{
    make_blk(readonly);
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    setup_queue(&blk_layout, 0, 16, queue_vector);
    status_set(&blk_layout, VIRTIO_STATUS_DRIVER_OK);
}

static void test_read_request_with_intx(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    unsigned line = PCI_INTX_IRQ(BLK_SLOT);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 3, 1024, true), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram_bytes + DATA + 0x1000, disk + 3 * 512, 1024);
    uint32_t id, len;
    used_elem(0, 0, &id, &len);
    assert_int_equal(id, 0);
    assert_int_equal(len, 1025); /* the data and the status byte */
    /* INTA# is asserted and status bit 3 says so, until the ISR is read. */
    assert_true(line_level[line]);
    assert_true(cfg(BLK_SLOT, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    assert_int_equal(rd(blk_layout.isr, 1), 1);
    assert_false(line_level[line]);
    assert_false(cfg(BLK_SLOT, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    assert_int_equal(rd(blk_layout.isr, 1), 0);
    /* Interrupt disable in the command register keeps the line low. */
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cfg(BLK_SLOT, PCI_CFG_COMMAND, 2) | PCI_CMD_INTX_DISABLE);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
    assert_false(line_level[line]);
    assert_true(cfg(BLK_SLOT, PCI_CFG_STATUS, 2) & PCI_STATUS_INTX);
    cfg_w(BLK_SLOT, PCI_CFG_COMMAND, 2, cfg(BLK_SLOT, PCI_CFG_COMMAND, 2) & ~PCI_CMD_INTX_DISABLE);
    assert_true(line_level[line]);
    assert_int_equal(rd(blk_layout.isr, 1), 1);
    /* VIRTQ_AVAIL_F_NO_INTERRUPT: no interrupt at all. */
    uint16_t no_intr = VIRTQ_AVAIL_F_NO_INTERRUPT;
    memcpy(ram_bytes + qavail(0), &no_intr, 2);
    unsigned changes = line_changes;
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
    assert_int_equal(line_changes, changes);
    assert_int_equal(msis, 0);
    assert_int_equal(capture_count(), 0);
}

static void program_vector(unsigned v, uint32_t addr, uint32_t data, bool masked)
{
    uint64_t e = blk_layout.msix_table + 16 * v;
    wr(e, 4, addr);
    wr(e + 4, 4, 0);
    wr(e + 8, 4, data);
    wr(e + 12, 4, masked ? PCI_MSIX_ENTRY_MASKED : 0);
}

static void test_read_request_with_msix(void **state)
{
    (void)state;
    make_blk(false);
    /* Linux's msix_capability_init: enable with all masked, fill the table, unmask. */
    unsigned ctl = blk_layout.msix_cap + 2;
    cfg_w(BLK_SLOT, ctl, 2, cfg(BLK_SLOT, ctl, 2) | PCI_MSIX_CTRL_ENABLE | PCI_MSIX_CTRL_MASK_ALL);
    program_vector(0, 0xfee00000u, 0x0030, false);
    program_vector(1, 0xfee01000u, 0x0041, false);
    cfg_w(BLK_SLOT, ctl, 2, cfg(BLK_SLOT, ctl, 2) & ~PCI_MSIX_CTRL_MASK_ALL);
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    wr(blk_layout.common + VIRTIO_COMMON_MSIX, 2, 0);
    assert_int_equal(rd(blk_layout.common + VIRTIO_COMMON_MSIX, 2), 0);
    setup_queue(&blk_layout, 0, 16, 1);
    status_set(&blk_layout, VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 10, 512, true), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram_bytes + DATA + 0x1000, disk + 10 * 512, 512);
    assert_int_equal(msis, 1);
    assert_int_equal(msi_addr, 0xfee01000u);
    assert_int_equal(msi_data, 0x41);
    assert_false(line_level[PCI_INTX_IRQ(BLK_SLOT)]); /* MSI-X on: INTA# unused */
    /* A masked vector becomes pending (PBA bit 1) and goes out when unmasked. */
    wr(blk_layout.msix_table + 16 + 12, 4, PCI_MSIX_ENTRY_MASKED);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 11, 512, true), VIRTIO_BLK_S_OK);
    assert_int_equal(msis, 1);
    assert_int_equal(rd(blk_layout.msix_table - 0x0 + PCI_MSIX_PBA_OFFSET, 4), 2);
    wr(blk_layout.msix_table + 16 + 12, 4, 0);
    assert_int_equal(msis, 2);
    assert_int_equal(rd(blk_layout.msix_table + PCI_MSIX_PBA_OFFSET, 4), 0);
    /* The function mask works the same way; the PBA is read-only. */
    cfg_w(BLK_SLOT, ctl, 2, cfg(BLK_SLOT, ctl, 2) | PCI_MSIX_CTRL_MASK_ALL);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 12, 512, true), VIRTIO_BLK_S_OK);
    wr(blk_layout.msix_table + PCI_MSIX_PBA_OFFSET, 4, 0);
    assert_int_equal(rd(blk_layout.msix_table + PCI_MSIX_PBA_OFFSET, 4), 2);
    assert_int_equal(msis, 2);
    cfg_w(BLK_SLOT, ctl, 2, cfg(BLK_SLOT, ctl, 2) & ~PCI_MSIX_CTRL_MASK_ALL);
    assert_int_equal(msis, 3);
    /* A queue without a vector gets none. */
    wr(blk_layout.common + VIRTIO_COMMON_STATUS, 1, 0);
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    setup_queue(&blk_layout, 0, 16, 0xffff);
    status_set(&blk_layout, VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
    assert_int_equal(msis, 3);
    assert_false(line_level[PCI_INTX_IRQ(BLK_SLOT)]);
}

static void test_write_flush_id_and_errors(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    memset(ram_bytes + DATA + 0x1000, 0x5a, 1024);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_OUT, 4, 1024, false), VIRTIO_BLK_S_OK);
    for (unsigned i = 0; i < 1024; i++)
        assert_int_equal(disk[4 * 512 + i], 0x5a);
    assert_int_equal(disk[6 * 512], (uint8_t)(6 * 512 * 7 + 6)); /* not past the data */
    uint32_t id, len;
    used_elem(0, 0, &id, &len);
    assert_int_equal(len, 1); /* only the status byte was written */
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_FLUSH, 0, 0, false), VIRTIO_BLK_S_OK);
    memset(ram_bytes + DATA + 0x1000, 0, 64);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_GET_ID, 0, 20, true), VIRTIO_BLK_S_OK);
    assert_string_equal((char *)ram_bytes + DATA + 0x1000, "keel-test");
    assert_int_equal(blk_request(&blk_layout, 99, 0, 512, true), VIRTIO_BLK_S_UNSUPP);
    /* Past the end, straddling the end, a huge sector, not whole sectors. */
    uint64_t last = DISK_SIZE / 512;
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, last, 512, true), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, last - 1, 1024, true), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_OUT, ~0ull, 512, false), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 100, true), VIRTIO_BLK_S_IOERR);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, last - 1, 512, true), VIRTIO_BLK_S_OK);
    assert_int_equal(capture_count(), 0);
}

static void test_readonly_disk_refuses_writes(void **state)
{
    (void)state;
    start_blk(true, 0xffff);
    uint8_t before[1024];
    memcpy(before, disk, sizeof before);
    memset(ram_bytes + DATA + 0x1000, 0x77, 1024);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_OUT, 0, 1024, false), VIRTIO_BLK_S_IOERR);
    assert_memory_equal(disk, before, sizeof before);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 1024, true), VIRTIO_BLK_S_OK);
    assert_memory_equal(ram_bytes + DATA + 0x1000, before, 1024);
}

static void test_notify_before_driver_ok_waits(void **state)
{
    (void)state;
    make_blk(false);
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    setup_queue(&blk_layout, 0, 16, 0xffff);
    desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 2);
    desc(0, 2, DATA + 0x10000, 1, VIRTQ_DESC_F_WRITE, 0);
    memset(ram_bytes + DATA, 0, 16);
    uint32_t flush = VIRTIO_BLK_T_FLUSH;
    memcpy(ram_bytes + DATA, &flush, 4);
    kick(&blk_layout, 0, 0);
    assert_int_equal(used_idx(0), 0);
    /* DRIVER_OK looks at every queue. */
    status_set(&blk_layout, VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(used_idx(0), 1);
}

/* ---- malformed requests and queues ---- */

static void expect_needs_reset(const char *why)
{
    assert_true(rd(blk_layout.common + VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
    assert_int_equal(capture_count(), 1);
    assert_logged("VM test: virtio-blk 00:01.0: queue 0: ");
    assert_logged(why);
    assert_logged("the device needs a reset");
}

static void test_request_without_status_byte(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    uint8_t before = rd(blk_layout.common + VIRTIO_COMMON_CFGGEN, 1);
    desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(0, 1, DATA + 0x1000, 512, 0, 0); /* read-only: no status byte to write */
    memset(ram_bytes + DATA, 0, 16);
    memset(ram_bytes + DATA + 0x1000, 0x33, 512);
    kick(&blk_layout, 0, 0);
    expect_needs_reset("without a device-writable status byte");
    assert_int_equal(ram_bytes[DATA + 0x1000 + 511], 0x33); /* nothing written into it */
    assert_int_equal(used_idx(0), 0);
    /* The configuration changed: generation, ISR bit 2 and INTA#. */
    assert_int_not_equal(rd(blk_layout.common + VIRTIO_COMMON_CFGGEN, 1), before);
    assert_true(line_level[PCI_INTX_IRQ(BLK_SLOT)]);
    assert_int_equal(rd(blk_layout.isr, 1), 2);
    /* Further notifications do nothing and log nothing. */
    kick(&blk_layout, 0, 0);
    assert_int_equal(capture_count(), 1);
    assert_int_equal(used_idx(0), 0);
    /* The driver resets and starts again: the device works. */
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    assert_false(rd(blk_layout.common + VIRTIO_COMMON_STATUS, 1) & VIRTIO_STATUS_NEEDS_RESET);
    setup_queue(&blk_layout, 0, 16, 0xffff);
    status_set(&blk_layout, VIRTIO_STATUS_DRIVER_OK);
    assert_int_equal(blk_request(&blk_layout, VIRTIO_BLK_T_IN, 0, 512, true), VIRTIO_BLK_S_OK);
}

static void test_request_with_short_header(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    desc(0, 0, DATA, 8, VIRTQ_DESC_F_NEXT, 2);
    desc(0, 2, DATA + 0x10000, 1, VIRTQ_DESC_F_WRITE, 0);
    kick(&blk_layout, 0, 0);
    expect_needs_reset("without its 16-byte header");
}

static void test_looping_chain_needs_reset(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(0, 1, DATA + 0x1000, 512, VIRTQ_DESC_F_NEXT, 0);
    kick(&blk_layout, 0, 0);
    expect_needs_reset("longer than the queue size 16 (a loop)");
}

static void test_buffer_outside_ram_needs_reset(void **state)
{
    (void)state;
    start_blk(false, 0xffff);
    desc(0, 0, DATA, 16, VIRTQ_DESC_F_NEXT, 1);
    desc(0, 1, RAM_SIZE - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
    desc(0, 2, DATA + 0x10000, 1, VIRTQ_DESC_F_WRITE, 0);
    kick(&blk_layout, 0, 0);
    expect_needs_reset("not wholly inside the VM's RAM");
}

static void test_bad_queue_address_needs_reset(void **state)
{
    (void)state;
    make_blk(false);
    assert_true(negotiate(&blk_layout, device_features(&blk_layout)));
    wr(blk_layout.common + VIRTIO_COMMON_Q_SELECT, 2, 0);
    wr(blk_layout.common + VIRTIO_COMMON_Q_SIZE, 2, 16);
    wr(blk_layout.common + VIRTIO_COMMON_Q_DESCLO, 8, RAM_SIZE); /* as one 64-bit write */
    wr(blk_layout.common + VIRTIO_COMMON_Q_AVAILLO, 8, qavail(0));
    wr(blk_layout.common + VIRTIO_COMMON_Q_USEDLO, 8, qused(0));
    assert_int_equal(rd(blk_layout.common + VIRTIO_COMMON_Q_DESCLO, 8), RAM_SIZE);
    wr(blk_layout.common + VIRTIO_COMMON_Q_ENABLE, 2, 1);
    assert_int_equal(rd(blk_layout.common + VIRTIO_COMMON_Q_ENABLE, 2), 0);
    expect_needs_reset("descriptor table at 0x400000 (256 bytes) is not inside the VM's RAM");
}

/* ---- virtio-console ---- */

static void test_console_output(void **state)
{
    (void)state;
    assert_true(virtio_console_init(con, CON_SLOT, bus, &irq, &msi, &ram, "test"));
    uint64_t next = PCI_BAR_ALLOC_BASE;
    assert_true(pci_ep_plug(&con->vp.pci, &host, &next));
    assert_int_equal(cfg(CON_SLOT, 0x02, 2), 0x1043);
    assert_int_equal(cfg(CON_SLOT, PCI_CFG_INT_LINE, 1), 10);
    struct layout L = probe(CON_SLOT);
    assert_int_equal(L.device_len, VIRTIO_CONSOLE_CFG_LEN);
    assert_int_equal(rd(L.common + VIRTIO_COMMON_NUMQ, 2), 2);
    assert_true(negotiate(&L, device_features(&L)));
    assert_int_equal(device_features(&L), VIRTIO_F_VERSION_1);
    setup_queue(&L, VIRTIO_CONSOLE_RX, 8, 0xffff);
    setup_queue(&L, VIRTIO_CONSOLE_TX, 8, 0xffff);
    status_set(&L, VIRTIO_STATUS_DRIVER_OK);
    /* A receive buffer waits: Keel has no input yet. */
    desc(VIRTIO_CONSOLE_RX, 0, DATA + 0x8000, 64, VIRTQ_DESC_F_WRITE, 0);
    kick(&L, VIRTIO_CONSOLE_RX, 0);
    assert_int_equal(used_idx(VIRTIO_CONSOLE_RX), 0);
    memcpy(ram_bytes + DATA, "hello from ", 11);
    memcpy(ram_bytes + DATA + 0x100, "hvc0\nsecond", 11);
    desc(VIRTIO_CONSOLE_TX, 0, DATA, 11, VIRTQ_DESC_F_NEXT, 1);
    desc(VIRTIO_CONSOLE_TX, 1, DATA + 0x100, 11, 0, 0);
    kick(&L, VIRTIO_CONSOLE_TX, 0);
    assert_int_equal(used_idx(VIRTIO_CONSOLE_TX), 1);
    assert_logged_line("test: hello from hvc0");
    assert_int_equal(capture_count(), 1); /* "second" waits for its newline */
    assert_true(line_level[10]);
    assert_int_equal(rd(L.isr, 1), 1);
}

/* ---- MSI into a virtual LAPIC ---- */

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return 0;
}
static const struct dev_clock clk = {.now_ns = fake_now};
static unsigned kicked[2];
static void fake_kick(void *ctx, uint32_t vcpu)
{
    (void)ctx;
    kicked[vcpu]++;
}

static bool irr(const struct vlapic *l, uint8_t v)
{
    return l->regs[APIC_IRR / 4 + (v / 32) * 4] >> (v % 32) & 1;
}

static void test_msi_reaches_the_lapic(void **state)
{
    (void)state;
    struct apic_bus *apic = calloc(1, sizeof(*apic));
    struct vlapic *l[2];
    for (int i = 0; i < 2; i++)
        assert_non_null(l[i] = aligned_alloc(4096, sizeof(struct vlapic)));
    struct apic_bus_config c = {.vm_name = "test", .clock = &clk, .tsc_hz = 1000000000, .timer_hz = 1000000000,
                                .ram_size = RAM_SIZE, .phys_bits = 39, .kick = fake_kick};
    assert_true(apic_bus_init(apic, &c));
    for (int i = 0; i < 2; i++) {
        assert_true(apic_bus_add_vcpu(apic, l[i], (uint32_t)i));
        vlapic_mmio_write(l[i], APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    }
    struct msi_apic m;
    msi_apic_init(&m, apic, "test");
    /* Physical destination 1, vector 0x51, fixed, edge: what Linux programs. */
    m.sink.send(m.sink.ctx, 0xfee01000u, 0x0051);
    assert_true(irr(l[1], 0x51));
    assert_false(irr(l[0], 0x51));
    assert_int_equal(kicked[1], 1);
    /* Not the APIC window, a missing APIC ID, SMI: nobody, logged once. */
    msi_apic_send(&m, 0xfec00000u, 0x0052);
    msi_apic_send(&m, 0xfee05000u, 0x0053);
    msi_apic_send(&m, 0xfee00000u, 0x0254);
    assert_int_equal(m.dropped, 3);
    assert_int_equal(capture_count(), 1);
    assert_logged("MSI write 0x52 to 0xfec00000 reaches nobody");
    assert_false(irr(l[0], 0x53) || irr(l[1], 0x53) || irr(l[0], 0x54));
    for (int i = 0; i < 2; i++)
        free(l[i]);
    free(apic);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_config_space_as_linux_reads_it),
        T(test_bar_sizing_and_moving),
        T(test_feature_negotiation),
        T(test_odd_widths_in_common_config),
        T(test_read_request_with_intx),
        T(test_read_request_with_msix),
        T(test_write_flush_id_and_errors),
        T(test_readonly_disk_refuses_writes),
        T(test_notify_before_driver_ok_waits),
        T(test_request_without_status_byte),
        T(test_request_with_short_header),
        T(test_looping_chain_needs_reset),
        T(test_buffer_outside_ram_needs_reset),
        T(test_bad_queue_address_needs_reset),
        T(test_console_output),
        T(test_msi_reaches_the_lapic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
