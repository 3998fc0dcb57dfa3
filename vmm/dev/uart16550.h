/* The virtual 16550 UART every VM gets at 0x3F8, as a polling driver sees it: its
 * registers read back what was written, the transmitter is always ready, nothing is
 * ever received, no interrupts; output goes to the VM's console line. */
#ifndef KEEL_VMM_DEV_UART16550_H
#define KEEL_VMM_DEV_UART16550_H

#include "vmm/dev/bus.h"
#include "vmm/dev/console.h"

#define UART16550_COM1 0x3f8
#define UART16550_PORTS 8

struct uart16550 {
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    struct vm_console *out;
};

/* Resets the registers and puts the UART on the bus (byte accesses only: wider ones
 * are split by the bus into one per register, as on an ISA bus). Returns the range id
 * or a negative bus error. */
int uart16550_attach(struct uart16550 *u, struct vm_bus *bus, uint16_t base, struct vm_console *out,
                     const char *owner);

#endif
