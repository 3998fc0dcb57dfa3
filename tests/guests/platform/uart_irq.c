#include "guest.h"
#include "intr.h"
#include "report.h"
#include "timing.h"
#include "uart_irq.h"

#define COM1_IER (COM1_BASE + 1)
#define COM1_IIR (COM1_BASE + 2)
#define COM1_MCR (COM1_BASE + 4)
#define IER_ETBEI 0x02
#define MCR_DTR_RTS_OUT2 0x0b
#define IIR_THRE 0x02
#define COM1_IRQ 4 /* ISA IRQ 4: no interrupt override, so IOAPIC pin 4 */
#define WAIT_MS 100

static const char line[] = "platform: this line went out a byte per THR-empty interrupt\r\n";

static bool wait_sent(void)
{
    uint64_t dl = deadline_ms(WAIT_MS);
    while ((inb(COM1_IER) & IER_ETBEI) && !expired(dl))
        __asm__ volatile("pause");
    return !(inb(COM1_IER) & IER_ETBEI);
}

void uart_irq_check(const struct acpi_info *acpi, uint32_t bsp_id)
{
    if (!acpi->madt_ok || !acpi->ioapic_addr) {
        fail("uart-irq", "no IOAPIC from the MADT to route IRQ %u", COM1_IRQ);
        return;
    }
    uart_drain();
    ioapic_init(acpi->ioapic_addr);
    ioapic_route(COM1_IRQ, VEC_UART, bsp_id, false, false);
    uint32_t n0 = counts.uart;
    outb(COM1_MCR, MCR_DTR_RTS_OUT2);
    sti();
    /* Enabling THRE raises it at once: the handler sends the line, a byte per
     * interrupt, and turns it off after the last. */
    counts.uart_tx = line;
    outb(COM1_IER, IER_ETBEI);
    bool done = wait_sent();
    outb(COM1_IER, 0);
    counts.uart_tx = 0;
    cli();
    ioapic_mask(COM1_IRQ);
    uint32_t n = counts.uart - n0, other = counts.uart_other, want = sizeof(line);
    if (!done || n != want || other)
        fail("uart-irq", "%u THRE interrupts on IOAPIC pin %u in %u ms (want %u), %u with another IIR", n, COM1_IRQ,
             WAIT_MS, want, other);
    else
        ok("uart-irq: %u THR-empty interrupts on IRQ %u through IOAPIC pin %u, one when enabled and one after each "
           "byte sent, acknowledged by IIR", n, COM1_IRQ, COM1_IRQ);
}
