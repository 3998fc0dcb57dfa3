/* Host-test console: records Keel's output lines and turns panic() into a test event.
 * See console_capture.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/console_capture.h"
#include "drivers/console_pc.h"

/* Room for far more than a console line, so an overlong call is measured, not cut. */
#define FORMAT_MAX 1024

static char lines[CAPTURE_MAX_LINES][CONSOLE_LINE_MAX];
static int line_count;
static char partial[CONSOLE_LINE_MAX]; /* the unfinished line, no '\n' yet */
static size_t partial_len;
static bool output_forbidden;

static char panic_msg[FORMAT_MAX];
static jmp_buf panic_env;
static bool panic_armed;

void capture_reset(void)
{
    line_count = 0;
    partial_len = 0;
    panic_msg[0] = 0;
}

int capture_count(void)
{
    return line_count;
}

const char *capture_line(int i)
{
    if (i < 0 || i >= line_count || i >= CAPTURE_MAX_LINES)
        return "";
    return lines[i];
}

const char *capture_last(void)
{
    if (line_count == 0)
        return "";
    return lines[MIN(line_count, CAPTURE_MAX_LINES) - 1];
}

int capture_find(const char *substr)
{
    for (int i = 0; i < line_count && i < CAPTURE_MAX_LINES; i++)
        if (strstr(lines[i], substr))
            return i;
    return -1;
}

bool capture_contains(const char *substr)
{
    return capture_find(substr) >= 0;
}

int capture_find_exact(const char *line)
{
    for (int i = 0; i < line_count && i < CAPTURE_MAX_LINES; i++)
        if (strcmp(lines[i], line) == 0)
            return i;
    return -1;
}

void capture_dump(void)
{
    for (int i = 0; i < line_count && i < CAPTURE_MAX_LINES; i++)
        fprintf(stderr, "  log: %s\n", lines[i]);
    if (line_count > CAPTURE_MAX_LINES)
        fprintf(stderr, "  log: (%d more lines not kept)\n", line_count - CAPTURE_MAX_LINES);
}

void capture_forbid_output(bool forbid)
{
    output_forbidden = forbid;
}

static void finish_line(void)
{
    partial[partial_len] = 0;
    if (getenv("TEST_VERBOSE"))
        printf("    | %s\n", partial);
    if (line_count < CAPTURE_MAX_LINES)
        memcpy(lines[line_count], partial, partial_len + 1);
    line_count++;
    partial_len = 0;
}

/* The real console cuts a line at CONSOLE_LINE_MAX - 1 characters, losing the rest of
 * the message on the machine: fail here instead. */
void kvprintf(const char *fmt, va_list ap)
{
    char buf[FORMAT_MAX];
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    if (output_forbidden)
        fail_msg("unexpected console output: %s", buf);
    if (n < 0)
        fail_msg("kvsnprintf failed on format \"%s\"", fmt);
    if (n >= FORMAT_MAX)
        fail_msg("one kprintf of %d characters, far beyond CONSOLE_LINE_MAX (%d): %s", n,
                 CONSOLE_LINE_MAX, buf);
    for (int i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            finish_line();
            continue;
        }
        if (partial_len == CONSOLE_LINE_MAX - 1) {
            partial[partial_len] = 0;
            partial_len = 0;
            fail_msg("console line longer than %d characters would be cut: %s...",
                     CONSOLE_LINE_MAX - 1, partial);
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

jmp_buf *capture_panic_arm(void)
{
    panic_msg[0] = 0;
    panic_armed = true;
    return &panic_env;
}

void capture_panic_disarm(void)
{
    panic_armed = false;
}

const char *capture_panic_message(void)
{
    return panic_msg;
}

/* Unlike the real panic this adds no console line, so a test can still check the last
 * line the code printed before giving up. */
NORETURN void panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(panic_msg, sizeof panic_msg, fmt, ap);
    va_end(ap);
    if (!panic_armed) {
        fail_msg("unexpected panic: %s", panic_msg);
        abort();
    }
    panic_armed = false;
    longjmp(panic_env, 1);
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

/* Nothing is ever queued here, so the console needs no CPU's time. */
void console_service(void)
{
}

uint64_t console_pc_wake_tsc(void)
{
    return UINT64_MAX;
}
