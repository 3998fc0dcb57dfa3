#include "guest.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

const char *cmdline_opt(const char *key, size_t *len)
{
    size_t klen = strlen(key);
    const char *p = mb_cmdline();
    while (*p) {
        while (is_space(*p))
            p++;
        const char *tok = p;
        while (*p && !is_space(*p))
            p++;
        if ((size_t)(p - tok) > klen && !strncmp(tok, key, klen) && tok[klen] == '=') {
            *len = (size_t)(p - tok) - klen - 1;
            return tok + klen + 1;
        }
    }
    return NULL;
}

bool cmdline_opt_is(const char *key, const char *value)
{
    size_t len;
    const char *v = cmdline_opt(key, &len);
    return v && len == strlen(value) && !strncmp(v, value, len);
}

/* Parses exactly len characters; false on any stray character or overflow. */
static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint32_t base = 10, v = 0;
    if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
        len -= 2;
    }
    if (!len)
        return false;
    for (; len; len--, s++) {
        uint32_t d;
        if (*s >= '0' && *s <= '9')
            d = (uint32_t)(*s - '0');
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = (uint32_t)(*s - 'a' + 10);
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = (uint32_t)(*s - 'A' + 10);
        else
            return false;
        if (v > (0xFFFFFFFFu - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return true;
}

uint32_t cmdline_u32(const char *key, uint32_t def, uint32_t min, uint32_t max)
{
    size_t len;
    const char *s = cmdline_opt(key, &len);
    if (!s)
        return def;
    uint32_t v;
    if (!parse_u32(s, len, &v) || v < min || v > max) {
        printf("%s option %s: bad value '%.*s' (want %u..%u); using %u\n", guest_prefix, key,
               (int)len, s, min, max, def);
        return def;
    }
    return v;
}

const char *cmdline_args(void)
{
    const char *p = mb_cmdline();
    while (is_space(*p))
        p++;
    const char *tok = p;
    bool path = false;
    while (*p && !is_space(*p))
        path |= *p++ == '/';
    size_t n = (size_t)(p - tok);
    if (n >= 4 && !strncmp(p - 4, ".elf", 4))
        path = true;
    if (!path)
        return tok;
    while (is_space(*p))
        p++;
    return p;
}
