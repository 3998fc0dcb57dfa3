/* The dual 8259A and its ELCR. The model follows the Intel 8259A datasheet: an IRR bit
 * is a request (latched on a rising edge, or following the pin in level mode), the ISR
 * holds what the CPU acknowledged, and a request reaches INTR only when it outranks
 * everything in service. The slave's INT output is the master's IR2 pin. */
#include "vmm/dev/pic8259.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define ICW1_IC4 0x01
#define ICW1_SNGL 0x02
#define ICW1_LTIM 0x08
#define ICW1 0x10
#define OCW3 0x08
#define OCW3_RIS 0x01
#define OCW3_RR 0x02
#define OCW3_POLL 0x04
#define OCW3_SMM 0x20
#define OCW3_ESMM 0x40
#define ICW4_UPM 0x01
#define ICW4_AEOI 0x02
#define ICW4_BUF 0x08
#define ICW4_SFNM 0x10
#define POLL_INT 0x80
#define MASTER_ICW3 (1u << PIC8259_CASCADE)
#define SLAVE_ICW3 PIC8259_CASCADE

enum { MASTER, SLAVE };

static void PRINTF_LIKE(3, 4) log_once(struct pic8259 *pic, uint32_t what, const char *fmt, ...)
{
    if (pic->logged & what)
        return;
    pic->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: PIC: ", pic->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

/* The priority rank (0 highest) of the best request in mask, or 8 for none. */
static unsigned best_rank(const struct pic8259_chip *c, uint8_t mask)
{
    if (!mask)
        return 8;
    unsigned rank = 0;
    while (!(mask & (1u << ((rank + c->lowest + 1) & 7))))
        rank++;
    return rank;
}

/* The input this chip would interrupt the CPU with now, or -1. */
static int chip_pending(const struct pic8259_chip *c, bool master)
{
    unsigned req = best_rank(c, c->irr & ~c->imr);
    if (req == 8)
        return -1;
    uint8_t blocking = c->isr;
    /* Special mask mode: a level masked while in service no longer holds back the
     * levels below it, which is how a handler lets lower priorities in. */
    if (c->special_mask)
        blocking &= ~c->imr;
    /* Special fully nested mode: the master lets a slave request outrank the slave
     * request already in service, so the slave can sort priorities itself. */
    if (master && c->special_nested)
        blocking &= ~(1u << PIC8259_CASCADE);
    if (req < best_rank(c, blocking))
        return (int)((req + c->lowest + 1) & 7);
    return -1;
}

static void chip_pin(struct pic8259_chip *c, unsigned irq, bool level)
{
    uint8_t bit = (uint8_t)(1u << irq);
    bool was = c->pins & bit;
    if (level)
        c->pins |= bit;
    else
        c->pins &= ~bit;
    if (c->elcr & bit) {
        if (level)
            c->irr |= bit;
        else
            c->irr &= ~bit;
    } else if (level && !was) {
        c->irr |= bit;
    }
}

static void update(struct pic8259 *pic)
{
    chip_pin(&pic->chip[MASTER], PIC8259_CASCADE, chip_pending(&pic->chip[SLAVE], false) >= 0);
    bool intr = chip_pending(&pic->chip[MASTER], true) >= 0;
    if (intr == pic->intr)
        return;
    pic->intr = intr;
    if (pic->intr_changed)
        pic->intr_changed(pic->ctx, intr);
}

/* The chip's half of an INTA cycle (or a poll) for input irq. */
static void chip_ack(struct pic8259_chip *c, unsigned irq)
{
    uint8_t bit = (uint8_t)(1u << irq);
    if (c->auto_eoi) {
        if (c->rotate_in_aeoi)
            c->lowest = (uint8_t)irq;
    } else {
        c->isr |= bit;
    }
    /* A level request stays while its pin is high: it comes back after the EOI. */
    if (!(c->elcr & bit))
        c->irr &= ~bit;
}

uint8_t pic8259_ack(struct pic8259 *pic)
{
    struct pic8259_chip *m = &pic->chip[MASTER], *s = &pic->chip[SLAVE];
    uint8_t vector;
    int irq = chip_pending(m, true);
    if (irq < 0) {
        /* INTR went away before the INTA (the request was dropped or masked). */
        pic->spurious++;
        vector = m->vector_base + 7;
    } else if (irq == PIC8259_CASCADE) {
        chip_ack(m, PIC8259_CASCADE);
        int sirq = chip_pending(s, false);
        if (sirq < 0) {
            pic->spurious++;
            vector = s->vector_base + 7;
        } else {
            chip_ack(s, (unsigned)sirq);
            vector = s->vector_base + (uint8_t)sirq;
        }
    } else {
        chip_ack(m, (unsigned)irq);
        vector = m->vector_base + (uint8_t)irq;
    }
    update(pic);
    return vector;
}

static void chip_reset(struct pic8259_chip *c, uint8_t elcr_mask)
{
    memset(c, 0, sizeof(*c));
    c->lowest = 7;
    c->elcr_mask = elcr_mask;
}

void pic8259_reset(struct pic8259 *pic)
{
    chip_reset(&pic->chip[MASTER], PIC8259_ELCR_MASTER_MASK);
    chip_reset(&pic->chip[SLAVE], PIC8259_ELCR_SLAVE_MASK);
    bool was = pic->intr;
    pic->intr = false;
    if (was && pic->intr_changed)
        pic->intr_changed(pic->ctx, false);
}

static void icw1(struct pic8259 *pic, struct pic8259_chip *c, uint8_t v)
{
    if (v & (ICW1_SNGL | ICW1_LTIM))
        log_once(pic, PIC_LOG_MODE, "ICW1 0x%02x asks for %s, which the PC's wiring does not have; ignored", v,
                 (v & ICW1_SNGL) ? "single mode" : "LTIM (use the ELCR)");
    if (!(v & ICW1_IC4))
        log_once(pic, PIC_LOG_MODE, "ICW1 0x%02x without ICW4 means 8080 mode; 8086 mode kept", v);
    uint8_t keep_pins = c->pins, keep_elcr = c->elcr, keep_mask = c->elcr_mask;
    chip_reset(c, keep_mask);
    c->pins = keep_pins;
    c->elcr = keep_elcr;
    /* The edge latches restart: an edge line already high must fall and rise again,
     * while a level line's request is simply its pin. */
    c->irr = keep_pins & keep_elcr;
    c->icw4_wanted = v & ICW1_IC4;
    c->init_step = 2;
    c->single = v & ICW1_SNGL;
}

static void ocw2(struct pic8259_chip *c, uint8_t v)
{
    unsigned level = v & 7;
    switch (v >> 5) {
    case 0: c->rotate_in_aeoi = false; break;
    case 4: c->rotate_in_aeoi = true; break;
    case 1: /* non-specific EOI */
    case 5: { /* rotate on non-specific EOI */
        unsigned rank = best_rank(c, c->isr);
        if (rank == 8)
            break; /* nothing in service: the 8259A does nothing either */
        unsigned irq = (rank + c->lowest + 1) & 7;
        c->isr &= (uint8_t)~(1u << irq);
        if (v >> 5 == 5)
            c->lowest = (uint8_t)irq;
        break;
    }
    case 3: c->isr &= (uint8_t)~(1u << level); break; /* specific EOI */
    case 7: /* rotate on specific EOI */
        c->isr &= (uint8_t)~(1u << level);
        c->lowest = (uint8_t)level;
        break;
    case 6: c->lowest = (uint8_t)level; break; /* set priority: level becomes the lowest */
    default: break;                            /* 2: no operation */
    }
}

static void ocw3(struct pic8259_chip *c, uint8_t v)
{
    if (v & OCW3_POLL)
        c->poll = true;
    if (v & OCW3_RR)
        c->read_isr = v & OCW3_RIS;
    if (v & OCW3_ESMM)
        c->special_mask = v & OCW3_SMM;
}

static void data_write(struct pic8259 *pic, unsigned which, uint8_t v)
{
    struct pic8259_chip *c = &pic->chip[which];
    switch (c->init_step) {
    case 2:
        c->vector_base = v & 0xf8;
        if (c->single) /* no ICW3 in a single-mode sequence */
            c->init_step = c->icw4_wanted ? 4 : 0;
        else
            c->init_step = 3;
        break;
    case 3:
        c->icw3 = v;
        if (v != (which == MASTER ? MASTER_ICW3 : SLAVE_ICW3))
            log_once(pic, PIC_LOG_ICW3, "%s ICW3 0x%02x: the slave is wired to IR2 (0x%02x expected); kept",
                     which == MASTER ? "master" : "slave", v, which == MASTER ? MASTER_ICW3 : SLAVE_ICW3);
        c->init_step = c->icw4_wanted ? 4 : 0;
        break;
    case 4:
        if (!(v & ICW4_UPM) || (v & ICW4_BUF))
            log_once(pic, PIC_LOG_MODE, "ICW4 0x%02x asks for %s; not emulated, ignored", v,
                     !(v & ICW4_UPM) ? "8080 mode" : "buffered mode");
        c->auto_eoi = v & ICW4_AEOI;
        c->special_nested = v & ICW4_SFNM;
        c->init_step = 0;
        break;
    default: c->imr = v; break; /* OCW1 */
    }
}

static uint8_t poll_read(struct pic8259_chip *c, bool master)
{
    c->poll = false;
    int irq = chip_pending(c, master);
    if (irq < 0)
        return 0;
    chip_ack(c, (unsigned)irq);
    return POLL_INT | (uint8_t)irq;
}

static struct bus_result chip_read(struct pic8259 *pic, unsigned which, uint64_t offset, uint64_t *value)
{
    struct pic8259_chip *c = &pic->chip[which];
    if (c->poll) {
        *value = poll_read(c, which == MASTER);
        update(pic);
    } else if (offset == 0) {
        *value = c->read_isr ? c->isr : c->irr;
    } else {
        *value = c->imr;
    }
    return BUS_OK;
}

static struct bus_result chip_write(struct pic8259 *pic, unsigned which, uint64_t offset, uint8_t v)
{
    struct pic8259_chip *c = &pic->chip[which];
    if (offset == 1)
        data_write(pic, which, v);
    else if (v & ICW1)
        icw1(pic, c, v);
    else if (v & OCW3)
        ocw3(c, v);
    else
        ocw2(c, v);
    update(pic);
    return BUS_OK;
}

static struct bus_result master_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    return chip_read(dev, MASTER, offset, value);
}

