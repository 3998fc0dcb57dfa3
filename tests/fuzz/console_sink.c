/* See console_sink.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/console_sink.h"

/* Room for far more than a console line, so an overlong call is measured, not cut. */
#define FORMAT_MAX 1024

static char partial[CONSOLE_LINE_MAX];
static size_t partial_len;
static char last[CONSOLE_LINE_MAX];
static unsigned lines;
static int verbose = -1; /* FUZZ_VERBOSE set: print the lines, to see what an input did */

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz invariant broken: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

void sink_reset(void)
{
    partial_len = 0;
    last[0] = 0;
    lines = 0;
}

unsigned sink_lines(void)
{
    return lines;
}

const char *sink_last(void)
{
    return last;
}

/* The real console cuts a line at CONSOLE_LINE_MAX - 1 characters and loses the rest of
 * the message: with input-controlled text in a message, that is a defect to report. */
void kvprintf(const char *fmt, va_list ap)
{
    char buf[FORMAT_MAX];
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    FUZZ_CHECK(n >= 0, "kvsnprintf failed on format \"%s\"", fmt);
    FUZZ_CHECK(n < FORMAT_MAX, "one kprintf of %d characters: %.200s...", n, buf);
    for (int i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            memcpy(last, partial, partial_len);
            last[partial_len] = 0;
            if (verbose < 0)
                verbose = getenv("FUZZ_VERBOSE") != NULL;
            if (verbose)
                fprintf(stderr, "    | %s\n", last);
            partial_len = 0;
            lines++;
            continue;
        }
        if (partial_len == CONSOLE_LINE_MAX - 1) {
            partial[partial_len] = 0;
            fuzz_fail("console line longer than %d characters would be cut: %s...", CONSOLE_LINE_MAX - 1,
                      partial);
        }
        partial[partial_len++] = buf[i];
    }
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
}

/* In Keel a panic stops the CPU: no input may ever cause one. */
NORETURN void panic(const char *fmt, ...)
{
    char msg[FORMAT_MAX];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fuzz_fail("panic: %s", msg);
}

/* A VM's console lines reach the capture like Keel's own, at once: queueing is the real
 * console's business (tested in test_console.c). */
bool console_add_source(struct console_buffer *b)
{
    b->drained = true;
    return true;
}

void console_remove_source(struct console_buffer *b)
{
    b->drained = false;
}

void console_put_line(struct console_buffer *b, const char *text, size_t len)
{
    (void)b;
    kprintf("%.*s\n", (int)len, text);
}
