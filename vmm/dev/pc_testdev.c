/* QEMU's pc-testdev, register for register. */
#include "vmm/dev/pc_testdev.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define PAGE_MASK_4K 0xfffull

/* The scratch register's bytes at lane (port & 3) for width bytes; a lane run past bit
 * 31 keeps what fits, as QEMU's 32-bit register does. */
static uint32_t lane_mask(uint64_t offset, unsigned width)
{
    uint64_t m = (width >= 4 ? 0xffffffffull : (1ull << (8 * width)) - 1) << (8 * (offset & 3));
    return (uint32_t)m;
}

static struct bus_result scratch_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct pc_testdev *t = dev;
    *value = (t->scratch & lane_mask(offset, width)) >> (8 * (offset & 3));
    return BUS_OK;
}

static struct bus_result scratch_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pc_testdev *t = dev;
    uint32_t m = lane_mask(offset, width);
    t->scratch = (t->scratch & ~m) | ((uint32_t)(value << (8 * (offset & 3))) & m);
    return BUS_OK;
}

static struct bus_result flush_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)dev;
    (void)offset;
    (void)width;
    *value = 0;
    return BUS_OK;
}

static struct bus_result flush_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)offset;
    (void)width;
    struct pc_testdev *t = dev;
    if (t->flush_page)
        t->flush_page(t->flush_ctx, (uint32_t)value & ~PAGE_MASK_4K);
    return BUS_OK;
}

static struct bus_result irq_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)dev;
    (void)offset;
    (void)width;
    *value = ~0ull;
    return BUS_OK;
}

static struct bus_result irq_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pc_testdev *t = dev;
    if (width != 1) {
        if (!t->logged_irq_width) {
            t->logged_irq_width = true;
            kprintf("VM %s: pc-testdev: %u-byte write to IRQ port 0x%lx dropped: the lines take bytes (logged once)\n",
                    t->vm_name, width, PC_TESTDEV_IRQ_PORT + offset);
        }
        return BUS_OK;
    }
    unsigned line = (unsigned)offset;
    bool high = (uint8_t)value != 0;
    if (high)
        t->lines_high |= 1u << line;
    else
        t->lines_high &= ~(1u << line);
    irq_set(&t->irq, line, high);
    return BUS_OK;
}

static struct bus_result iomem_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct pc_testdev *t = dev;
    uint64_t v = 0;
    memcpy(&v, &t->iomem[offset], width);
    *value = v;
    return BUS_OK;
}

static struct bus_result iomem_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct pc_testdev *t = dev;
    memcpy(&t->iomem[offset], &value, width);
    return BUS_OK;
}

static const struct bus_ops scratch_ops = {.read = scratch_read, .write = scratch_write};
static const struct bus_ops flush_ops = {.read = flush_read, .write = flush_write};
static const struct bus_ops irq_ops = {.read = irq_read, .write = irq_write};
static const struct bus_ops iomem_ops = {.read = iomem_read, .write = iomem_write};

void pc_testdev_reset(struct pc_testdev *t)
{
    t->scratch = 0;
    memset(t->iomem, 0, sizeof(t->iomem));
    for (unsigned line = 0; line < PC_TESTDEV_IRQ_LINES; line++)
        if (t->lines_high & (1u << line))
            irq_set(&t->irq, line, false);
    t->lines_high = 0;
}

int pc_testdev_attach(struct pc_testdev *t, struct vm_bus *bus, const struct irq_sink *irq,
                      void (*flush_page)(void *ctx, uint64_t gpa), void *flush_ctx, const char *vm_name)
{
    memset(t, 0, sizeof(*t));
    t->irq = *irq;
    t->flush_page = flush_page;
    t->flush_ctx = flush_ctx;
    t->vm_name = vm_name;
    const uint32_t any = BUS_WIDTH_1 | BUS_WIDTH_2 | BUS_WIDTH_4;
    const struct bus_region regions[] = {
        {BUS_PIO, PC_TESTDEV_SCRATCH_PORT, 4, any, &scratch_ops, t, "pc-testdev scratch"},
        {BUS_PIO, PC_TESTDEV_FLUSH_PORT, 4, BUS_WIDTH_4, &flush_ops, t, "pc-testdev flush page"},
        {BUS_PIO, PC_TESTDEV_BYTE_PORT, 4, BUS_WIDTH_1, &scratch_ops, t, "pc-testdev byte scratch"},
        {BUS_PIO, PC_TESTDEV_IRQ_PORT, PC_TESTDEV_IRQ_LINES, any, &irq_ops, t, "pc-testdev IRQ lines"},
        {BUS_MMIO, PC_TESTDEV_MMIO_BASE, PC_TESTDEV_MMIO_SIZE, any, &iomem_ops, t, "pc-testdev MMIO"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(regions); i++) {
        int id = vm_bus_add(bus, &regions[i]);
        if (id < 0)
            return id;
    }
    return 0;
}
