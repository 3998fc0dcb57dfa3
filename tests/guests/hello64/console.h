/* hello64's output: the 16550 UART at 0x3F8, polled, and a small printf. */
#ifndef HELLO64_CONSOLE_H
#define HELLO64_CONSOLE_H

#include <stdarg.h>

void con_init(void);
/* Conversions %s %c %d %u %x and %%, flags '0' and '-', a width, and 'l' or 'll' for
 * 64-bit arguments (int otherwise). Anything else is printed as it stands. */
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void con_vprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* Waits until the last byte has left the UART, so that an exit does not cut it off. */
void con_drain(void);

#endif