static struct bus_result master_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    return chip_write(dev, MASTER, offset, (uint8_t)value);
}

static struct bus_result slave_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    return chip_read(dev, SLAVE, offset, value);
}

static struct bus_result slave_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    return chip_write(dev, SLAVE, offset, (uint8_t)value);
}

static struct bus_result elcr_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    struct pic8259 *pic = dev;
    *value = pic->chip[offset].elcr;
    return BUS_OK;
}

static struct bus_result elcr_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    struct pic8259 *pic = dev;
    struct pic8259_chip *c = &pic->chip[offset];
    uint8_t v = (uint8_t)value;
    if (v & ~c->elcr_mask)
        log_once(pic, PIC_LOG_ELCR, "ELCR%u 0x%02x sets reserved bits (IRQ 0, 1, 2, 8, 13 are edge-only); "
                 "they stay 0", (unsigned)offset + 1, v);
    uint8_t now_level = v & c->elcr_mask & ~c->elcr;
    c->elcr = v & c->elcr_mask;
    /* A line turned level-triggered requests for as long as its pin is high. */
    c->irr = (uint8_t)((c->irr & ~now_level) | (c->pins & now_level));
    update(pic);
    return BUS_OK;
}

static const struct bus_ops master_ops = {.read = master_read, .write = master_write};
static const struct bus_ops slave_ops = {.read = slave_read, .write = slave_write};
static const struct bus_ops elcr_ops = {.read = elcr_read, .write = elcr_write};

