/* 16550-compatible UART, polled: Keel never takes serial interrupts. The console's
 * queued output uses the non-waiting half (status, one byte, the FIFO's size). */
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
/* The transmit FIFO's depth as the UART reports it once FIFOs are on (16 on a 16550A,
 * 1 on a UART without one): how many bytes may follow an empty-THR status. */
uint32_t uart_tx_fifo_size(uint16_t port);
/* The transmitter holding register (or FIFO) is empty. */
bool uart_tx_empty(uint16_t port);
/* One byte into the transmitter, without looking: the caller knows there is room. */
void uart_tx_byte(uint16_t port, char c);
/* A received byte, or -1 when none is waiting. */
int uart_rx_byte(uint16_t port);
/* Waits (bounded) until the transmitter is completely empty. */
void uart_flush(uint16_t port);

#endif
