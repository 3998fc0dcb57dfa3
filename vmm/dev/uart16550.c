/* The 16550A model (vmm/dev/uart16550.h): registers, receive FIFO, loopback, the
 * interrupt identification and the IRQ line. */
#include "vmm/dev/uart16550.h"
#include "vmm/lib/string.h"

#define REG_DATA 0 /* THR/RBR, or DLL with DLAB */
#define REG_IER 1  /* or DLM with DLAB */
#define REG_IIR 2  /* FCR on write */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define LCR_DLAB 0x80

#define IER_ERBFI 0x01 /* received data (and character timeout) */
#define IER_ETBEI 0x02 /* THR empty */
#define IER_ELSI 0x04  /* receiver line status */
#define IER_EDSSI 0x08 /* modem status */
#define IER_BITS 0x0f

#define IIR_NONE 0x01
#define IIR_MSR 0x00
#define IIR_THRE 0x02
#define IIR_RX 0x04
#define IIR_LSR 0x06
#define IIR_TIMEOUT 0x0c
#define IIR_FIFOS_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_CLEAR_TX 0x04
#define FCR_KEPT 0xc9 /* enable, DMA mode, trigger level: what the guest set */

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_ERRORS 0x1e /* OE, PE, FE, BI: cleared by reading LSR */
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_BITS 0x1f

#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_TERI 0x04
/* What a terminal on the other end shows: clear to send, data set ready, carrier. */
#define MSR_CONNECTED (MSR_CTS | MSR_DSR | MSR_DCD)

static const uint8_t trigger_level[4] = {1, 4, 8, 14};

static bool fifos_on(const struct uart16550 *u)
{
    return u->fcr & FCR_ENABLE;
}

static unsigned rx_capacity(const struct uart16550 *u)
{
    return fifos_on(u) ? UART16550_FIFO : 1;
}

/* The highest-priority pending interrupt, as IIR bits 3:0. */
static uint8_t pending(const struct uart16550 *u)
{
    if ((u->ier & IER_ELSI) && (u->lsr & LSR_ERRORS))
        return IIR_LSR;
    if ((u->ier & IER_ERBFI) && u->rx_count)
        return fifos_on(u) && u->rx_count < trigger_level[u->fcr >> 6] ? IIR_TIMEOUT : IIR_RX;
    if ((u->ier & IER_ETBEI) && u->thre_pending)
        return IIR_THRE;
    if ((u->ier & IER_EDSSI) && u->msr_delta)
        return IIR_MSR;
    return IIR_NONE;
}

/* A PC's serial port drives its IRQ only with OUT2 set; in loopback the OUT2 pin is
 * inactive, so the line is too. */
static void update_irq(struct uart16550 *u)
{
    bool high = pending(u) != IIR_NONE && (u->mcr & (MCR_OUT2 | MCR_LOOP)) == MCR_OUT2;
    if (high != u->irq_high) {
        u->irq_high = high;
        irq_set(&u->irq, u->irq_line, high);
    }
}

static void rx_clear(struct uart16550 *u)
{
    u->rx_head = u->rx_count = 0;
    u->lsr &= (uint8_t)~LSR_DR;
}

/* A byte reaches the receiver: into the FIFO, or lost to an overrun when it is full. */
static void rx_push(struct uart16550 *u, uint8_t b)
{
    if (u->rx_count >= rx_capacity(u)) {
        u->lsr |= LSR_OE;
        u->overruns++;
        return;
    }
    u->rx[(u->rx_head + u->rx_count) % UART16550_FIFO] = b;
    u->rx_count++;
    u->lsr |= LSR_DR;
}

/* Queued host input while the FIFO has room; in loopback the receiver hears only the
 * transmitter, so the input waits. */
