/* Everything a test guest needs from the runtime. A guest defines
 *
 *     const char guest_prefix[] = "name:";
 *     int main(uint32_t magic, uint32_t info_gpa);
 *
 * runtime_start (start.c) initialises the UART, the IDT and the Multiboot view, then
 * calls main and exits through the debug-exit port with main's return value. */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdline.h"
#include "div64.h"
#include "fault.h"
#include "hypercall.h"
#include "multiboot.h"
#include "printf.h"
#include "string.h"
#include "uart.h"
#include "x86.h"

/* Exit codes (the emulator reports (code << 1) | 1). */
#define GUEST_EXIT_OK 0
#define GUEST_EXIT_FAIL 1          /* a check failed */
#define GUEST_EXIT_FAULT 2         /* unexpected CPU exception */
#define GUEST_EXIT_BAD_BOOT 3      /* not entered by a Multiboot loader */
#define GUEST_EXIT_NOT_BLOCKED 0x7f /* attacker: a fatal attack was not stopped */

#define DEBUG_EXIT_PORT 0xF4

extern const char guest_prefix[];

int main(uint32_t magic, uint32_t info_gpa);

/* Writes `code` to the debug-exit port; halts forever if that does not stop the VM. */
__attribute__((noreturn)) void debug_exit(uint32_t code);

#endif
