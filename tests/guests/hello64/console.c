#include <stdarg.h>
#include <stdint.h>

#include "console.h"
#include "cpu64.h"

#define COM1 0x3F8
#define UART_THR 0 /* transmit holding (DLAB=0) / divisor low (DLAB=1) */
#define UART_IER 1 /* interrupt enable (DLAB=0) / divisor high (DLAB=1) */
#define UART_LCR 3
#define UART_LSR 5
#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

/* Polls are bounded: a missing or stuck UART must slow the guest down, never hang it. */
#define UART_SPIN_LIMIT 1000000u

void con_init(void)
{
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, LCR_DLAB);
    outb(COM1 + UART_THR, 0x01); /* divisor 1: 115200 baud */
    outb(COM1 + UART_IER, 0x00);
    outb(COM1 + UART_LCR, LCR_8N1);
}

static void wait_lsr(uint8_t bit)
{
    for (uint32_t i = 0; i < UART_SPIN_LIMIT; i++)
        if (inb(COM1 + UART_LSR) & bit)
            return;
}

static void con_putc(char c)
{
    wait_lsr(LSR_THRE);
    outb(COM1 + UART_THR, (uint8_t)c);
}

void con_drain(void)
{
    wait_lsr(LSR_TEMT);
}

static void pad(int n, char c)
{
    while (n-- > 0)
        con_putc(c);
}

static void put_field(const char *s, int len, int width, int left, char fill)
{
    if (!left)
        pad(width - len, fill);
    for (int i = 0; i < len; i++)
        con_putc(s[i]);
    if (left)
        pad(width - len, ' ');
}

static void put_number(uint64_t v, unsigned base, int negative, int width, int left, int zero)
{
    char buf[24];
    int n = 0;
    do {
        buf[sizeof buf - 1 - n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative)
        buf[sizeof buf - 1 - n++] = '-';
    /* Zero padding goes after the sign. */
    if (zero && !left && negative) {
        con_putc('-');
        put_field(buf + sizeof buf - n + 1, n - 1, width - 1, 0, '0');
        return;
    }
    put_field(buf + sizeof buf - n, n, width, left, zero && !left ? '0' : ' ');
}

void con_vprintf(const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            con_putc(*p);
            continue;
        }
        const char *spec = p++;
        int left = 0, zero = 0, width = 0, longs = 0;
        for (; *p == '-' || *p == '0'; p++)
            *p == '-' ? (left = 1) : (zero = 1);
        for (; *p >= '0' && *p <= '9'; p++)
            width = width * 10 + (*p - '0');
        for (; *p == 'l'; p++)
            longs++;
        switch (*p) {
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
            put_number(mag, 10, v < 0, width, left, zero);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_number(v, *p == 'x' ? 16 : 10, 0, width, left, zero);
            break;
        }
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int len = 0;
            while (s[len])
                len++;
            put_field(s, len, width, left, ' ');
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            put_field(&c, 1, width, left, ' ');
            break;
        }
        case '%':
            con_putc('%');
            break;
        default:
            /* Unknown or truncated conversion: show it rather than guess. */
            for (; spec <= p && *spec; spec++)
                con_putc(*spec);
            if (!*p)
                p--;
            break;
        }
    }
}

void con_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    con_vprintf(fmt, ap);
    va_end(ap);
}
