#include "uart.h"
#include "x86.h"

#define UART_THR 0 /* transmit holding (DLAB=0) / divisor low (DLAB=1) */
#define UART_IER 1 /* interrupt enable (DLAB=0) / divisor high (DLAB=1) */
#define UART_LCR 3
#define UART_LSR 5
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

/* Polls are bounded: a missing or stuck UART must slow a guest down, never hang it. */
#define UART_SPIN_LIMIT 1000000u

uint32_t uart_port_accesses;

void uart_init(void)
{
    outb(COM1_BASE + UART_IER, 0x00);
    outb(COM1_BASE + UART_LCR, LCR_DLAB);
    outb(COM1_BASE + UART_THR, 0x01); /* divisor 1: 115200 baud */
    outb(COM1_BASE + UART_IER, 0x00);
    outb(COM1_BASE + UART_LCR, LCR_8N1);
    uart_port_accesses += 5;
}

static void wait_lsr(uint8_t bit)
{
    for (uint32_t i = 0; i < UART_SPIN_LIMIT; i++) {
        uart_port_accesses++;
        if (inb(COM1_BASE + UART_LSR) & bit)
            return;
    }
}

void uart_putc(char c)
{
    wait_lsr(LSR_THRE);
    outb(COM1_BASE + UART_THR, (uint8_t)c);
    uart_port_accesses++;
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

void uart_drain(void)
{
    wait_lsr(LSR_TEMT);
}
