/* The 16550A model through the VM's bus, driven the way Linux's 8250 driver drives it:
 * autoconfig()'s probe sequence with the values it expects of a 16550A, the THRE
 * interrupt tests of serial8250_do_startup(), then the IIR priority order, the FIFO
 * trigger levels, overrun, loopback with the modem lines, the IRQ line (gated by OUT2)
 * and host input. */
/* SOURCES: vmm/dev/uart16550.c vmm/dev/bus.c vmm/dev/console.c vmm/lib/console_buffer.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/dev/uart16550.h"
#include "tests/unit/console_capture.h"

#define B UART16550_COM1
#define RX 0
#define IER 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

static struct vm_bus bus;
static struct vm_console console;
static struct uart16550 uart;

/* The IRQ line as the PIC would see it: its level and the rising edges. */
static bool line_high;
static unsigned edges, line_seen;
static void set_line(void *ctx, unsigned line, bool high)
{
    (void)ctx;
    line_seen = line;
    if (high && !line_high)
        edges++;
    line_high = high;
}
static const struct irq_sink sink = {.set = set_line};

static unsigned ready_calls;
static void input_ready(void *ctx)
{
    (void)ctx;
    ready_calls++;
}

static int setup(void **state)
{
    (void)state;
    vm_bus_init(&bus, "vm");
    vm_console_init(&console, "vm");
    assert_true(uart16550_attach(&uart, &bus, B, &console, "com1") > 0);
    line_high = false;
    edges = ready_calls = 0;
    line_seen = 99;
    uart16550_connect(&uart, &sink, UART16550_COM1_IRQ, input_ready, NULL);
    capture_reset();
    return 0;
}

static uint8_t in(unsigned reg)
{
    uint64_t v = 0;
    assert_int_equal(bus_action(vm_bus_pio(&bus, (uint16_t)(B + reg), 1, false, &v)), BUS_DONE);
    return (uint8_t)v;
}

static void out(unsigned reg, uint8_t value)
{
    uint64_t v = value;
    assert_int_equal(bus_action(vm_bus_pio(&bus, (uint16_t)(B + reg), 1, true, &v)), BUS_DONE);
}

/* autoconfig() in drivers/tty/serial/8250/8250_port.c, step by step. */
static void linux_autoconfig_finds_a_16550a(void **state)
{
    (void)state;
    /* The existence test: IER's low nibble holds what is written. */
    uint8_t scratch = in(IER);
    out(IER, 0);
    assert_int_equal(in(IER) & 0x0f, 0);
    out(IER, 0x0f);
    assert_int_equal(in(IER) & 0x0f, 0x0f);
    out(IER, scratch);
    /* The loopback test: MCR = LOOP | OUT2 | RTS shows DCD and CTS in MSR. */
    uint8_t save_mcr = in(MCR), save_lcr = in(LCR);
    out(MCR, 0x10 | 0x0a);
    assert_int_equal(in(MSR) & 0xf0, 0x90);
    out(MCR, save_mcr);
    /* No EFR behind LCR 0xBF; FIFOs on: IIR bits 7:6 say 16550A. */
    out(LCR, 0xbf);
    out(2, 0);
    out(LCR, 0);
    out(FCR, 0x01);
    assert_int_equal(in(IIR) >> 6, 3);
    /* autoconfig_16550a(): not an ST16C650 (the EFR would read 0 with DLAB or 0xBF). */
    out(LCR, 0x80);
    assert_true(in(2) != 0);
    out(LCR, 0xbf);
    assert_true(in(2) != 0);
    /* Not a National SuperIO: "EXCR1" (IIR) never follows MCR's LOOP bit. */
    out(LCR, 0);
    uint8_t status1 = in(MCR);
    out(LCR, 0xe0);
    uint8_t status2 = in(2);
    assert_int_equal((status1 ^ status2) & 0x10, 0);
    out(LCR, 0);
    out(MCR, status1 ^ 0x10);
    out(LCR, 0xe0);
    status2 = in(2);
    out(LCR, 0);
    out(MCR, status1);
    assert_int_equal((status2 ^ status1) & 0x10, 0);
    /* Not a TI16750: IIR bit 5 never comes on, with or without DLAB. */
    out(FCR, 0x01 | 0x20);
    assert_int_equal(in(IIR) & 0xe0, 0xc0);
    out(FCR, 0x01);
    out(LCR, 0x80);
    out(FCR, 0x01 | 0x20);
    assert_int_equal(in(IIR) & 0xe0, 0xc0);
    out(FCR, 0x01);
    out(LCR, 0);
    /* Not an XScale: IER bit 6 (UUE) does not stick. */
    uint8_t iersave = in(IER);
    out(IER, iersave & ~0x40);
    assert_int_equal(in(IER) & 0x40, 0);
    out(IER, iersave | 0x40);
    assert_int_equal(in(IER) & 0x40, 0);
    out(IER, iersave);
    /* The reset at its end: LCR back, FIFOs cleared, RX read, IER 0. */
    out(LCR, save_lcr);
    out(MCR, save_mcr);
    out(FCR, 0x01);
    out(FCR, 0x07);
    out(FCR, 0);
    in(RX);
    out(IER, 0);
    /* The scratch register an 8250/16450 probe uses holds anything. */
    out(SCR, 0xa5);
    assert_int_equal(in(SCR), 0xa5);
    out(SCR, 0x5a);
    assert_int_equal(in(SCR), 0x5a);
    assert_int_equal(capture_count(), 0);
}

