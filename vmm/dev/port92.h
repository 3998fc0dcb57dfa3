/* System control port A at 0x92 ("fast A20 and reset"), as PC chipsets have it.
 *
 * Emulated: bit 1 (A20 gate) reads back as written; bit 0 (fast reset) rising from 0
 * to 1 resets the VM, as the chipset pulses the CPU's INIT/reset then. The other bits
 * read 0. Left out: the A20 gate itself (guest memory never wraps at 1 MiB; clearing
 * the bit is logged once), the watchdog and security-lock bits. */
#ifndef KEEL_VMM_DEV_PORT92_H
#define KEEL_VMM_DEV_PORT92_H

#include "vmm/dev/bus.h"

#define PORT92_PORT 0x92
#define PORT92_RESET 0x01
#define PORT92_A20 0x02

struct port92 {
    uint8_t value;
    bool logged_a20;
    const char *vm_name;
};

/* A20 on, as firmware leaves it; the port on the bus, byte-wide. Returns 0 or a
 * negative bus error. */
int port92_attach(struct port92 *p, struct vm_bus *bus, const char *vm_name);

/* Power-on state again, for a VM that restarts. */
void port92_reset(struct port92 *p);

#endif
