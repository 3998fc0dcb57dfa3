/* The PC's two 8259A interrupt controllers (master at 0x20/0x21, slave at 0xA0/0xA1,
 * the slave's INT on the master's IR2) and the chipset's edge/level control registers
 * (ELCR, 0x4D0/0x4D1), as a PIIX/ICH south bridge has them.
 *
 * Emulated: ICW1-ICW4 (x86 mode, cascaded; ICW4's auto-EOI and special fully nested
 * mode), OCW1 (IMR), OCW2 (non-specific, specific and rotating EOI, set priority,
 * rotate in auto-EOI), OCW3 (read IRR/ISR, poll, special mask), edge triggering with
 * the edge latch of real parts and level triggering per ELCR (its IRQ 0, 1, 2, 8 and 13
 * bits are reserved: those lines are always edge), spurious IRQ 7/15 at INTA.
 * Left out: 8080/8085 mode, single (uncascaded) mode, ICW1's LTIM (the chipset ignores
 * it in favour of the ELCR), buffered mode: each is logged once when a guest asks.
 *
 * The vCPU side: the INTR output, reported through a callback whenever it changes and
 * readable at any time, and the INTA cycle, which returns the vector. */
#ifndef KEEL_VMM_DEV_PIC8259_H
#define KEEL_VMM_DEV_PIC8259_H

#include "vmm/dev/bus.h"
#include "vmm/dev/irq.h"

#define PIC8259_MASTER 0x20
#define PIC8259_SLAVE 0xa0
#define PIC8259_ELCR 0x4d0
#define PIC8259_LINES 16
#define PIC8259_CASCADE 2 /* the master input the slave drives */
/* ELCR bits that can be set: IRQ 0, 1, 2, 8 and 13 are edge-only on the PC. */
#define PIC8259_ELCR_MASTER_MASK 0xf8
#define PIC8259_ELCR_SLAVE_MASK 0xde

/* One 8259A. Bit n of each mask is input IRn. */
struct pic8259_chip {
    uint8_t irr, isr, imr;
    uint8_t pins;       /* the input lines' levels */
    uint8_t edge_armed; /* edge-triggered inputs that saw a low since their last request */
    uint8_t elcr, elcr_mask;
    uint8_t vector_base; /* ICW2 bits 7:3 */
    uint8_t icw3;
    uint8_t lowest;      /* the input with the lowest priority (rotation moves it) */
    uint8_t init_step;   /* 0: ready; 2, 3, 4: the ICW expected next */
    bool icw4_wanted, single;
    bool auto_eoi, rotate_in_aeoi, special_nested, special_mask;
    bool read_isr; /* OCW3: reads of the command port give the ISR, not the IRR */
    bool poll;     /* OCW3 poll: the next read is a poll */
};

enum pic8259_logged {
    PIC_LOG_MODE = BIT(0),      /* single, LTIM, 8080, buffered mode asked for */
    PIC_LOG_ICW3 = BIT(1),      /* a cascade identity other than the PC's */
    PIC_LOG_ELCR = BIT(2),      /* a reserved ELCR bit set */
    PIC_LOG_LINE = BIT(3),      /* a line the PIC has not, or the cascade line, driven */
};

struct pic8259 {
    struct pic8259_chip chip[2]; /* master, slave */
    bool intr;                   /* the INTR output to the CPU */
    void (*intr_changed)(void *ctx, bool high);
    void *ctx;
    const char *vm_name;
    uint32_t logged; /* enum pic8259_logged */
    uint64_t spurious; /* INTA cycles that found nothing (vector IRQ 7 or 15) */
};

/* Resets both chips as at power-on (no vectors programmed, all inputs unmasked, ELCR
 * all edge) and puts the command/data ports and the ELCR on the bus, byte-wide.
 * intr_changed (may be NULL) is called with the new INTR level whenever it changes.
 * Returns 0 or a negative bus error. */
int pic8259_attach(struct pic8259 *pic, struct vm_bus *bus, const char *vm_name,
                   void (*intr_changed)(void *ctx, bool high), void *ctx);

/* Power-on state, as at attach; the bus ranges stay. */
void pic8259_reset(struct pic8259 *pic);

/* Drives input line (0-15; 2 is the cascade and has no pin) to level. */
void pic8259_set_irq(struct pic8259 *pic, unsigned line, bool level);

/* An irq_sink whose lines go straight to pic8259_set_irq, for a board with no IOAPIC. */
struct irq_sink pic8259_irq_sink(struct pic8259 *pic);

/* The INTR output: whether the PIC has an interrupt for the CPU. */
static inline bool pic8259_intr(const struct pic8259 *pic)
{
    return pic->intr;
}

/* The INTA cycle: the vector of the highest-priority request, which moves from IRR to
 * ISR (unless in auto-EOI). With nothing pending it returns the spurious vector (IRQ 7
 * of the master, or IRQ 15 when the master's cascade request vanished), setting no ISR
 * bit, as the 8259A does. */
uint8_t pic8259_ack(struct pic8259 *pic);

#endif
