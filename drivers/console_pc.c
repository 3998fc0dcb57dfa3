/* The PC console platform (console_pc.h): the sinks on COM1 and port 0xE9, the per-CPU
 * line in each CPU's block. */
#include "drivers/console_pc.h"
#include "drivers/uart16550.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"

#define E9_PORT 0xe9

static bool com1_present;

static uint32_t pc_open(uint32_t want, uint32_t com1_baud)
{
    if ((want & CONSOLE_SINK_COM1) && !com1_present)
        com1_present = uart_init(COM1_PORT, com1_baud);
    if (!com1_present)
        want &= ~(uint32_t)CONSOLE_SINK_COM1;
    return want;
}

static void pc_write(uint32_t sinks, const char *s, size_t n)
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

static void pc_flush(uint32_t sinks)
{
    if (sinks & CONSOLE_SINK_COM1)
        uart_flush(COM1_PORT);
}

static struct console_line *pc_this_line(uint32_t *cpu)
{
    if (!percpu_ready())
        return NULL;
    struct percpu *p = this_cpu();
    *cpu = p->cpu_id;
    return &p->console_line;
}

static NORETURN void pc_halt(void)
{
    cpu_halt_forever();
}

const struct console_platform console_pc = {
    .open = pc_open,
    .write = pc_write,
    .flush = pc_flush,
    .this_line = pc_this_line,
    .halt = pc_halt,
};
