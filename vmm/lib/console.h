/* Keel's console: printf-style output, every line prefixed with the CPU number,
 * sent to every enabled sink (COM1, and port 0xE9 when asked for). */
#ifndef KEEL_VMM_CONSOLE_H
#define KEEL_VMM_CONSOLE_H

#include "vmm/lib/types.h"

/* Formatting core, independent of any sink (host-tested).
 * Supports %d %i %u %x %X %o %p %s %c %%, flags '-', '0', ' ', '+', '#', width and
 * precision (also '*'), length modifiers hh h l ll z t j. Always NUL-terminates when
 * size > 0 and returns the length the full output would have had. */
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int ksnprintf(char *buf, size_t size, const char *fmt, ...) PRINTF_LIKE(3, 4);

enum console_sink {
    CONSOLE_SINK_COM1 = BIT(0),
    CONSOLE_SINK_E9 = BIT(1),
};

#define CONSOLE_LINE_MAX 256

/* A CPU's line while it is assembled. */
struct console_line {
    uint32_t len;
    char text[CONSOLE_LINE_MAX];
};

/* What the console needs from the machine. The layer that owns the hardware provides
 * it (drivers/console_pc.c) before the first kprintf; output before that is lost. */
struct console_platform {
    /* Opens the sinks asked for; returns those that work. */
    uint32_t (*open)(uint32_t sinks, uint32_t com1_baud);
    void (*write)(uint32_t sinks, const char *s, size_t n);
    /* Returns once everything written has left the machine. */
    void (*flush)(uint32_t sinks);
    /* The calling CPU's number and line, or NULL before per-CPU state exists (early
     * boot, when everything is CPU 0's). */
    struct console_line *(*this_line)(uint32_t *cpu);
    NORETURN void (*halt)(void);
};
void console_set_platform(const struct console_platform *platform);

/* Opens the sinks; COM1 runs at `com1_baud` (keel.cfg com1_baud). */
void console_init(uint32_t sinks, uint32_t com1_baud);
void console_enable(uint32_t sinks);
uint32_t console_sinks(void);

/* Lines are assembled per CPU and emitted whole under a lock, so output from
 * different CPUs never interleaves inside a line. */
void kprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
void kvprintf(const char *fmt, va_list ap);

/* Waits until every byte handed to the sinks has left the machine (UART shift
 * register empty), so a power-off does not cut the last line. */
void console_flush(void);

/* Emits raw bytes, bypassing the line buffer; for use when the machine is dying. */
void console_write_raw(const char *s, size_t n);

/* For broken invariants: prints the message and stops the calling CPU for good. Other
 * CPUs carry on, so a panic on one core still leaves the others' reports readable. */
NORETURN void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
