/* Interrupt plumbing for the platform guest: the local APIC (xAPIC, MMIO), the IOAPIC,
 * the 8259 PICs, an IDT with the guest's vectors added to the runtime's exception
 * gates, and counters the handlers bump. */
#ifndef PLATFORM_INTR_H
#define PLATFORM_INTR_H

#include <stdbool.h>
#include <stdint.h>

/* Vectors. The PICs sit at 0x20-0x2F, out of the way of the exceptions. */
#define VEC_PIC_BASE 0x20
#define VEC_PIC_IRQ0 0x20
#define VEC_PIC_SPURIOUS_MASTER 0x27
#define VEC_PIC_SPURIOUS_SLAVE 0x2F
#define VEC_IOAPIC_IRQ0 0x30
#define VEC_TIMER 0x40
#define VEC_IPI 0x41
#define VEC_SELF 0x42
#define VEC_WAKE 0x43 /* an AP looks at its mailbox */
#define VEC_TESTDEV 0x44 /* pc-testdev's line */
#define VEC_UART 0x45    /* COM1, IRQ 4 */
#define VEC_SPURIOUS 0xFF

#define MAX_APIC_ID 256

/* Local APIC registers (Intel SDM vol. 3, 11.4.1). */
#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_TPR 0x080
#define LAPIC_EOI 0x0B0
#define LAPIC_SVR 0x0F0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define LAPIC_LVT_ERROR 0x370
#define LAPIC_TIMER_INIT 0x380
#define LAPIC_TIMER_CUR 0x390
#define LAPIC_TIMER_DIV 0x3E0

#define LVT_MASKED (1u << 16)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_TIMER_TSC_DEADLINE (2u << 17)
#define LVT_EXTINT (7u << 8)

#define ICR_NMI (4u << 8)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_ASSERT (1u << 14)
#define ICR_LEVEL (1u << 15)
#define ICR_SELF (1u << 18)
#define ICR_PENDING (1u << 12)

struct intr_counts {
    volatile uint32_t pic_irq0, ioapic_irq0, timer, self, spurious, testdev;
    volatile uint32_t nmi, nmi_nested; /* NMIs taken; NMIs taken while one was being handled */
    volatile uint32_t nmi_resend;      /* the NMI handler sends itself one more, this many times */
    volatile uint32_t uart, uart_other; /* COM1 interrupts with IIR saying THR empty, and not */
    const char *volatile uart_tx;       /* what the COM1 handler sends, a byte per THR-empty interrupt */
    volatile uint32_t ipi[MAX_APIC_ID];  /* VEC_IPI taken, by the taker's APIC ID */
    volatile uint32_t wake[MAX_APIC_ID];
    volatile uint64_t timer_tsc;         /* TSC at the latest timer interrupt */
};
extern struct intr_counts counts;

/* Set by the AP code: runs on an AP when VEC_WAKE arrives, after EOI. */
extern void (*volatile wake_hook)(void);

/* Builds the IDT (exception gates from the runtime plus the vectors above), loads it,
 * and remaps and masks both PICs so that nothing arrives before a check asks for it. */
void intr_init(uint32_t lapic_base);
/* Loads that IDT on the calling CPU (APs). */
void intr_load_idt(void);

uint32_t lapic_read(uint32_t reg);
void lapic_write(uint32_t reg, uint32_t val);
uint32_t lapic_id(void);
/* Software-enables this CPU's local APIC with VEC_SPURIOUS; masks LINT0/1, error, timer. */
void lapic_enable(void);
/* Writes the ICR (destination APIC ID, low word) and waits, bounded, for delivery;
 * false when it stays pending. */
bool lapic_send(uint32_t dest, uint32_t low);

void ioapic_init(uint32_t base);
uint32_t ioapic_pins(void);
void ioapic_route(uint32_t pin, uint8_t vector, uint32_t dest, bool active_low, bool level);
void ioapic_mask(uint32_t pin);

/* PIC at VEC_PIC_BASE, all lines masked but `unmask` (a bit mask of IRQs, master). */
void pic_program(uint8_t unmask);

static inline void sti(void)
{
    __asm__ volatile("sti" ::: "memory");
}

#endif
