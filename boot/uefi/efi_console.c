/* UEFI console output (see efi_console.h). The firmware takes UCS-2 strings, so text
 * is formatted in ASCII and widened in small chunks. */
#include "boot/uefi/efi_console.h"
#include "vmm/string.h"

static SIMPLE_TEXT_OUTPUT_INTERFACE *con_out;

void efi_console_init(EFI_SYSTEM_TABLE *st)
{
    con_out = st->ConOut;
}

struct out_buf {
    CHAR16 text[128];
    unsigned len;
};

static void flush(struct out_buf *o)
{
    if (o->len == 0)
        return;
    o->text[o->len] = 0;
    if (con_out)
        uefi_call_wrapper(con_out->OutputString, 2, con_out, o->text);
    o->len = 0;
}

static void put(struct out_buf *o, char c)
{
    if (o->len + 3 > ARRAY_SIZE(o->text))
        flush(o);
    if (c == '\n')
        o->text[o->len++] = L'\r';
    o->text[o->len++] = (CHAR16)(unsigned char)c;
}

static void put_padded(struct out_buf *o, const char *s, size_t len, unsigned width, char pad)
{
    for (size_t i = len; i < width; i++)
        put(o, pad);
    for (size_t i = 0; i < len; i++)
        put(o, s[i]);
}

static void put_number(struct out_buf *o, uint64_t v, bool negative, unsigned base,
                       unsigned width, char pad)
{
    char digits[24];
    size_t n = sizeof(digits);
    do {
        digits[--n] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative) {
        if (pad == '0' && width) {
            put(o, '-');
            width--;
        } else {
            digits[--n] = '-';
        }
    }
    put_padded(o, digits + n, sizeof(digits) - n, width, pad);
}

void efi_printf(const char *fmt, ...)
{
    struct out_buf o = { .len = 0 };
    va_list ap;

    va_start(ap, fmt);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put(&o, *p);
            continue;
        }
        p++;
        char pad = ' ';
        unsigned width = 0, longs = 0;
        if (*p == '0')
            pad = '0', p++;
        while (*p >= '0' && *p <= '9')
            width = width * 10 + (unsigned)(*p++ - '0');
        while (*p == 'l' || *p == 'z')
            longs++, p++;

        switch (*p) {
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            put_number(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0, 10, width, pad);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            put_number(&o, v, false, *p == 'x' ? 16 : 10, width, pad);
            break;
        }
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_number(&o, (uintptr_t)va_arg(ap, void *), false, 16, width, pad);
            break;
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            put_padded(&o, s, strlen(s), width, ' ');
            break;
        }
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case '%':
            put(&o, '%');
            break;
        default: /* unknown conversion: show it rather than guess at arguments */
            put(&o, '%');
            if (!*p)
                goto done;
            put(&o, *p);
            break;
        }
    }
done:
    va_end(ap);
    flush(&o);
}
