/* QEMU's isa-debug-exit (iobase 0xF4, iosize 4): a write of v stops the VM with exit
 * code (v << 1) | 1, so test guests end the same way under QEMU and under Keel. */
#ifndef KEEL_VMM_DEV_DEBUG_EXIT_H
#define KEEL_VMM_DEV_DEBUG_EXIT_H

#include "vmm/dev/bus.h"

#define DEBUG_EXIT_PORT 0xf4
#define DEBUG_EXIT_PORTS 4

/* Returns the range id or a negative bus error. */
int debug_exit_attach(struct vm_bus *bus, uint16_t base);

#endif
