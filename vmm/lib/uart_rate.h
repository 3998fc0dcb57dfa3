/* The 16550's baud-rate rule, in the runtime library because two layers apply it: the
 * config parser checks com1_baud with it, and the UART driver programs the divisor. */
#ifndef KEEL_VMM_LIB_UART_RATE_H
#define KEEL_VMM_LIB_UART_RATE_H

#include "vmm/lib/types.h"

#define UART_BASE_BAUD 115200 /* the PC's 1.8432 MHz UART clock over 16 */

/* The divisor-latch value that runs the UART at exactly `baud`, or 0 when no 16-bit
 * divisor does (a rate that does not divide 115200, or below 2 baud). */
static inline uint32_t uart_divisor(uint32_t baud)
{
    if (!baud || baud > UART_BASE_BAUD || UART_BASE_BAUD % baud || UART_BASE_BAUD / baud > 0xffff)
        return 0;
    return UART_BASE_BAUD / baud;
}

#endif