void pic8259_set_irq(struct pic8259 *pic, unsigned line, bool level)
{
    if (line >= PIC8259_LINES || line == PIC8259_CASCADE) {
        log_once(pic, PIC_LOG_LINE, "line %u driven, but the PIC has no such input; ignored", line);
        return;
    }
    chip_pin(&pic->chip[line >> 3], line & 7, level);
    update(pic);
}

static void sink_set(void *ctx, unsigned line, bool high)
{
    pic8259_set_irq(ctx, line, high);
}

struct irq_sink pic8259_irq_sink(struct pic8259 *pic)
{
    return (struct irq_sink){.set = sink_set, .ctx = pic};
}

int pic8259_attach(struct pic8259 *pic, struct vm_bus *bus, const char *vm_name,
                   void (*intr_changed)(void *ctx, bool high), void *ctx)
{
    memset(pic, 0, sizeof(*pic));
    pic->vm_name = vm_name;
    pic->intr_changed = intr_changed;
    pic->ctx = ctx;
    pic8259_reset(pic);
    static const struct {
        uint16_t base;
        const struct bus_ops *ops;
        const char *owner;
    } ranges[] = {
        {PIC8259_MASTER, &master_ops, "PIC master"},
        {PIC8259_SLAVE, &slave_ops, "PIC slave"},
        {PIC8259_ELCR, &elcr_ops, "PIC ELCR"},
    };
    for (unsigned i = 0; i < ARRAY_SIZE(ranges); i++) {
        int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = ranges[i].base, .len = 2,
                                                      .widths = BUS_WIDTH_1, .ops = ranges[i].ops, .dev = pic,
                                                      .owner = ranges[i].owner});
        if (id < 0)
            return id;
    }
    return 0;
}