/* serial8250_do_startup(): the interrupt registers cleared, the LSR safety check, and
 * both THRE tests, which a 16550 passes by raising THRE whenever ETBEI is enabled
 * with THR empty, again after each enable. */
static void linux_startup_thre_tests(void **state)
{
    (void)state;
    out(FCR, 0x01);
    out(FCR, 0x07);
    out(FCR, 0);
    in(LSR);
    in(RX);
    in(IIR);
    in(MSR);
    assert_true(in(LSR) != 0xff);
    /* The UART_BUG_THRE test. */
    assert_true(in(LSR) & 0x20);
    out(IER, 0x02);
    uint8_t iir1 = in(IIR);
    out(IER, 0);
    out(IER, 0x02);
    uint8_t iir = in(IIR);
    out(IER, 0);
    assert_int_equal(iir1 & 0x0f, 0x02);
    assert_int_equal(iir & 0x0f, 0x02);
    /* Reading IIR acknowledged it. */
    out(IER, 0x02);
    assert_int_equal(in(IIR) & 0x0f, 0x02);
    assert_int_equal(in(IIR) & 0x0f, 0x01);
    out(IER, 0);
    /* LCR 8N1, OUT2 | RTS | DTR, then the UART_BUG_TXEN test. */
    out(LCR, 0x03);
    out(MCR, 0x0b);
    assert_false(line_high);
    out(IER, 0x02);
    uint8_t lsr = in(LSR);
    iir = in(IIR);
    out(IER, 0);
    assert_true(lsr & 0x40);
    assert_false(iir & 0x01); /* an interrupt was pending: no TXEN bug */
    assert_int_equal(edges, 1);
    assert_int_equal(line_seen, 4);
    assert_false(line_high);
}

/* Every source at once: line status, then received data, then THR empty, then modem
 * status, each leaving as the driver services it. */
static void iir_priority_order(void **state)
{
    (void)state;
    /* Two bytes in loopback with the FIFOs off: the second overruns the first. */
    out(MCR, 0x10);
    out(RX, 'a');
    out(RX, 'b');
    out(MCR, 0x10 | 0x02); /* RTS -> CTS changes: a modem-status delta */
    out(MCR, 0x00);        /* back out of loopback: more deltas, but the byte stays */
    out(IER, 0x0f);
    assert_int_equal(in(IIR), 0x06);
    assert_int_equal(in(LSR) & 0x03, 0x03); /* DR, OE; reading clears OE */
    assert_int_equal(in(IIR), 0x04);
    assert_int_equal(in(RX), 'a');
    assert_int_equal(in(LSR) & 0x03, 0x00);
    assert_int_equal(in(IIR), 0x02);        /* acknowledged by this read */
    uint8_t msr = in(IIR);
    assert_int_equal(msr, 0x00);
    assert_int_equal(in(MSR) & 0x0f, 0x01 | 0x02 | 0x08); /* CTS, DSR and DCD changed */
    assert_int_equal(in(IIR), 0x01);
    assert_int_equal(in(MSR) & 0x0f, 0);
    /* A THR write re-arms THR empty (the byte went at once). */
    out(RX, 'x');
    assert_int_equal(in(IIR), 0x02);
    assert_int_equal(in(IIR), 0x01);
}

/* Received data: the trigger level decides between "data available" and the timeout
 * indication; with the FIFOs off there is room for one byte. */
