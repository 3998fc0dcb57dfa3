#include "guest.h"
#include "intr.h"
#include "timing.h"

#define IDT_ENTRIES 256
#define RUNTIME_EXCEPTIONS 32
#define GATE_INTERRUPT32 0x8E
#define CODE_SELECTOR 0x08

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xA0
#define PIC2_DATA 0xA1
#define PIC_EOI 0x20
#define PIC_READ_ISR 0x0B

#define IOAPIC_REGSEL 0x00
#define IOAPIC_WINDOW 0x10
#define IOAPIC_VER 0x01
#define IOAPIC_REDIR 0x10
#define REDIR_MASKED (1u << 16)
#define REDIR_LEVEL (1u << 15)
#define REDIR_ACTIVE_LOW (1u << 13)

struct gate {
    uint16_t offset_lo, selector;
    uint8_t zero, type;
    uint16_t offset_hi;
} __attribute__((packed));

struct table_desc {
    uint16_t limit;
    uint32_t base;
} __attribute__((packed));

struct iframe;

struct intr_counts counts;
void (*volatile wake_hook)(void);

static struct gate idt[IDT_ENTRIES] __attribute__((aligned(8)));
static volatile uint32_t lapic;
static volatile uint32_t ioapic;

uint32_t lapic_read(uint32_t reg)
{
    return *(volatile uint32_t *)(uintptr_t)(lapic + reg);
}

void lapic_write(uint32_t reg, uint32_t val)
{
    *(volatile uint32_t *)(uintptr_t)(lapic + reg) = val;
}

uint32_t lapic_id(void)
{
    return lapic_read(LAPIC_ID) >> 24;
}

static void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

/* Interrupt handlers. GCC's interrupt attribute saves what the handler uses and ends
 * with IRET; -mgeneral-regs-only keeps it off the FPU state. */
#define HANDLER(name) __attribute__((interrupt)) static void name(struct iframe *f)

HANDLER(on_pic_irq0)
{
    (void)f;
    counts.pic_irq0++;
    outb(PIC1_CMD, PIC_EOI);
}

/* IRQ7/IRQ15 without a bit in the ISR are spurious and get no EOI (the slave's still
 * needs one at the master, whose IRQ2 was real). */
HANDLER(on_pic_spurious_master)
{
    (void)f;
    outb(PIC1_CMD, PIC_READ_ISR);
    if (inb(PIC1_CMD) & 0x80)
        outb(PIC1_CMD, PIC_EOI);
    else
        counts.spurious++;
}

HANDLER(on_pic_spurious_slave)
{
    (void)f;
    outb(PIC2_CMD, PIC_READ_ISR);
    if (inb(PIC2_CMD) & 0x80)
        outb(PIC2_CMD, PIC_EOI);
    else
        counts.spurious++;
    outb(PIC1_CMD, PIC_EOI);
}

HANDLER(on_ioapic_irq0)
{
    (void)f;
    counts.ioapic_irq0++;
    lapic_eoi();
}

/* An NMI sent to itself from here stays pending until the IRET below unblocks NMIs;
 * one taken inside the handler would show as nested. */
static volatile uint32_t in_nmi;
HANDLER(on_nmi)
{
    (void)f;
    if (in_nmi)
        counts.nmi_nested++;
    in_nmi = 1;
    counts.nmi++;
    if (counts.nmi_resend) {
        counts.nmi_resend--;
        lapic_send(lapic_id(), ICR_NMI);
        for (volatile int i = 0; i < 1000; i++)
            ;
    }
    in_nmi = 0;
}

HANDLER(on_uart)
{
    (void)f;
    uint8_t iir = inb(COM1_BASE + 2); /* acknowledges THR empty */
    if ((iir & 0x0f) == 0x02)
        counts.uart++;
    else
        counts.uart_other++;
    /* As an interrupt-driven driver sends: a byte per THR empty, and with nothing left
     * the interrupt off. */
    const char *p = counts.uart_tx;
    if (p && *p) {
        outb(COM1_BASE, (uint8_t)*p);
        counts.uart_tx = p + 1;
    } else {
        outb(COM1_BASE + 1, 0);
    }
    lapic_eoi();
}

HANDLER(on_testdev)
{
    (void)f;
    counts.testdev++;
    lapic_eoi();
}

HANDLER(on_timer)
{
    (void)f;
    counts.timer_tsc = rdtsc();
    counts.timer++;
    lapic_eoi();
}

HANDLER(on_ipi)
{
    (void)f;
    counts.ipi[lapic_id() & (MAX_APIC_ID - 1)]++;
    lapic_eoi();
}

HANDLER(on_self)
{
    (void)f;
    counts.self++;
    lapic_eoi();
}

HANDLER(on_wake)
{
    (void)f;
    counts.wake[lapic_id() & (MAX_APIC_ID - 1)]++;
    lapic_eoi();
    void (*hook)(void) = wake_hook;
    if (hook)
        hook();
}