static void refill(struct uart16550 *u)
{
    if (u->mcr & MCR_LOOP)
        return;
    uint32_t head = __atomic_load_n(&u->in_head, __ATOMIC_ACQUIRE);
    while (u->in_tail != head && u->rx_count < rx_capacity(u)) {
        rx_push(u, u->in[u->in_tail % UART16550_INPUT]);
        __atomic_store_n(&u->in_tail, u->in_tail + 1, __ATOMIC_RELEASE);
    }
}

static uint8_t modem_status(const struct uart16550 *u)
{
    if (!(u->mcr & MCR_LOOP))
        return MSR_CONNECTED;
    uint8_t m = u->mcr, s = 0;
    s |= (m & MCR_RTS) ? MSR_CTS : 0;
    s |= (m & MCR_DTR) ? MSR_DSR : 0;
    s |= (m & MCR_OUT1) ? MSR_RI : 0;
    s |= (m & MCR_OUT2) ? MSR_DCD : 0;
    return s;
}

/* The delta bits: CTS, DSR and DCD on any change, RI on its trailing edge. */
static void modem_changed(struct uart16550 *u)
{
    uint8_t now = modem_status(u), was = u->msr_status;
    uint8_t changed = now ^ was;
    u->msr_delta |= (changed & (MSR_CTS | MSR_DSR | MSR_DCD)) >> 4;
    if ((was & MSR_RI) && !(now & MSR_RI))
        u->msr_delta |= MSR_TERI;
    u->msr_status = now;
}

static uint8_t read_rbr(struct uart16550 *u)
{
    if (u->rx_count) {
        u->rbr = u->rx[u->rx_head];
        u->rx_head = (uint8_t)((u->rx_head + 1) % UART16550_FIFO);
        if (!--u->rx_count)
            u->lsr &= (uint8_t)~LSR_DR;
        refill(u);
        update_irq(u);
    }
    return u->rbr;
}

static uint8_t read_iir(struct uart16550 *u)
{
    uint8_t id = pending(u);
    /* Reading IIR while it names THR empty is what acknowledges that interrupt. */
    if (id == IIR_THRE) {
        u->thre_pending = false;
        update_irq(u);
    }
    return id | (fifos_on(u) ? IIR_FIFOS_ON : 0);
}

static uint8_t read_lsr(struct uart16550 *u)
{
    uint8_t v = u->lsr;
    if (v & LSR_ERRORS) {
        u->lsr &= (uint8_t)~LSR_ERRORS;
        update_irq(u);
    }
    return v;
}

static uint8_t read_msr(struct uart16550 *u)
{
    uint8_t v = u->msr_status | u->msr_delta;
    if (u->msr_delta) {
        u->msr_delta = 0;
        update_irq(u);
    }
    return v;
}

static __attribute__((noinline)) struct bus_result read_other(struct uart16550 *u, uint64_t offset, uint64_t *value)
{
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA: *value = dlab ? u->dll : read_rbr(u); break;
    case REG_IER: *value = dlab ? u->dlm : u->ier; break;
    case REG_IIR: *value = read_iir(u); break;
    case REG_LCR: *value = u->lcr; break;
    case REG_MCR: *value = u->mcr; break;
    case REG_LSR: *value = read_lsr(u); break;
    case REG_MSR: *value = read_msr(u); break;
    default: *value = u->scr; break;
    }
    return BUS_OK;
}

/* The bus hands over byte accesses only (the range takes width 1). LSR, which a
 * polling driver reads before every byte, takes the shortest way. */
static struct bus_result uart_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    struct uart16550 *u = dev;
    uint8_t lsr = u->lsr;
    if (__builtin_expect(offset == REG_LSR && !(lsr & LSR_ERRORS), 1)) {
        *value = lsr;
        return BUS_OK;
    }
    return read_other(u, offset, value);
}

static void write_thr(struct uart16550 *u, uint8_t b)
{
    if (u->mcr & MCR_LOOP)
        rx_push(u, b);
    else
        vm_console_putc(u->out, (char)b);
    /* Sent at once: THR is empty again, and says so if asked to. */
    u->thre_pending = true;
    if (u->ier & (IER_ETBEI | IER_ERBFI | IER_ELSI))
        update_irq(u);
}

