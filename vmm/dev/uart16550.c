/* Register model of a 16550 as a polling driver sees it. No receive path and no
 * interrupts: IIR always says "none pending", LSR always says "transmitter empty". */
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
#define LSR_THRE_TEMT 0x60
#define IIR_NONE 0x01
#define MSR_CTS_DSR_DCD 0xb0

/* The bus hands over byte accesses only (the range takes width 1). */
static struct bus_result uart_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    struct uart16550 *u = dev;
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA: *value = dlab ? u->dll : 0; break;
    case REG_IER: *value = dlab ? u->dlm : u->ier; break;
    case REG_IIR: *value = IIR_NONE; break;
    case REG_LCR: *value = u->lcr; break;
    case REG_MCR: *value = u->mcr; break;
    case REG_LSR: *value = LSR_THRE_TEMT; break;
    case REG_MSR: *value = MSR_CTS_DSR_DCD; break;
    default: *value = u->scr; break;
    }
    return BUS_OK;
}

static struct bus_result uart_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    struct uart16550 *u = dev;
    uint8_t b = (uint8_t)value;
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA:
        if (dlab)
            u->dll = b;
        else
            vm_console_putc(u->out, (char)b);
        break;
    case REG_IER:
        if (dlab)
            u->dlm = b;
        else
            u->ier = b & 0x0f;
        break;
    case REG_IIR: break; /* FCR: FIFOs are always "on" */
    case REG_LCR: u->lcr = b; break;
    case REG_MCR: u->mcr = b & 0x1f; break;
    case REG_SCR: u->scr = b; break;
    default: break; /* LSR, MSR: read-only */
    }
    return BUS_OK;
}

static const struct bus_ops uart_ops = {.read = uart_read, .write = uart_write};

int uart16550_attach(struct uart16550 *u, struct vm_bus *bus, uint16_t base, struct vm_console *out,
                     const char *owner)
{
    memset(u, 0, sizeof(*u));
    u->out = out;
    return vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = base, .len = UART16550_PORTS,
                                                .widths = BUS_WIDTH_1, .ops = &uart_ops, .dev = u,
                                                .owner = owner});
}
