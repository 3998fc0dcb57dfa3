/* Polled 16550 UART on COM1 (0x3F8): the guests' only console. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#define COM1_BASE 0x3F8

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
/* Waits (bounded) until the transmitter is empty, so nothing is lost at exit. */
void uart_drain(void);

#endif
