/* The console's sinks on a PC: COM1 and the emulators' port 0xE9. */
#ifndef KEEL_DRIVERS_CONSOLE_PC_H
#define KEEL_DRIVERS_CONSOLE_PC_H

#include "vmm/lib/console.h"

extern const struct console_platform console_pc;

#endif
