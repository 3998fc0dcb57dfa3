/* Line assembly and the console lock; the sinks are the platform's (console.h).
 * Formatting lives in printf.c. */
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"
#include "vmm/lib/uart_rate.h"

#define NO_OWNER 0xffffffffu

static const struct console_platform *platform;
static spinlock_t console_lock = SPINLOCK_INIT;
static volatile uint32_t console_owner = NO_OWNER;
static uint32_t sinks;
static uint32_t com1_baud = UART_BASE_BAUD;

/* Before per-CPU state exists (early boot) everything is CPU 0's. */
static struct console_line early_line;

void console_set_platform(const struct console_platform *p)
{
    platform = p;
}

void console_init(uint32_t want, uint32_t baud)
{
    sinks = 0;
    com1_baud = baud;
    console_enable(want);
}

void console_enable(uint32_t want)
{
    if (platform)
        sinks |= platform->open(want, com1_baud);
}

uint32_t console_sinks(void)
{
    return sinks;
}

static void sink_write(const char *s, size_t n)
{
    if (platform && sinks)
        platform->write(sinks, s, n);
}

static struct console_line *this_line(uint32_t *cpu)
{
    struct console_line *l = platform ? platform->this_line(cpu) : NULL;
    if (!l) {
        *cpu = 0;
        l = &early_line;
    }
    return l;
}

static uint32_t current_cpu_id(void)
{
    uint32_t cpu;
    this_line(&cpu);
    return cpu;
}

static void emit_line(uint32_t cpu, const char *text, size_t n)
{
    char prefix[16];
    int plen = ksnprintf(prefix, sizeof(prefix), "[cpu%u] ", cpu);
    /* A CPU that faults while printing already holds the lock: let it through rather
     * than deadlock, since its report is the one thing that matters then. */
    bool nested = console_owner == cpu;
    uint64_t flags = 0;
    if (!nested) {
        flags = spin_lock_irqsave(&console_lock);
        console_owner = cpu;
    }
    sink_write(prefix, (size_t)plen);
    sink_write(text, n);
    sink_write("\n", 1);
    if (!nested) {
        console_owner = NO_OWNER;
        spin_unlock_irqrestore(&console_lock, flags);
    }
}

static void line_append(const char *s, size_t n)
{
    uint32_t cpu;
    struct console_line *l = this_line(&cpu);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' || l->len == CONSOLE_LINE_MAX - 1) {
            emit_line(cpu, l->text, l->len);
            l->len = 0;
            if (s[i] == '\n')
                continue;
        }
        l->text[l->len++] = s[i];
    }
}

void kvprintf(const char *fmt, va_list ap)
{
    char buf[CONSOLE_LINE_MAX];
    va_list copy;
    va_copy(copy, ap);
    int n = kvsnprintf(buf, sizeof(buf), fmt, copy);
    va_end(copy);
    if (n < 0)
        return;
    line_append(buf, MIN((size_t)n, sizeof(buf) - 1));
}

void kprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvprintf(fmt, ap);
    va_end(ap);
}

void console_write_raw(const char *s, size_t n)
{
    sink_write(s, n);
}

void console_flush(void)
{
    if (platform)
        platform->flush(sinks);
}

NORETURN void panic(const char *fmt, ...)
{
    char buf[CONSOLE_LINE_MAX];
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    kprintf("PANIC: %s\n", buf);
    kprintf("PANIC: CPU %u stopped\n", current_cpu_id());
    console_flush();
    if (platform)
        platform->halt();
    for (;;)
        __asm__ volatile("cli; hlt");
}
