/* The PC console platform (console_pc.h): the sinks on COM1 and port 0xE9, the per-CPU
 * line in each CPU's block. */
#include "drivers/console_pc.h"
#include "drivers/uart16550.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"

#define E9_PORT 0xe9
/* What the sinks take at once when COM1 is not among them (port 0xE9 never waits). */
#define NO_UART_ROOM 4096
/* How often an idle CPU looks for typed input: a keystroke waits at most this long. */
#define INPUT_POLL_HZ 100

static bool com1_present;
static uint32_t com1_rate = UART_BASE_BAUD;
static uint32_t tx_fifo = 1;
/* Before these TSC values the UART cannot have room again / new input: looking
 * earlier would only cost a port read (microseconds on real hardware). */
static uint64_t tx_next_look, rx_next_look;

static uint32_t pc_open(uint32_t want, uint32_t com1_baud)
{
    if ((want & CONSOLE_SINK_COM1) && !com1_present) {
        com1_present = uart_init(COM1_PORT, com1_baud);
        if (com1_present) {
            com1_rate = uart_divisor(com1_baud) ? com1_baud : UART_BASE_BAUD;
            tx_fifo = uart_tx_fifo_size(COM1_PORT);
        }
    }
    if (!com1_present)
        want &= ~(uint32_t)CONSOLE_SINK_COM1;
    return want;
}

/* TSC ticks one character takes on the wire (10 bits); 0 before the TSC is known. */
static uint64_t char_ticks(void)
{
    return tsc_calibrated() ? tsc_hz() * 10 / com1_rate : 0;
}

static size_t pc_tx_room(uint32_t sinks)
{
    if (!(sinks & CONSOLE_SINK_COM1))
        return NO_UART_ROOM;
    uint64_t now = rdtsc();
    if (now < tx_next_look)
        return 0;
    if (!uart_tx_empty(COM1_PORT)) {
        tx_next_look = now + char_ticks();
        return 0;
    }
    return tx_fifo;
}

static size_t pc_tx(uint32_t sinks, const char *s, size_t n, size_t *room)
{
    bool com1 = sinks & CONSOLE_SINK_COM1;
    size_t i = 0, used = 0;
    for (; i < n; i++) {
        size_t cost = com1 && s[i] == '\n' ? 2 : 1;
        if (cost > *room)
            break;
        if (sinks & CONSOLE_SINK_E9)
            outb(E9_PORT, (uint8_t)s[i]);
        if (com1) {
            if (s[i] == '\n')
                uart_tx_byte(COM1_PORT, '\r');
            uart_tx_byte(COM1_PORT, s[i]);
        }
        *room -= cost;
        used += cost;
    }
    if (com1 && used)
        tx_next_look = rdtsc() + used * char_ticks();
    return i;
}

static int pc_rx(void)
{
    if (!com1_present)
        return -1;
    uint64_t now = rdtsc();
    if (now < rx_next_look)
        return -1;
    int c = uart_rx_byte(COM1_PORT);
    if (c < 0)
        rx_next_look = now + 4 * char_ticks();
    return c;
}

uint64_t console_pc_wake_tsc(void)
{
    if (console_output_pending())
        return MAX(tx_next_look, rdtsc() + char_ticks());
    /* One CPU looking for keystrokes is enough; the others' idle stays unbroken (a
     * halted CPU woken 100 times a second costs power on hardware and real time under
     * an emulator). The boot CPU also serves input between its slices. */
    if (com1_present && console_input_wanted() && tsc_calibrated() && this_cpu()->cpu_id == 0)
        return rdtsc() + tsc_hz() / INPUT_POLL_HZ;
    return UINT64_MAX;
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
    .tx_room = pc_tx_room,
    .tx = pc_tx,
    .rx = pc_rx,
    .flush = pc_flush,
    .this_line = pc_this_line,
    .halt = pc_halt,
};
