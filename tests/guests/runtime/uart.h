/* Polled 16550 UART on COM1 (0x3F8): the guests' only console. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stdint.h>

#define COM1_BASE 0x3F8

/* Port accesses the driver has made so far. Under a hypervisor that traps the UART each
 * one is a VM exit, so a guest that accounts for its own exits (storm) adds these. */
extern uint32_t uart_port_accesses;

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
/* Waits (bounded) until the transmitter is empty, so nothing is lost at exit. */
void uart_drain(void);

#endif
