/* IOAPIC redirection (see ioapic.h). */
#include "drivers/ioapic.h"
#include "drivers/acpi.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"

#define IOREGSEL 0x00
#define IOWIN 0x10
#define IOAPIC_MMIO_SIZE 0x20

#define IOAPIC_REG_ID 0x00
#define IOAPIC_REG_VER 0x01
#define IOAPIC_REG_REDTBL 0x10

#define RTE_ACTIVE_LOW BIT(13)
#define RTE_LEVEL BIT(15)
#define RTE_MASKED BIT(16)

/* MPS INTI flags of an interrupt source override. */
#define INTI_POLARITY_MASK 0x3
#define INTI_POLARITY_HIGH 0x1
#define INTI_POLARITY_LOW 0x3
#define INTI_TRIGGER_MASK 0xc
#define INTI_TRIGGER_EDGE 0x4
#define INTI_TRIGGER_LEVEL 0xc

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define PIC_VECTOR_BASE 0x20 /* a spurious IRQ7/15 must not look like an exception */

#define MIN_VECTOR 0x20

struct ioapic {
    hva_t base;
    uint8_t id;
    uint32_t gsi_base;
    uint32_t entries;
};

static struct ioapic ioapics[ACPI_MAX_IOAPICS];
static uint32_t nioapics;
static const struct acpi_info *madt;
/* IOREGSEL/IOWIN is a two-step access shared by all CPUs. */
static spinlock_t ioapic_lock = SPINLOCK_INIT;

static uint32_t reg_read(const struct ioapic *io, uint32_t reg)
{
    mmio_write32(io->base + IOREGSEL, reg);
    return mmio_read32(io->base + IOWIN);
}

static void reg_write(const struct ioapic *io, uint32_t reg, uint32_t v)
{
    mmio_write32(io->base + IOREGSEL, reg);
    mmio_write32(io->base + IOWIN, v);
}

static void pic_disable(void)
{
    /* ICW1-4: cascade, vectors 0x20/0x28, slave on IRQ2, 8086 mode; then mask all. */
    outb(PIC1_CMD, 0x11);
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, PIC_VECTOR_BASE);
    outb(PIC2_DATA, PIC_VECTOR_BASE + 8);
    outb(PIC1_DATA, 0x04);
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, 0xff);
    outb(PIC2_DATA, 0xff);
}

static const struct ioapic *overlapping(uint32_t first, uint32_t last)
{
    for (uint32_t i = 0; i < nioapics; i++) {
        const struct ioapic *o = &ioapics[i];
        if (first < o->gsi_base + o->entries && last >= o->gsi_base)
            return o;
    }
    return NULL;
}

void ioapic_init(const struct acpi_info *acpi)
{
    madt = acpi;
    nioapics = 0;
    if (acpi->pcat_compat)
        pic_disable();
    if (acpi->ioapic_count == 0) {
        kprintf("IOAPIC: none in the MADT; device interrupts unavailable\n");
        return;
    }

    for (uint32_t i = 0; i < acpi->ioapic_count && i < ACPI_MAX_IOAPICS; i++) {
        const struct acpi_ioapic *a = &acpi->ioapics[i];
        if (a->address == 0 || (a->address & 0xf)) {
            kprintf("IOAPIC: id %u has a bad address 0x%x, ignored\n", a->id, a->address);
            continue;
        }
        if (!paging_map_mmio(a->address, IOAPIC_MMIO_SIZE)) {
            kprintf("IOAPIC: id %u at 0x%x cannot be mapped, ignored\n", a->id, a->address);
            continue;
        }
        struct ioapic io = {.base = a->address, .id = a->id, .gsi_base = a->gsi_base};
        uint32_t ver = reg_read(&io, IOAPIC_REG_VER);
        if (ver == 0xffffffffu) {
            kprintf("IOAPIC: id %u at 0x%x does not answer, ignored\n", a->id, a->address);
            continue;
        }
        io.entries = ((ver >> 16) & 0xff) + 1;
        uint32_t last = a->gsi_base + io.entries - 1;
        if (last < a->gsi_base) {
            kprintf("IOAPIC: id %u at 0x%x has GSI base %u, too high for %u entries; ignored\n", a->id,
                    a->address, a->gsi_base, io.entries);
            continue;
        }
        const struct ioapic *clash = overlapping(a->gsi_base, last);
        if (clash) {
            kprintf("IOAPIC: id %u at 0x%x claims GSIs %u-%u, which overlap id %u; ignored\n", a->id,
                    a->address, a->gsi_base, last, clash->id);
            continue;
        }
        for (uint32_t n = 0; n < io.entries; n++) {
            reg_write(&io, IOAPIC_REG_REDTBL + 2 * n, RTE_MASKED);
            reg_write(&io, IOAPIC_REG_REDTBL + 2 * n + 1, 0);
        }
        uint32_t hw_id = (reg_read(&io, IOAPIC_REG_ID) >> 24) & 0xf;
        kprintf("IOAPIC: id %u at 0x%x, version 0x%02x, GSIs %u-%u, all masked%s\n", a->id, a->address,
                ver & 0xff, a->gsi_base, last, hw_id == (a->id & 0xf) ? "" : " (ID register differs from MADT)");
        ioapics[nioapics++] = io;
    }
}