static void fifo_trigger_levels(void **state)
{
    (void)state;
    static const struct {
        uint8_t fcr;
        unsigned level;
    } levels[] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xc1, 14}};
    out(IER, 0x01);
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        out(FCR, levels[i].fcr | 0x02);
        out(MCR, 0x10);
        for (unsigned n = 1; n <= 16; n++) {
            out(RX, (uint8_t)n);
            uint8_t want = n >= levels[i].level ? 0xc4 : 0xcc;
            if (in(IIR) != want)
                fail_msg("trigger %u, %u bytes: IIR 0x%02x, want 0x%02x", levels[i].level, n, in(IIR), want);
        }
        /* The 17th is lost, the 16 stay, in order. */
        out(RX, 17);
        assert_int_equal(in(LSR) & 0x03, 0x03);
        for (unsigned n = 1; n <= 16; n++)
            assert_int_equal(in(RX), n);
        assert_int_equal(in(LSR) & 0x01, 0);
        assert_int_equal(in(IIR), 0xc1);
        out(MCR, 0);
    }
    /* FIFOs off: one byte, then overrun; an empty receiver gives its last byte again. */
    out(FCR, 0);
    out(MCR, 0x10);
    out(RX, 'p');
    assert_int_equal(in(IIR), 0x04);
    out(RX, 'q');
    assert_int_equal(in(LSR) & 0x03, 0x03);
    assert_int_equal(in(RX), 'p');
    assert_int_equal(in(RX), 'p');
    assert_int_equal(uart.overruns, 5); /* each 17th byte above, and this one */
    /* Turning the FIFOs on empties them. */
    out(RX, 'r');
    out(FCR, 0x01);
    assert_int_equal(in(LSR) & 0x01, 0);
}

/* Loopback sends nothing out and shows the modem outputs as inputs, RI's trailing edge
 * as TERI; outside it the other end looks connected. Output otherwise becomes the VM's
 * console line. */
static void loopback_and_console_output(void **state)
{
    (void)state;
    assert_int_equal(in(MSR), 0xb0);
    out(MCR, 0x10 | 0x04); /* OUT1 -> RI */
    assert_int_equal(in(MSR) & 0xf0, 0x40);
    out(MCR, 0x10);
    assert_int_equal(in(MSR), 0x04); /* TERI, RI now off */
    out(MCR, 0x10 | 0x01);
    assert_int_equal(in(MSR), 0x20 | 0x02); /* DSR on, changed */
    out(RX, 'L');
    assert_int_equal(in(RX), 'L');
    out(MCR, 0);
    for (const char *p = "hi\n"; *p; p++)
        out(RX, (uint8_t)*p);
    assert_true(capture_contains("vm: hi"));
    assert_int_equal(capture_count(), 1);
    assert_int_equal(in(LSR) & 0x01, 0);
}

/* The IRQ output: only with OUT2 set and out of loopback, raised per new condition. */
static void irq_line_follows_out2_and_conditions(void **state)
{
    (void)state;
    out(IER, 0x02);
    assert_false(line_high);
    out(MCR, 0x08);
    assert_true(line_high);
    assert_int_equal(edges, 1);
    in(IIR); /* acknowledges THRE */
    assert_false(line_high);
    out(RX, 'z'); /* the next byte's THRE: a new edge */
    assert_true(line_high);
    assert_int_equal(edges, 2);
    out(MCR, 0x08 | 0x10); /* loopback: OUT2 is inactive */
    assert_false(line_high);
    out(MCR, 0x08);
    assert_true(line_high);
    out(IER, 0);
    assert_false(line_high);
    assert_int_equal(line_seen, UART16550_COM1_IRQ);
}

/* The host's bytes wait in a queue and enter the FIFO as it has room, so a guest that
 * reads slowly loses none; uart16550_poll moves them and raises RX; loopback holds
 * them back. A full queue refuses the byte. */
static void host_input(void **state)
{
    (void)state;
    out(FCR, 0x01);
    out(MCR, 0x08);
    out(IER, 0x01);
    for (unsigned i = 0; i < 20; i++)
        assert_true(uart16550_receive(&uart, (uint8_t)('A' + i)));
    assert_int_equal(ready_calls, 20);
    assert_true(uart16550_input_waiting(&uart));
    assert_false(line_high);
    uart16550_poll(&uart);
    assert_true(line_high);
    assert_int_equal(in(IIR), 0xc4);
    for (unsigned i = 0; i < 20; i++)
        assert_int_equal(in(RX), 'A' + i);
    assert_false(uart16550_input_waiting(&uart));
    assert_int_equal(in(LSR) & 0x03, 0);
    assert_false(line_high);
    assert_int_equal(uart.overruns, 0);

    out(MCR, 0x18);
    assert_true(uart16550_receive(&uart, '!'));
    uart16550_poll(&uart);
    assert_int_equal(in(LSR) & 0x01, 0);
    out(MCR, 0x08);
    assert_int_equal(in(RX), '!');

    unsigned taken = 0;
    while (uart16550_receive(&uart, 'x'))
        taken++;
    assert_int_equal(taken, UART16550_INPUT);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup(fn, setup)
    const struct CMUnitTest tests[] = {
        T(linux_autoconfig_finds_a_16550a), T(linux_startup_thre_tests), T(iir_priority_order),
        T(fifo_trigger_levels),            T(loopback_and_console_output), T(irq_line_follows_out2_and_conditions),
        T(host_input),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
