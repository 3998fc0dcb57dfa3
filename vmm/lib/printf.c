/* Formatting core behind kprintf and ksnprintf. It knows nothing about sinks, so the
 * same code runs in host tests. No floating point: the core is built without SSE.
 *
 * Differences from C's printf, on purpose:
 *   - %p always prints "0x" and 16 hex digits, so addresses line up in logs;
 *   - %n is not supported (nothing in Keel should write through a format);
 *   - an unknown conversion is copied to the output as is, without consuming an
 *     argument, so a bad format shows up in the log instead of corrupting it;
 *   - widths and precisions are capped at FMT_MAX_WIDTH, so a runaway '*' cannot
 *     spin for billions of padding characters. */
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define FMT_MAX_WIDTH 4096

#define FL_LEFT BIT(0)  /* '-' */
#define FL_ZERO BIT(1)  /* '0' */
#define FL_SPACE BIT(2) /* ' ' */
#define FL_PLUS BIT(3)  /* '+' */
#define FL_ALT BIT(4)   /* '#' */

enum length { LEN_INT, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_Z, LEN_T, LEN_J };

/* Output cursor: counts every character, stores only those that fit. */
struct out {
    char *buf;
    size_t size;
    size_t pos;
};

static void put(struct out *o, char c)
{
    if (o->size && o->pos < o->size - 1)
        o->buf[o->pos] = c;
    o->pos++;
}

static void put_n(struct out *o, char c, int n)
{
    while (n-- > 0)
        put(o, c);
}

struct spec {
    uint32_t flags;
    int width;     /* 0 when absent */
    int precision; /* -1 when absent */
};

/* Pads and emits an already-formatted body: [sign/prefix][zeros][digits]. */
static void emit_number(struct out *o, const struct spec *s, const char *prefix, const char *digits,
                        int ndigits)
{
    int nprefix = (int)strlen(prefix);
    int zeros = 0;
    if (s->precision > ndigits)
        zeros = s->precision - ndigits;
    int body = nprefix + zeros + ndigits;
    int pad = s->width > body ? s->width - body : 0;

    /* '0' pads between the prefix and the digits; C ignores it when a precision is
     * given or the field is left-justified. */
    if ((s->flags & FL_ZERO) && !(s->flags & FL_LEFT) && s->precision < 0) {
        zeros += pad;
        pad = 0;
    }
    if (!(s->flags & FL_LEFT))
        put_n(o, ' ', pad);
    for (int i = 0; i < nprefix; i++)
        put(o, prefix[i]);
    put_n(o, '0', zeros);
    for (int i = 0; i < ndigits; i++)
        put(o, digits[i]);
    if (s->flags & FL_LEFT)
        put_n(o, ' ', pad);
}

/* Writes the digits of v in `base` into the end of tmp; returns the first digit. */
static char *to_digits(char *end, uint64_t v, unsigned base, bool upper)
{
    const char *set = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char *p = end;
    do {
        *--p = set[v % base];
        v /= base;
    } while (v);
    return p;
}

static void format_int(struct out *o, const struct spec *s, char conv, uint64_t mag, bool negative)
{
    char tmp[24]; /* 22 octal digits cover 64 bits */
    char prefix[3] = {0};
    unsigned base = 10;
    bool is_signed = conv == 'd' || conv == 'i';

    if (conv == 'o')
        base = 8;
    else if (conv == 'x' || conv == 'X')
        base = 16;

    char *end = tmp + sizeof(tmp);
    char *digits = to_digits(end, mag, base, conv == 'X');
    int ndigits = (int)(end - digits);

    /* An explicit precision of 0 prints no digits for the value 0. */
    if (s->precision == 0 && mag == 0)
        ndigits = 0;

    if (is_signed) {
        if (negative)
            prefix[0] = '-';
        else if (s->flags & FL_PLUS)
            prefix[0] = '+';
        else if (s->flags & FL_SPACE)
            prefix[0] = ' ';
    } else if (s->flags & FL_ALT) {
        if (base == 16 && mag != 0) {
            prefix[0] = '0';
            prefix[1] = conv;
        } else if (base == 8 && (ndigits == 0 || digits[0] != '0') && s->precision <= ndigits) {
            /* '#' makes the first octal digit a 0, unless the precision already does. */
            prefix[0] = '0';
        }
    }
    emit_number(o, s, prefix, digits, ndigits);
}

static void format_str(struct out *o, const struct spec *s, const char *str)
{
    if (!str)
        str = "(null)";
    /* With a precision the string need not be terminated: never look past it. */
    int len = 0;
    while ((s->precision < 0 || len < s->precision) && str[len])
        len++;
    int pad = s->width > len ? s->width - len : 0;
    if (!(s->flags & FL_LEFT))
        put_n(o, ' ', pad);
    for (int i = 0; i < len; i++)
        put(o, str[i]);
    if (s->flags & FL_LEFT)
        put_n(o, ' ', pad);
}

static int clamp_width(long v)
{
    return v > FMT_MAX_WIDTH ? FMT_MAX_WIDTH : (int)v;
}

