/* Minimal printf to the UART: %s %c %d %u %x %X %%, with optional '0' / '-' flags, a
 * width, a precision for %s ("%.*s"), and the l / ll length modifiers (ll: 64-bit; l:
 * long, which is 64-bit in the 64-bit build). */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

#endif
