/* Keel's console for the fuzz harnesses (vmm/lib/console.h): kprintf formats through the
 * real vmm/lib/printf.c into lines the way the console does; nothing is printed (a fuzzer
 * runs millions of inputs; set FUZZ_VERBOSE in the environment to see them). Unlike tests/unit/console_capture.c it needs no cmocka: a
 * broken console rule or a panic() aborts, which libFuzzer reports as a crash with the
 * input that caused it.
 *
 * A harness lists tests/fuzz/console_sink.c and vmm/lib/printf.c on its SOURCES line. */
#ifndef KEEL_TESTS_FUZZ_CONSOLE_SINK_H
#define KEEL_TESTS_FUZZ_CONSOLE_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "arch/x86/percpu.h" /* CONSOLE_LINE_MAX */
#include "vmm/lib/console.h"

/* Forgets the unfinished line and the line count; call at the start of every input. */
void sink_reset(void);
/* Lines finished since the last reset. */
unsigned sink_lines(void);
/* The last finished line (without '\n'), or "". */
const char *sink_last(void);

/* Prints the message to stderr and aborts: how a harness reports a broken invariant. */
void fuzz_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
#define FUZZ_CHECK(cond, ...)              \
    do {                                   \
        if (!(cond))                       \
            fuzz_fail(__VA_ARGS__);        \
    } while (0)

#endif
