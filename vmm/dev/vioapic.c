/* The VM's IOAPIC (see vioapic.h). Facts from the 82093AA datasheet: register set and
 * reset values (3.0), redirection entry layout (3.2.4), edge and level semantics. */
#include "vmm/dev/vioapic.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define ID_BITS 0x0f000000u
#define REDIR_LO_BITS 0x0001afffull /* vector, mode, dest mode, polarity, trigger, mask */
#define REDIR_HI_BITS 0xff000000ull /* destination, bits 63:56 */

static uint32_t pin_mode(uint64_t e)
{
    return (e >> 8) & 7;
}

/* Sends pin's message if its state calls for one; lock held. */
static void service(struct vioapic *io, unsigned pin)
{
    uint64_t e = io->redir[pin];
    bool level = e & IOAPIC_REDIR_LEVEL;
    if ((e & IOAPIC_REDIR_MASKED) || (level && (e & IOAPIC_REDIR_REMOTE_IRR)))
        return;
    uint32_t mode = pin_mode(e);
    if (mode == 3 || mode == APIC_DM_SIPI) {
        if (!io->logged_mode) {
            io->logged_mode = true;
            kprintf("VM %s: IOAPIC pin %u has the reserved delivery mode %u: not delivered (logged once)\n",
                    io->vm_name, pin, mode);
        }
        return;
    }
    struct apic_msg m = {
        .dest = (uint32_t)(e >> 56),
        .vector = (uint8_t)e,
        .mode = (uint8_t)mode,
        .logical = e & BIT(11),
        .level = level,
    };
    int r = apic_bus_send(io->apic, &m, NULL);
    if (r == APIC_SEND_NOBODY) {
        io->dropped++;
        if (!io->logged_missing) {
            io->logged_missing = true;
            kprintf("VM %s: IOAPIC pin %u is redirected to %s 0x%x, which the VM does not have: dropped "
                    "(logged once)\n",
                    io->vm_name, pin, m.logical ? "logical destination" : "APIC ID", m.dest);
        }
        return;
    }
    /* Only fixed and lowest-priority interrupts are EOIed, so only they hold the pin. */
    if (level && r > 0 && (mode == APIC_DM_FIXED || mode == APIC_DM_LOWEST))
        io->redir[pin] |= IOAPIC_REDIR_REMOTE_IRR;
}

static void reset(struct vioapic *io)
{
    io->regsel = 0;
    for (unsigned i = 0; i < VIOAPIC_PINS; i++)
        io->redir[i] = IOAPIC_REDIR_MASKED;
}

static void eoi_listener(void *ctx, uint8_t vector)
{
    vioapic_eoi(ctx, vector);
}

void vioapic_init(struct vioapic *io, struct apic_bus *apic, const char *vm_name, uint32_t id)
{
    memset(io, 0, sizeof(*io));
    io->apic = apic;
    io->vm_name = vm_name;
    io->id = (id << 24) & ID_BITS;
    io->arb = io->id;
    reset(io);
    apic_bus_set_eoi_listener(apic, eoi_listener, io);
}

void vioapic_set_irq(struct vioapic *io, unsigned line, bool high)
{
    if (line >= VIOAPIC_PINS)
        return;
    spin_lock(&io->lock);
    bool was = io->levels & BIT(line);
    if (high)
        io->levels |= (uint32_t)BIT(line);
    else
        io->levels &= ~(uint32_t)BIT(line);
    bool level = io->redir[line] & IOAPIC_REDIR_LEVEL;
    if (high && (level || !was))
        service(io, line);
    spin_unlock(&io->lock);
}

static void sink_set(void *ctx, unsigned line, bool high)
{
    vioapic_set_irq(ctx, line, high);
}

struct irq_sink vioapic_irq_sink(struct vioapic *io)
{
    return (struct irq_sink){.set = sink_set, .ctx = io};
}

