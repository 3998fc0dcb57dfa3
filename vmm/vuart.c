/* Register model of a 16550 as a polling driver sees it. No receive path and no
 * interrupts: IIR always says "none pending", LSR always says "transmitter empty". */
#include "vmm/vuart.h"
#include "vmm/lib/console.h"

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

static void flush_line(struct vm *vm)
{
    struct vuart *u = &vm->uart;
    kprintf("%s: %.*s\n", vm->name, (int)u->len, u->line);
    u->len = 0;
}

static void put_char(struct vm *vm, char c)
{
    struct vuart *u = &vm->uart;
    if (c == '\r')
        return;
    if (c == '\n') {
        flush_line(vm);
        return;
    }
    /* Control bytes would let a guest forge or garble Keel's own console lines. */
    if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
        c = '?';
    u->line[u->len++] = c;
    if (u->len == VUART_LINE_MAX)
        flush_line(vm);
}

void vm_console_write(struct vm *vm, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        put_char(vm, buf[i]);
}

void vuart_flush(struct vm *vm)
{
    if (vm->uart.len)
        flush_line(vm);
}

uint8_t vuart_read(struct vm *vm, uint16_t offset)
{
    struct vuart *u = &vm->uart;
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA: return dlab ? u->dll : 0;
    case REG_IER: return dlab ? u->dlm : u->ier;
    case REG_IIR: return IIR_NONE;
    case REG_LCR: return u->lcr;
    case REG_MCR: return u->mcr;
    case REG_LSR: return LSR_THRE_TEMT;
    case REG_MSR: return MSR_CTS_DSR_DCD;
    default: return u->scr;
    }
}

void vuart_write(struct vm *vm, uint16_t offset, uint8_t value)
{
    struct vuart *u = &vm->uart;
    bool dlab = u->lcr & LCR_DLAB;
    switch (offset) {
    case REG_DATA:
        if (dlab)
            u->dll = value;
        else
            put_char(vm, (char)value);
        break;
    case REG_IER:
        if (dlab)
            u->dlm = value;
        else
            u->ier = value & 0x0f;
        break;
    case REG_IIR: break; /* FCR: FIFOs are always "on" */
    case REG_LCR: u->lcr = value; break;
    case REG_MCR: u->mcr = value & 0x1f; break;
    case REG_SCR: u->scr = value; break;
    default: break; /* LSR, MSR: read-only */
    }
}
