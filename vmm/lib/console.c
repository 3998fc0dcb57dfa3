/* Console sinks and line assembly. Formatting lives in printf.c. */
#include "vmm/lib/console.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "drivers/uart16550.h"

#define E9_PORT 0xe9
#define NO_OWNER 0xffffffffu

static spinlock_t console_lock = SPINLOCK_INIT;
static volatile uint32_t console_owner = NO_OWNER;
static uint32_t sinks;
static bool com1_present;
static uint32_t com1_baud = UART_BASE_BAUD;

/* Before GS points at a per-CPU block (early boot) everything is CPU 0. */
static uint32_t early_line_len;
static char early_line[CONSOLE_LINE_MAX];

void console_init(uint32_t want, uint32_t baud)
{
    sinks = 0;
    com1_baud = baud;
    console_enable(want);
}

void console_enable(uint32_t want)
{
    if ((want & CONSOLE_SINK_COM1) && !com1_present)
        com1_present = uart_init(COM1_PORT, com1_baud);
    if (!com1_present)
        want &= ~(uint32_t)CONSOLE_SINK_COM1;
    sinks |= want;
}

uint32_t console_sinks(void)
{
    return sinks;
}

static void sink_write(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (sinks & CONSOLE_SINK_E9)
            outb(E9_PORT, (uint8_t)s[i]);
        if (sinks & CONSOLE_SINK_COM1) {
            if (s[i] == '\n')
                uart_putc(COM1_PORT, '\r');
            uart_putc(COM1_PORT, s[i]);
        }
    }
}

static uint32_t current_cpu_id(void)
{
    return percpu_ready() ? this_cpu()->cpu_id : 0;
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
    bool ready = percpu_ready();
    struct percpu *p = ready ? this_cpu() : NULL;
    char *line = ready ? p->line : early_line;
    uint32_t *len = ready ? &p->line_len : &early_line_len;
    uint32_t cpu = ready ? p->cpu_id : 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n' || *len == CONSOLE_LINE_MAX - 1) {
            emit_line(cpu, line, *len);
            *len = 0;
            if (s[i] == '\n')
                continue;
        }
        line[(*len)++] = s[i];
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
    if (sinks & CONSOLE_SINK_COM1)
        uart_flush(COM1_PORT);
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
    cpu_halt_forever();
}