void vioapic_eoi(struct vioapic *io, uint8_t vector)
{
    spin_lock(&io->lock);
    for (unsigned i = 0; i < VIOAPIC_PINS; i++) {
        uint64_t e = io->redir[i];
        if (!(e & IOAPIC_REDIR_REMOTE_IRR) || (uint8_t)e != vector)
            continue;
        io->redir[i] = e & ~IOAPIC_REDIR_REMOTE_IRR;
        if (io->levels & BIT(i))
            service(io, i);
    }
    spin_unlock(&io->lock);
}

/* Register regsel; lock held. */
static uint32_t read_reg(const struct vioapic *io, uint32_t index)
{
    switch (index) {
    case IOAPIC_REG_ID: return io->id;
    case IOAPIC_REG_VERSION: return VIOAPIC_VERSION_VALUE;
    case IOAPIC_REG_ARB: return io->arb;
    default: break;
    }
    if (index >= IOAPIC_REG_REDIR(0) && index < IOAPIC_REG_REDIR(VIOAPIC_PINS)) {
        uint64_t e = io->redir[(index - IOAPIC_REG_REDIR(0)) / 2];
        return index & 1 ? (uint32_t)(e >> 32) : (uint32_t)e;
    }
    return 0;
}

static void write_reg(struct vioapic *io, uint32_t index, uint32_t value)
{
    if (index == IOAPIC_REG_ID) {
        io->id = value & ID_BITS;
        io->arb = io->id; /* the arbitration ID is loaded from the ID on a write */
        return;
    }
    if (index < IOAPIC_REG_REDIR(0) || index >= IOAPIC_REG_REDIR(VIOAPIC_PINS))
        return; /* version, arbitration: read-only; the rest reserved */
    unsigned pin = (index - IOAPIC_REG_REDIR(0)) / 2;
    uint64_t e = io->redir[pin];
    if (index & 1) {
        e = (e & 0xffffffffull) | ((uint64_t)value << 32 & REDIR_HI_BITS << 32);
    } else {
        e = (e & ~0xffffffffull) | (e & IOAPIC_REDIR_REMOTE_IRR) | (value & REDIR_LO_BITS);
        if (!(e & IOAPIC_REDIR_LEVEL))
            e &= ~IOAPIC_REDIR_REMOTE_IRR; /* an edge pin holds nothing */
    }
    io->redir[pin] = e;
    /* A level pin held asserted delivers once it is unmasked (or re-aimed). */
    if ((e & IOAPIC_REDIR_LEVEL) && (io->levels & BIT(pin)))
        service(io, pin);
}

uint32_t vioapic_read(struct vioapic *io, uint32_t offset)
{
    spin_lock(&io->lock);
    uint32_t v = 0;
    if (offset == IOAPIC_IOREGSEL)
        v = io->regsel;
    else if (offset == IOAPIC_IOWIN)
        v = read_reg(io, io->regsel);
    spin_unlock(&io->lock);
    return v;
}

void vioapic_write(struct vioapic *io, uint32_t offset, uint32_t value)
{
    spin_lock(&io->lock);
    if (offset == IOAPIC_IOREGSEL)
        io->regsel = value & 0xff;
    else if (offset == IOAPIC_IOWIN)
        write_reg(io, io->regsel, value);
    spin_unlock(&io->lock);
}

static struct bus_result window_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    *value = vioapic_read(dev, (uint32_t)offset);
    return BUS_OK;
}

static struct bus_result window_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    vioapic_write(dev, (uint32_t)offset, (uint32_t)value);
    return BUS_OK;
}

static const struct bus_ops window_ops = {.read = window_read, .write = window_write};

int vioapic_attach(struct vioapic *io, struct vm_bus *bus, uint64_t base)
{
    return vm_bus_add(bus, &(struct bus_region){.space = BUS_MMIO, .base = base, .len = VIOAPIC_WINDOW_SIZE,
                                                .widths = BUS_WIDTH_4, .ops = &window_ops, .dev = io,
                                                .owner = "IOAPIC"});
}
