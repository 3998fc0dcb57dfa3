/* The console's sinks on a PC: COM1 and the emulators' port 0xE9. */
#ifndef KEEL_DRIVERS_CONSOLE_PC_H
#define KEEL_DRIVERS_CONSOLE_PC_H

#include "vmm/lib/console.h"

extern const struct console_platform console_pc;

/* The TSC value by which an idle CPU should call console_service again: soon when
 * output waits (when the UART's FIFO will have room), every 10 ms on the boot CPU while
 * typed input is wanted, UINT64_MAX when the console needs nobody. */
uint64_t console_pc_wake_tsc(void);

#endif
