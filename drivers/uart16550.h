/* 16550-compatible UART, polled: Keel never takes serial interrupts. */
#ifndef KEEL_DRIVERS_UART16550_H
#define KEEL_DRIVERS_UART16550_H

#include "vmm/lib/uart_rate.h"

#define COM1_PORT 0x3f8

/* Programs 8N1 at `baud` (115200 if uart_divisor rejects it) with FIFOs on; false
 * when no UART answers at `port`. */
bool uart_init(uint16_t port, uint32_t baud);
/* What the UART's divisor latch holds now: shows the rate really programmed. */
uint32_t uart_read_divisor(uint16_t port);
void uart_putc(uint16_t port, char c);
/* Waits (bounded) until the transmitter is completely empty. */
void uart_flush(uint16_t port);

#endif
