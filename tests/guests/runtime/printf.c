#include <stdint.h>
#include "printf.h"
#include "div64.h"
#include "uart.h"

/* Longest number text: 2^64-1 in decimal is 20 digits. */
#define NUM_BUF 24

static int emit_padded(const char *s, int len, int width, char pad, int left)
{
    int n = 0;
    if (!left)
        for (; width > len; width--, n++)
            uart_putc(pad);
    for (int i = 0; i < len; i++, n++)
        uart_putc(s[i]);
    if (left)
        for (; width > len; width--, n++)
            uart_putc(' ');
    return n;
}

/* Formats v in `base` into the end of buf and returns the first digit. */
static char *format_u64(char *end, uint64_t v, uint32_t base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = digits[div64_32(&v, base)];
    } while (v);
    return p;
}

int vprintf(const char *fmt, va_list ap)
{
    int count = 0;
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            uart_putc(*fmt);
            count++;
            continue;
        }
        fmt++;
        char pad = ' ';
        int left = 0, width = 0, longs = 0;
        for (;; fmt++) {
            if (*fmt == '0')
                pad = '0';
            else if (*fmt == '-')
                left = 1;
            else
                break;
        }
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        int precision = -1; /* for %s only: the most characters to print */
        if (*fmt == '.') {
            fmt++;
            precision = 0;
            if (*fmt == '*') {
                precision = va_arg(ap, int);
                fmt++;
            }
            while (*fmt >= '0' && *fmt <= '9')
                precision = precision * 10 + (*fmt++ - '0');
        }
        while (*fmt == 'l') {
            longs++;
            fmt++;
        }
        /* 'll' is always 64-bit; 'l' only where long is (the 64-bit build). */
        int wide = longs >= 2 || (longs == 1 && sizeof(long) == sizeof(int64_t));

        char buf[NUM_BUF], *end = buf + sizeof(buf), *p;
        uint64_t u;
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            int len = 0;
            while ((precision < 0 || len < precision) && s[len])
                len++;
            count += emit_padded(s, len, width, ' ', left);
            break;
        }
        case 'c':
            buf[0] = (char)va_arg(ap, int);
            count += emit_padded(buf, 1, width, ' ', left);
            break;
        case 'd': {
            int64_t v = wide ? va_arg(ap, int64_t) : (int64_t)va_arg(ap, int32_t);
            u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
            p = format_u64(end, u, 10, 0);
            if (v < 0) {
                if (pad == '0' && !left) { /* sign goes before the zero padding */
                    uart_putc('-');
                    count++;
                    width--;
                } else {
                    *--p = '-';
                }
            }
            count += emit_padded(p, (int)(end - p), width, pad, left);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
            u = wide ? va_arg(ap, uint64_t) : (uint64_t)va_arg(ap, uint32_t);
            p = format_u64(end, u, *fmt == 'u' ? 10 : 16, *fmt == 'X');
            count += emit_padded(p, (int)(end - p), width, pad, left);
            break;
        case '%':
            uart_putc('%');
            count++;
            break;
        case '\0': /* a lone '%' at the end: print it rather than run off the string */
            uart_putc('%');
            return count + 1;
        default: /* unknown conversion: show it verbatim so the mistake is visible */
            uart_putc('%');
            uart_putc(*fmt);
            count += 2;
            break;
        }
    }
    return count;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