/* The local APIC's spurious vector takes no EOI. */
HANDLER(on_spurious)
{
    (void)f;
    counts.spurious++;
}

static void set_gate(int vec, void (*fn)(struct iframe *))
{
    uint32_t a = (uint32_t)(uintptr_t)fn;
    idt[vec] = (struct gate){ (uint16_t)a, CODE_SELECTOR, 0, GATE_INTERRUPT32,
                              (uint16_t)(a >> 16) };
}

void intr_load_idt(void)
{
    struct table_desc d = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" ::"m"(d));
}

/* With interrupts off: ICW1 clears the vector base and the masks, so an edge (the PIT's,
 * from the test before) between ICW1 and ICW2 would arrive as vector 0 and look like #DE.
 * How close a tick comes to that window depends only on timing (a shorter exit path
 * moved one into it under bochs-platform-4cpu). */
void pic_program(uint8_t unmask)
{
    uint32_t flags;
    __asm__ volatile("pushfl; popl %0; cli" : "=r"(flags)::"memory");
    outb(PIC1_CMD, 0x11); /* ICW1: edge, cascade, ICW4 follows */
    outb(PIC2_CMD, 0x11);
    outb(PIC1_DATA, VEC_PIC_BASE);     /* ICW2: vector base */
    outb(PIC2_DATA, VEC_PIC_BASE + 8);
    outb(PIC1_DATA, 0x04);             /* ICW3: slave on IRQ2 */
    outb(PIC2_DATA, 0x02);
    outb(PIC1_DATA, 0x01);             /* ICW4: 8086 mode, normal EOI */
    outb(PIC2_DATA, 0x01);
    outb(PIC1_DATA, (uint8_t)~unmask);
    outb(PIC2_DATA, 0xFF);
    if (flags & 0x200) /* IF */
        __asm__ volatile("sti" ::: "memory");
}

void intr_init(uint32_t lapic_base)
{
    lapic = lapic_base;
    /* Keep the runtime's exception gates (fault.c): a stray fault still gets reported. */
    struct table_desc cur;
    __asm__ volatile("sidt %0" : "=m"(cur));
    uint32_t n = (cur.limit + 1u) / sizeof(struct gate);
    memcpy(idt, (const void *)(uintptr_t)cur.base,
           (n < RUNTIME_EXCEPTIONS ? n : RUNTIME_EXCEPTIONS) * sizeof(struct gate));
    set_gate(VEC_PIC_IRQ0, on_pic_irq0);
    set_gate(VEC_PIC_SPURIOUS_MASTER, on_pic_spurious_master);
    set_gate(VEC_PIC_SPURIOUS_SLAVE, on_pic_spurious_slave);
    set_gate(VEC_IOAPIC_IRQ0, on_ioapic_irq0);
    set_gate(VEC_TIMER, on_timer);
    set_gate(VEC_IPI, on_ipi);
    set_gate(VEC_SELF, on_self);
    set_gate(VEC_WAKE, on_wake);
    set_gate(VEC_TESTDEV, on_testdev);
    set_gate(2, on_nmi);
    set_gate(VEC_UART, on_uart);
    set_gate(VEC_SPURIOUS, on_spurious);
    intr_load_idt();
    pic_program(0);
}

void lapic_enable(void)
{
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

bool lapic_send(uint32_t dest, uint32_t low)
{
    lapic_write(LAPIC_ICR_HI, dest << 24);
    lapic_write(LAPIC_ICR_LO, low);
    uint64_t dl = deadline_ms(100);
    while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
        if (expired(dl))
            return false;
    return true;
}

static uint32_t ioapic_read(uint32_t reg)
{
    *(volatile uint32_t *)(uintptr_t)(ioapic + IOAPIC_REGSEL) = reg;
    return *(volatile uint32_t *)(uintptr_t)(ioapic + IOAPIC_WINDOW);
}

static void ioapic_write(uint32_t reg, uint32_t val)
{
    *(volatile uint32_t *)(uintptr_t)(ioapic + IOAPIC_REGSEL) = reg;
    *(volatile uint32_t *)(uintptr_t)(ioapic + IOAPIC_WINDOW) = val;
}

uint32_t ioapic_pins(void)
{
    return ((ioapic_read(IOAPIC_VER) >> 16) & 0xFF) + 1;
}

void ioapic_init(uint32_t base)
{
    ioapic = base;
    for (uint32_t pin = 0; pin < ioapic_pins(); pin++)
        ioapic_mask(pin);
}

void ioapic_route(uint32_t pin, uint8_t vector, uint32_t dest, bool active_low, bool level)
{
    ioapic_write(IOAPIC_REDIR + 2 * pin + 1, dest << 24);
    ioapic_write(IOAPIC_REDIR + 2 * pin, vector | (active_low ? REDIR_ACTIVE_LOW : 0) |
                                             (level ? REDIR_LEVEL : 0));
}

void ioapic_mask(uint32_t pin)
{
    ioapic_write(IOAPIC_REDIR + 2 * pin, REDIR_MASKED);
}