uint32_t ioapic_count(void)
{
    return nioapics;
}

static struct ioapic *find(uint32_t gsi)
{
    for (uint32_t i = 0; i < nioapics; i++)
        if (gsi >= ioapics[i].gsi_base && gsi - ioapics[i].gsi_base < ioapics[i].entries)
            return &ioapics[i];
    return NULL;
}

/* ISA IRQ -> GSI and flags, per the MADT's overrides. */
static uint32_t isa_to_gsi(uint32_t irq, uint32_t *flags)
{
    *flags = 0; /* ISA: edge, active high */
    for (uint32_t i = 0; madt && i < madt->iso_count && i < ACPI_MAX_ISOS; i++) {
        const struct acpi_iso *iso = &madt->isos[i];
        if (iso->bus != 0 || iso->source_irq != irq)
            continue;
        uint16_t pol = iso->flags & INTI_POLARITY_MASK, trig = iso->flags & INTI_TRIGGER_MASK;
        if (pol == INTI_POLARITY_LOW)
            *flags |= IOAPIC_ACTIVE_LOW;
        else if (pol != INTI_POLARITY_HIGH && pol != 0)
            kprintf("IOAPIC: override for IRQ %u has reserved polarity, using active high\n", irq);
        if (trig == INTI_TRIGGER_LEVEL)
            *flags |= IOAPIC_LEVEL;
        else if (trig != INTI_TRIGGER_EDGE && trig != 0)
            kprintf("IOAPIC: override for IRQ %u has reserved trigger mode, using edge\n", irq);
        return iso->gsi;
    }
    return irq;
}

int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t dest_apic_id, uint32_t flags)
{
    uint32_t irq = gsi;
    if (flags & IOAPIC_ISA) {
        if (irq > 15) {
            kprintf("IOAPIC: ISA IRQ %u does not exist\n", irq);
            return -1;
        }
        uint32_t iso_flags;
        gsi = isa_to_gsi(irq, &iso_flags);
        flags = (flags & IOAPIC_MASKED) | iso_flags;
    }
    if (vector < MIN_VECTOR) {
        kprintf("IOAPIC: GSI %u: vector 0x%x is reserved for exceptions\n", gsi, vector);
        return -1;
    }
    if (dest_apic_id > 0xfe) {
        kprintf("IOAPIC: GSI %u: APIC ID %u cannot be addressed without interrupt remapping\n", gsi,
                dest_apic_id);
        return -1;
    }
    struct ioapic *io = find(gsi);
    if (!io) {
        kprintf("IOAPIC: no IOAPIC serves GSI %u\n", gsi);
        return -1;
    }

    uint32_t low = vector;
    if (flags & IOAPIC_LEVEL)
        low |= RTE_LEVEL;
    if (flags & IOAPIC_ACTIVE_LOW)
        low |= RTE_ACTIVE_LOW;
    if (flags & IOAPIC_MASKED)
        low |= RTE_MASKED;
    uint32_t reg = IOAPIC_REG_REDTBL + 2 * (gsi - io->gsi_base);

    uint64_t irqf = spin_lock_irqsave(&ioapic_lock);
    /* Masked while half-written, so no interrupt goes to a stale destination. */
    reg_write(io, reg, RTE_MASKED);
    reg_write(io, reg + 1, dest_apic_id << 24);
    reg_write(io, reg, low);
    spin_unlock_irqrestore(&ioapic_lock, irqf);
    return 0;
}

int ioapic_set_masked(uint32_t gsi, bool masked)
{
    struct ioapic *io = find(gsi);
    if (!io)
        return -1;
    uint32_t reg = IOAPIC_REG_REDTBL + 2 * (gsi - io->gsi_base);
    uint64_t irqf = spin_lock_irqsave(&ioapic_lock);
    uint32_t low = reg_read(io, reg);
    reg_write(io, reg, masked ? (low | RTE_MASKED) : (low & ~RTE_MASKED));
    spin_unlock_irqrestore(&ioapic_lock, irqf);
    return 0;
}
