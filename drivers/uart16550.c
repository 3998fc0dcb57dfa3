#include "drivers/uart16550.h"
#include "arch/x86/cpu.h"

#define UART_THR 0
#define UART_DLL 0
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define UART_IIR 2
#define IIR_FIFOS_ON 0xc0
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LCR_DLAB 0x80
#define LCR_8N1 0x03

/* A missing or wedged UART must never hang the console: give up after this many polls
 * (far longer than one character takes at 9600 baud on any real machine). */
#define UART_SPIN_LIMIT 2000000

bool uart_init(uint16_t port, uint32_t baud)
{
    /* The scratch register holds what was written only if a UART is there. */
    outb(port + UART_SCR, 0x5a);
    if (inb(port + UART_SCR) != 0x5a)
        return false;
    uint32_t div = uart_divisor(baud);
    if (!div)
        div = 1;
    outb(port + UART_IER, 0);
    outb(port + UART_LCR, LCR_DLAB);
    outb(port + UART_DLL, div & 0xff);
    outb(port + UART_DLM, div >> 8);
    outb(port + UART_LCR, LCR_8N1);
    outb(port + UART_FCR, 0x07); /* enable and clear FIFOs */
    outb(port + UART_MCR, 0x03); /* DTR, RTS: some USB-serial adapters want them */
    return true;
}

uint32_t uart_read_divisor(uint16_t port)
{
    uint8_t lcr = inb(port + UART_LCR);
    outb(port + UART_LCR, lcr | LCR_DLAB);
    uint32_t div = inb(port + UART_DLL) | (uint32_t)inb(port + UART_DLM) << 8;
    outb(port + UART_LCR, lcr);
    return div;
}

void uart_putc(uint16_t port, char c)
{
    for (uint32_t i = 0; i < UART_SPIN_LIMIT && !(inb(port + UART_LSR) & LSR_THRE); i++)
        cpu_relax();
    outb(port + UART_THR, (uint8_t)c);
}

void uart_flush(uint16_t port)
{
    for (uint32_t i = 0; i < UART_SPIN_LIMIT && !(inb(port + UART_LSR) & LSR_TEMT); i++)
        cpu_relax();
}

uint32_t uart_tx_fifo_size(uint16_t port)
{
    return (inb(port + UART_IIR) & IIR_FIFOS_ON) == IIR_FIFOS_ON ? 16 : 1;
}

bool uart_tx_empty(uint16_t port)
{
    return inb(port + UART_LSR) & LSR_THRE;
}

void uart_tx_byte(uint16_t port, char c)
{
    outb(port + UART_THR, (uint8_t)c);
}

int uart_rx_byte(uint16_t port)
{
    if (!(inb(port + UART_LSR) & LSR_DR))
        return -1;
    return inb(port + UART_THR);
}
