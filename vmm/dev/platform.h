/* The devices every VM gets on its bus when it is created. */
#ifndef KEEL_VMM_DEV_PLATFORM_H
#define KEEL_VMM_DEV_PLATFORM_H

#include "vmm/lib/types.h"

struct vm;

/* Sets up the VM's bus and console and registers its devices: COM1 (a 16550 at
 * 0x3F8) and the debug-exit port at 0xF4. False when one could not be registered
 * (the bus said why). */
bool vm_platform_attach(struct vm *vm);

#endif