static void write_ier(struct uart16550 *u, uint8_t b)
{
    uint8_t was = u->ier;
    u->ier = b & IER_BITS;
    /* THRE is always set here, so enabling its interrupt raises it (a 16550 does). */
    if ((u->ier ^ was) & IER_ETBEI)
        u->thre_pending = u->ier & IER_ETBEI;
    update_irq(u);
}

static void write_fcr(struct uart16550 *u, uint8_t b)
{
    /* Turning the FIFOs on or off empties them. */
    if ((b ^ u->fcr) & FCR_ENABLE)
        rx_clear(u);
    if (b & FCR_CLEAR_RX)
        rx_clear(u);
    u->fcr = b & FCR_KEPT;
    if (!fifos_on(u))
        u->fcr = 0;
    refill(u);
    update_irq(u);
}

static void write_mcr(struct uart16550 *u, uint8_t b)
{
    u->mcr = b & MCR_BITS;
    modem_changed(u);
    refill(u);
    update_irq(u);
}

static __attribute__((noinline)) struct bus_result write_other(struct uart16550 *u, uint64_t offset, uint8_t b)
{
    if (offset == REG_DATA && !(u->lcr & LCR_DLAB) && !(u->mcr & MCR_LOOP) && !u->ier) {
        vm_console_putc(u->out, (char)b);
        u->thre_pending = true;
        return BUS_OK;
    }
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA:
        if (dlab)
            u->dll = b;
        else
            write_thr(u, b);
        break;
    case REG_IER:
        if (dlab)
            u->dlm = b;
        else
            write_ier(u, b);
        break;
    case REG_IIR: write_fcr(u, b); break;
    case REG_LCR: u->lcr = b; break;
    case REG_MCR: write_mcr(u, b); break;
    case REG_SCR: u->scr = b; break;
    default: break; /* LSR, MSR: read-only (their test modes are not modelled) */
    }
    return BUS_OK;
}

/* The scratch register takes the shortest way, then a byte out with no interrupt or
 * loopback to mind. */
static struct bus_result uart_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    struct uart16550 *u = dev;
    uint8_t b = (uint8_t)value;
    if (offset == REG_SCR) {
        u->scr = b;
        return BUS_OK;
    }
    return write_other(u, offset, b);
}

static const struct bus_ops uart_ops = {.read = uart_read, .write = uart_write};

int uart16550_attach(struct uart16550 *u, struct vm_bus *bus, uint16_t base, struct vm_console *out,
                     const char *owner)
{
    memset(u, 0, sizeof(*u));
    u->out = out;
    u->lsr = LSR_THRE | LSR_TEMT;
    u->msr_status = modem_status(u);
    return vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = base, .len = UART16550_PORTS,
                                                .widths = BUS_WIDTH_1, .ops = &uart_ops, .dev = u,
                                                .owner = owner});
}

void uart16550_connect(struct uart16550 *u, const struct irq_sink *irq, unsigned line,
                       void (*input_ready)(void *ctx), void *ctx)
{
    u->irq = *irq;
    u->irq_line = line;
    u->input_ready = input_ready;
    u->input_ctx = ctx;
    u->irq_high = false;
    update_irq(u);
}

bool uart16550_receive(struct uart16550 *u, uint8_t byte)
{
    uint32_t head = u->in_head;
    if (head - __atomic_load_n(&u->in_tail, __ATOMIC_ACQUIRE) >= UART16550_INPUT)
        return false;
    u->in[head % UART16550_INPUT] = byte;
    __atomic_store_n(&u->in_head, head + 1, __ATOMIC_RELEASE);
    if (u->input_ready)
        u->input_ready(u->input_ctx);
    return true;
}

void uart16550_poll(struct uart16550 *u)
{
    refill(u);
    update_irq(u);
}
