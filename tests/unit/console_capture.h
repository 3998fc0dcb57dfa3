/* Host-test stand-in for Keel's console (vmm/lib/console.h): kprintf/kvprintf format through
 * the real vmm/lib/printf.c and the finished lines are kept so tests can assert on messages;
 * panic() fails the test unless the test said it expects one.
 *
 * A test lists tests/unit/console_capture.c and vmm/lib/printf.c on its SOURCES line.
 * Output is assembled into lines the way the real console does it (a line ends at '\n',
 * so a kprintf without one continues on the next), and every finished line must fit in
 * CONSOLE_LINE_MAX or the test fails, since the machine would cut it. Lines are stored
 * without their '\n'. Set TEST_VERBOSE in the environment to see them as they come. */
#ifndef KEEL_TESTS_UNIT_CONSOLE_CAPTURE_H
#define KEEL_TESTS_UNIT_CONSOLE_CAPTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "arch/x86/percpu.h" /* CONSOLE_LINE_MAX */
#include "vmm/lib/console.h"

/* Lines past this many since the last reset are counted but not kept. */
#define CAPTURE_MAX_LINES 512

/* Forgets every line (and any unfinished one) and the last panic message. */
void capture_reset(void);

/* Lines finished since the last reset, including any beyond CAPTURE_MAX_LINES. */
int capture_count(void);

/* Line i (0 = oldest), or "" if there is no such line or it was not kept, so the
 * result can go straight into assert_string_equal. */
const char *capture_line(int i);

/* The most recent kept line, or "" if there is none. */
const char *capture_last(void);

/* Index of the first kept line containing substr, or -1. */
int capture_find(const char *substr);
bool capture_contains(const char *substr);

/* Index of the first kept line equal to line, or -1. */
int capture_find_exact(const char *line);

/* Writes every kept line to stderr, to show what was printed when a check fails. */
void capture_dump(void);

/* For code that must stay silent: while set, any console output fails the test. */
void capture_forbid_output(bool forbid);

#define assert_logged(s)                                               \
    do {                                                               \
        if (!capture_contains(s)) {                                    \
            capture_dump();                                            \
            fail_msg("expected a log line containing \"%s\"", (s));   \
        }                                                              \
    } while (0)

#define assert_not_logged(s)                                           \
    do {                                                               \
        if (capture_contains(s)) {                                     \
            capture_dump();                                            \
            fail_msg("unexpected log line containing \"%s\"", (s));    \
        }                                                              \
    } while (0)

#define assert_logged_line(s)                                          \
    do {                                                               \
        if (capture_find_exact(s) < 0) {                               \
            capture_dump();                                            \
            fail_msg("expected log line \"%s\"", (s));                \
        }                                                              \
    } while (0)

/* ---- panic ---- */

/* Arms the next panic() to jump back instead of failing the test; returns where to. */
jmp_buf *capture_panic_arm(void);
void capture_panic_disarm(void);

/* The message of the last panic(), formatted, or "" if none since the last arm/reset. */
const char *capture_panic_message(void);

/* Runs stmt, which must panic; the test fails if it returns. The message is then in
 * capture_panic_message(). setjmp has to run in the caller's frame, hence a macro. */
#define expect_panic(stmt)                                   \
    do {                                                     \
        if (setjmp(*capture_panic_arm()) == 0) {             \
            stmt;                                            \
            capture_panic_disarm();                          \
            fail_msg("no panic from: %s", #stmt);            \
        }                                                    \
    } while (0)

#endif
