/* Keel's console: printf-style output, every line prefixed with the CPU number,
 * sent to every enabled sink (COM1, and port 0xE9 when asked for).
 *
 * During boot a line goes out at once, waiting on the UART. Once guests run
 * (console_start_queueing), lines wait in queues instead (console_buffer.h: Keel's own,
 * and one per VM) and reach the sinks whole, in the order they were written, through
 * console_service: CPUs call it between slices, when idle, and after queueing a line;
 * it fills the UART's FIFO only as far as the UART says there is room and never
 * waits. Keel's own lines are never dropped (a full queue makes the writer wait);
 * a VM's are, counted, when its queue is full. A panic or an exception report
 * (console_emergency) empties the queues and goes back to writing at once. */
#ifndef KEEL_VMM_CONSOLE_H
#define KEEL_VMM_CONSOLE_H

#include "vmm/lib/types.h"
#include "vmm/lib/console_buffer.h"

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
    /* Writes, waiting for the UART as long as it takes. */
    void (*write)(uint32_t sinks, const char *s, size_t n);
    /* How many bytes the sinks take now without waiting (0: ask later). Reads the
     * UART's status at most once, and not at all while its FIFO cannot have
     * emptied yet. */
    size_t (*tx_room)(uint32_t sinks);
    /* Writes from s while *room lasts (a newline may cost two bytes of it); returns
     * how many of the n bytes it took. Never waits. */
    size_t (*tx)(uint32_t sinks, const char *s, size_t n, size_t *room);
    /* A received byte, or -1 when none is there (or it is not time to look again). */
    int (*rx)(void);
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

/* Lines are assembled per CPU and emitted whole, so output from different CPUs never
 * interleaves inside a line. */
void kprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
void kvprintf(const char *fmt, va_list ap);

/* Sends everything queued, waiting on the UART, then waits until every byte has left
 * the machine (UART shift register empty), so a power-off does not cut the last line. */
void console_flush(void);

/* From here on lines are queued (see above). */
void console_start_queueing(void);
/* Makes `b` one of the queues console_service drains (a VM's; Keel's own is built
 * in). false when there is no slot left: its lines then go out at once. Adding a
 * queue twice is harmless. */
bool console_add_source(struct console_buffer *b);
/* Before `b`'s memory goes away; what it still holds is dropped. */
void console_remove_source(struct console_buffer *b);
/* Queues a line of `b`'s (text without newline), or writes it at once while lines are
 * not queued; when `b` is full the line is counted as lost. */
void console_put_line(struct console_buffer *b, const char *text, size_t len);
/* Moves queued output to the sinks as far as they take it without waiting, and
 * hands received bytes to the input handler. Cheap when there is nothing to do;
 * safe from any CPU (one CPU at a time does the work, the others return). */
void console_service(void);
/* The output half of console_service alone (after queueing a line). */
void console_service_output(void);
/* Whether output waits in a queue or half-sent. */
bool console_output_pending(void);
/* Where received bytes go (console_service calls it with no console lock held). */
void console_set_input(void (*handler)(char c));
bool console_input_wanted(void);
/* The machine is in trouble: send what is queued (waiting on the UART) and write
 * every later line at once. */
void console_emergency(void);

/* Emits raw bytes, bypassing the line buffer; for use when the machine is dying. */
void console_write_raw(const char *s, size_t n);

/* For broken invariants: prints the message and stops the calling CPU for good. Other
 * CPUs carry on, so a panic on one core still leaves the others' reports readable. */
NORETURN void panic(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
