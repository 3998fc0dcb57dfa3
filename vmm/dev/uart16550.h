/* The 16550A UART every VM gets at 0x3F8 (COM1, IRQ 4), as Linux's 8250 driver and
 * polling loops alike drive it.
 *
 * Emulated:
 *   - THR/RBR, IER (bits 3:0; 7:4 read 0), IIR with the 16550's priorities (line status,
 *     received data or character timeout, THR empty, modem status) and bits 7:6 set
 *     while the FIFOs are on, FCR (enable, clear, receive trigger level 1/4/8/14),
 *     LCR with the divisor latch (DLL/DLM behind DLAB), MCR bits 4:0, LSR, MSR with its
 *     delta bits, the scratch register;
 *   - a 16-byte receive FIFO (1 byte with the FIFOs off) with overrun;
 *   - the transmitter sends at once: THRE and TEMT are always set, each THR write
 *     re-arms the THRE interrupt, and enabling ETBEI while THR is empty raises it (the
 *     16550 behaviour Linux's startup tests for); output goes to the VM's console line;
 *   - loopback (MCR bit 4): what the guest sends comes back to its receiver, MSR's
 *     CTS/DSR/RI/DCD follow RTS/DTR/OUT1/OUT2, and the host's input waits;
 *   - the interrupt output on IRQ 4 through the VM's irq_sink (PIC and IOAPIC), gated by
 *     OUT2 as on a PC's serial port and inactive in loopback; a level the PIC and
 *     IOAPIC see as an edge per new condition;
 *   - input from the host (uart16550_receive), queued and moved into the receive FIFO
 *     as it has room, so none is lost to overrun.
 * Left out: real baud-rate timing (the divisor is stored, not used: bytes move at once,
 * and the character-timeout interrupt comes at once for data below the trigger level),
 * parity, framing and break errors (nothing produces them), the FIFO error bit, DMA
 * mode, and the 16750's 64-byte FIFO (FCR bit 5 is ignored, IIR bit 5 reads 0). */
#ifndef KEEL_VMM_DEV_UART16550_H
#define KEEL_VMM_DEV_UART16550_H

#include "vmm/dev/bus.h"
#include "vmm/dev/console.h"
#include "vmm/dev/irq.h"

#define UART16550_COM1 0x3f8
#define UART16550_COM1_IRQ 4
#define UART16550_PORTS 8
#define UART16550_FIFO 16
#define UART16550_INPUT 256 /* host bytes queued for the guest; a power of two */

struct uart16550 {
    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    uint8_t lsr;          /* THRE, TEMT, DR, and OE (PE/FE/BI never) until LSR is read */
    uint8_t msr_delta;    /* MSR bits 3:0 until MSR is read */
    uint8_t msr_status;   /* MSR bits 7:4 as last seen */
    uint8_t rbr;          /* the last byte read, what an empty receiver gives again */
    bool thre_pending;    /* the THR-empty interrupt condition */
    bool irq_high;
    uint8_t rx[UART16550_FIFO];
    uint8_t rx_head, rx_count;
    struct vm_console *out;
    struct irq_sink irq;
    unsigned irq_line;
    /* Host input: one producer (uart16550_receive, any CPU), one consumer (the VM's
     * accesses and uart16550_poll, which its owner serialises). */
    volatile uint32_t in_head, in_tail;
    uint8_t in[UART16550_INPUT];
    void (*input_ready)(void *ctx); /* after uart16550_receive queued a byte */
    void *input_ctx;
    uint64_t overruns;
};

/* Resets the registers (and drops queued input) and puts the UART on the bus (byte
 * accesses only: wider ones are split by the bus into one per register, as on an ISA
 * bus). Returns the range id or a negative bus error. */
int uart16550_attach(struct uart16550 *u, struct vm_bus *bus, uint16_t base, struct vm_console *out,
                     const char *owner);
/* Wires its interrupt output to line `line` of irq, and input_ready, which the host
 * side's uart16550_receive calls so that the VM polls the UART soon (may be NULL). */
void uart16550_connect(struct uart16550 *u, const struct irq_sink *irq, unsigned line,
                       void (*input_ready)(void *ctx), void *ctx);

/* Host side (a console attached to the VM): queues one byte for the guest's receiver.
 * Any CPU, one caller at a time. False when the queue is full (the byte is not taken). */
bool uart16550_receive(struct uart16550 *u, uint8_t byte);
/* True while queued input waits for room in the receive FIFO. */
static inline bool uart16550_input_waiting(const struct uart16550 *u)
{
    return __atomic_load_n(&u->in_head, __ATOMIC_ACQUIRE) != u->in_tail;
}
/* Moves queued input into the receive FIFO and updates the interrupt; from whatever
 * serialises the guest's accesses (the VM's device poll). */
void uart16550_poll(struct uart16550 *u);

#endif
