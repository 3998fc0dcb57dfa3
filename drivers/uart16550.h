/* 16550-compatible UART, polled: Keel never takes serial interrupts. */
#ifndef KEEL_DRIVERS_UART16550_H
#define KEEL_DRIVERS_UART16550_H

#include "vmm/lib/types.h"

#define COM1_PORT 0x3f8
#define UART_BASE_BAUD 115200 /* the PC's 1.8432 MHz UART clock over 16 */

/* The divisor-latch value that runs the UART at exactly `baud`, or 0 when no 16-bit
 * divisor does (a rate that does not divide 115200, or below 2 baud). Kept inline so
 * the config parser, which links nothing of the core, checks with the same rule. */
static inline uint32_t uart_divisor(uint32_t baud)
{
    if (!baud || baud > UART_BASE_BAUD || UART_BASE_BAUD % baud || UART_BASE_BAUD / baud > 0xffff)
        return 0;
    return UART_BASE_BAUD / baud;
}

/* Programs 8N1 at `baud` (115200 if uart_divisor rejects it) with FIFOs on; false
 * when no UART answers at `port`. */
bool uart_init(uint16_t port, uint32_t baud);
/* What the UART's divisor latch holds now: shows the rate really programmed. */
uint32_t uart_read_divisor(uint16_t port);
void uart_putc(uint16_t port, char c);
/* Waits (bounded) until the transmitter is completely empty. */
void uart_flush(uint16_t port);

#endif