/* Reads a decimal field; saturates instead of overflowing. */
static int read_decimal(const char **fmt)
{
    long v = 0;
    while (**fmt >= '0' && **fmt <= '9') {
        if (v <= FMT_MAX_WIDTH)
            v = v * 10 + (**fmt - '0');
        (*fmt)++;
    }
    return clamp_width(v);
}

static uint64_t arg_unsigned(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_HH: return (unsigned char)va_arg(*ap, unsigned int);
    case LEN_H: return (unsigned short)va_arg(*ap, unsigned int);
    case LEN_L: return va_arg(*ap, unsigned long);
    case LEN_LL: return va_arg(*ap, unsigned long long);
    case LEN_Z: return va_arg(*ap, size_t);
    case LEN_T: return (uint64_t)va_arg(*ap, ptrdiff_t);
    case LEN_J: return va_arg(*ap, uintmax_t);
    default: return va_arg(*ap, unsigned int);
    }
}

static int64_t arg_signed(va_list *ap, enum length len)
{
    switch (len) {
    case LEN_HH: return (signed char)va_arg(*ap, int);
    case LEN_H: return (short)va_arg(*ap, int);
    case LEN_L: return va_arg(*ap, long);
    case LEN_LL: return va_arg(*ap, long long);
    case LEN_Z: return (int64_t)va_arg(*ap, size_t); /* the signed type of size_t's width */
    case LEN_T: return va_arg(*ap, ptrdiff_t);
    case LEN_J: return va_arg(*ap, intmax_t);
    default: return va_arg(*ap, int);
    }
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap_in)
{
    struct out o = {buf, buf ? size : 0, 0};
    va_list ap;
    va_copy(ap, ap_in);

    while (*fmt) {
        if (*fmt != '%') {
            put(&o, *fmt++);
            continue;
        }
        const char *start = fmt++;
        struct spec s = {0, 0, -1};

        for (;; fmt++) {
            if (*fmt == '-') s.flags |= FL_LEFT;
            else if (*fmt == '0') s.flags |= FL_ZERO;
            else if (*fmt == ' ') s.flags |= FL_SPACE;
            else if (*fmt == '+') s.flags |= FL_PLUS;
            else if (*fmt == '#') s.flags |= FL_ALT;
            else break;
        }

        if (*fmt == '*') {
            int w = va_arg(ap, int);
            fmt++;
            /* A negative '*' width means left-justify, as in C. */
            if (w < 0) {
                s.flags |= FL_LEFT;
                s.width = w == (-2147483647 - 1) ? FMT_MAX_WIDTH : clamp_width(-(long)w);
            } else {
                s.width = clamp_width(w);
            }
        } else {
            s.width = read_decimal(&fmt);
        }

        if (*fmt == '.') {
            fmt++;
            if (*fmt == '*') {
                int p = va_arg(ap, int);
                fmt++;
                s.precision = p < 0 ? -1 : clamp_width(p); /* negative: as if omitted */
            } else {
                s.precision = read_decimal(&fmt);
            }
        }

        enum length len = LEN_INT;
        switch (*fmt) {
        case 'h':
            fmt++;
            len = LEN_H;
            if (*fmt == 'h') {
                fmt++;
                len = LEN_HH;
            }
            break;
        case 'l':
            fmt++;
            len = LEN_L;
            if (*fmt == 'l') {
                fmt++;
                len = LEN_LL;
            }
            break;
        case 'z': fmt++; len = LEN_Z; break;
        case 't': fmt++; len = LEN_T; break;
        case 'j': fmt++; len = LEN_J; break;
        default: break;
        }

        char conv = *fmt;
        switch (conv) {
        case 'd':
        case 'i': {
            int64_t v = arg_signed(&ap, len);
            /* Negate in unsigned arithmetic so INT64_MIN has a magnitude. */
            uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
            format_int(&o, &s, conv, mag, v < 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            format_int(&o, &s, conv, arg_unsigned(&ap, len), false);
            break;
        case 'p': {
            uint64_t v = (uintptr_t)va_arg(ap, void *);
            char tmp[16];
            for (int i = 15; i >= 0; i--, v >>= 4)
                tmp[i] = "0123456789abcdef"[v & 15];
            struct spec ps = {s.flags & FL_LEFT, s.width, -1};
            emit_number(&o, &ps, "0x", tmp, 16);
            break;
        }
        case 's':
            format_str(&o, &s, va_arg(ap, const char *));
            break;
        case 'c': {
            /* Not through format_str: a NUL character is still one character. */
            char c = (char)va_arg(ap, int);
            int pad = s.width > 1 ? s.width - 1 : 0;
            if (!(s.flags & FL_LEFT))
                put_n(&o, ' ', pad);
            put(&o, c);
            if (s.flags & FL_LEFT)
                put_n(&o, ' ', pad);
            break;
        }
        case '%':
            put(&o, '%');
            break;
        default:
            /* Unknown or missing conversion: copy the directive verbatim. */
            for (const char *p = start; p < fmt; p++)
                put(&o, *p);
            if (conv)
                put(&o, conv);
            else
                continue; /* the format ended inside the directive */
            break;
        }
        fmt++;
    }
    va_end(ap);

    if (o.size)
        o.buf[o.pos < o.size ? o.pos : o.size - 1] = 0;
    return o.pos > 0x7fffffff ? 0x7fffffff : (int)o.pos;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
