/* Host tests for Keel's formatting core (vmm/lib/printf.c).
 * SOURCES: vmm/lib/printf.c vmm/lib/string.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/lib/console.h"

/* Not declared PRINTF_LIKE, so tests can pass formats the compiler would reject. */
static int fmt_unchecked(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* Formats into a large buffer and checks both the text and the return value. */
#define EXPECT(want, ...)                                                  \
    do {                                                                   \
        char buf_[256];                                                    \
        int n_ = ksnprintf(buf_, sizeof(buf_), __VA_ARGS__);               \
        assert_string_equal(buf_, want);                                   \
        assert_int_equal(n_, (int)strlen(want));                           \
    } while (0)

/* Same, for formats GCC's format checker would (rightly) flag as odd. */
#define EXPECT_RAW(want, ...)                                              \
    do {                                                                   \
        char buf_[256];                                                    \
        int n_ = fmt_unchecked(buf_, sizeof(buf_), __VA_ARGS__);           \
        assert_string_equal(buf_, want);                                   \
        assert_int_equal(n_, (int)strlen(want));                           \
    } while (0)

/* Checks against the C library, for conversions whose C meaning Keel keeps. */
#define SAME_AS_LIBC(...)                                                  \
    do {                                                                   \
        char mine_[256], libc_[256];                                       \
        int a_ = ksnprintf(mine_, sizeof(mine_), __VA_ARGS__);             \
        int b_ = snprintf(libc_, sizeof(libc_), __VA_ARGS__);              \
        assert_string_equal(mine_, libc_);                                 \
        assert_int_equal(a_, b_);                                          \
    } while (0)

static void test_plain_and_percent(void **state)
{
    (void)state;
    EXPECT("", "%s", "");
    EXPECT("hello", "hello");
    EXPECT("100%", "100%%");
    EXPECT("%%", "%%%%");
}

static void test_signed(void **state)
{
    (void)state;
    EXPECT("0", "%d", 0);
    EXPECT("42", "%d", 42);
    EXPECT("-42", "%i", -42);
    EXPECT("2147483647", "%d", INT_MAX);
    EXPECT("-2147483648", "%d", INT_MIN);
    EXPECT("-9223372036854775808", "%lld", (long long)INT64_MIN);
    EXPECT("9223372036854775807", "%lld", (long long)INT64_MAX);
    EXPECT("-9223372036854775808", "%ld", (long)INT64_MIN);
    EXPECT("-9223372036854775808", "%jd", (intmax_t)INT64_MIN);
    EXPECT("-9223372036854775808", "%+lld", (long long)INT64_MIN);
    EXPECT("-0009223372036854775808", "%023lld", (long long)INT64_MIN);
    EXPECT("  -9223372036854775808", "%22lld", (long long)INT64_MIN);
}

static void test_unsigned_bases(void **state)
{
    (void)state;
    EXPECT("4294967295", "%u", UINT_MAX);
    EXPECT("deadbeef", "%x", 0xdeadbeefu);
    EXPECT("DEADBEEF", "%X", 0xdeadbeefu);
    EXPECT("777", "%o", 0777u);
    EXPECT("18446744073709551615", "%llu", (unsigned long long)UINT64_MAX);
    EXPECT("ffffffffffffffff", "%llx", (unsigned long long)UINT64_MAX);
    EXPECT("1777777777777777777777", "%llo", (unsigned long long)UINT64_MAX);
    EXPECT("0", "%x", 0u);
}

static void test_flags(void **state)
{
    (void)state;
    EXPECT("42   |", "%-5d|", 42);
    EXPECT("00042", "%05d", 42);
    EXPECT("-0042", "%05d", -42);
    EXPECT("+42", "%+d", 42);
    EXPECT(" 42", "% d", 42);
    EXPECT_RAW("+42", "%+ d", 42);        /* '+' beats ' ' */
    EXPECT("-42", "% d", -42);
    EXPECT_RAW("42   ", "%-05d", 42);     /* '-' beats '0' */
    EXPECT("0x1f", "%#x", 0x1fu);
    EXPECT("0X1F", "%#X", 0x1fu);
    EXPECT("017", "%#o", 017u);
    EXPECT("0", "%#x", 0u);           /* no prefix for zero */
    EXPECT("0", "%#o", 0u);
    EXPECT("0", "%#.0o", 0u);         /* '#' still shows the 0 */
    EXPECT("0x0001f", "%#07x", 0x1fu); /* zeros go after the prefix */
    EXPECT_RAW("42", "%+u", 42u);         /* sign flags are for signed conversions only */
}

static void test_width_precision(void **state)
{
    (void)state;
    EXPECT("     042", "%8.3d", 42);
    EXPECT("    -042", "%8.3d", -42);
    EXPECT("", "%.0d", 0);
    EXPECT("    ", "%4.0d", 0);
    EXPECT("01f     |", "%-8.3x|", 0x1fu);
    EXPECT_RAW("     042", "%08.3d", 42); /* a precision turns '0' off */
    EXPECT("00001", "%.5u", 1u);
    EXPECT("0001", "%#.4o", 1u);
    EXPECT("hel", "%.3s", "hello");
    EXPECT("     hello", "%10s", "hello");
    EXPECT("hello     |", "%-10s|", "hello");
    EXPECT("hello", "%2s", "hello");
    EXPECT("   42", "%*d", 5, 42);
    EXPECT("42   |", "%-*d|", 5, 42);
    EXPECT("42   |", "%*d|", -5, 42); /* negative '*' width left-justifies */
    EXPECT("he", "%.*s", 2, "hello");
    EXPECT("hello", "%.*s", -1, "hello"); /* negative precision: as if omitted */
    EXPECT("   he", "%*.*s", 5, 2, "hello");
    EXPECT("00042", "%.*d", 5, 42);
    EXPECT("   42", "%5.*d", -3, 42);
}

static void test_length_modifiers(void **state)
{
    (void)state;
    EXPECT("44", "%hhd", 300);
    EXPECT("-1", "%hhd", 255);
    EXPECT("0", "%hhu", 256);
    EXPECT("ff", "%hhx", 0x1ff);
    EXPECT("4464", "%hd", 70000);
    EXPECT("-1", "%hd", 65535);
    EXPECT("65535", "%hu", 65535);
    EXPECT("-9223372036854775808", "%ld", LONG_MIN);
    EXPECT("18446744073709551615", "%zu", (size_t)SIZE_MAX);
    EXPECT("-1", "%zd", (size_t)-1);
    EXPECT("-5", "%td", (ptrdiff_t)-5);
    EXPECT("ffffffffffffffff", "%tx", (ptrdiff_t)-1);
    EXPECT("18446744073709551615", "%ju", (uintmax_t)UINTMAX_MAX);
    EXPECT("123456789abcdef0", "%lx", 0x123456789abcdef0ul);
    EXPECT("123456789ABCDEF0", "%llX", 0x123456789abcdef0ull);
}

static void test_pointer(void **state)
{
    (void)state;
    EXPECT("0x0000000000000000", "%p", (void *)0);
    EXPECT("0xffffffff80200000", "%p", (void *)0xffffffff80200000ull);
    EXPECT("0x0000000000001000", "%p", (void *)0x1000);
    EXPECT("  0x0000000000001000", "%20p", (void *)0x1000);
    EXPECT("0x0000000000001000  |", "%-20p|", (void *)0x1000);
}

static void test_string_and_char(void **state)
{
    (void)state;
    EXPECT_RAW("(null)", "%s", (char *)NULL);
    EXPECT_RAW("  (null)", "%8s", (char *)NULL);
    EXPECT("x", "%c", 'x');
    EXPECT("  x", "%3c", 'x');
    EXPECT("x  |", "%-3c|", 'x');

    /* A NUL character is one output character. */
    char buf[8];
    memset(buf, 'z', sizeof(buf));
    int n = ksnprintf(buf, sizeof(buf), "a%cb", 0);
    assert_int_equal(n, 3);
    assert_memory_equal(buf, "a\0b\0", 4);

    /* With a precision, %s must not read past it (ASan checks the heap block). */
    char *raw = malloc(3);
    memcpy(raw, "abc", 3);
    EXPECT("abc", "%.3s", raw);
    EXPECT("ab", "%.2s", raw);
    free(raw);
}

static void test_unknown_and_broken_directives(void **state)
{
    (void)state;
    char buf[64];
    int n = fmt_unchecked(buf, sizeof(buf), "a%qb");
    assert_string_equal(buf, "a%qb");
    assert_int_equal(n, 4);

    /* An unknown conversion consumes no argument: the next one still lines up. */
    n = fmt_unchecked(buf, sizeof(buf), "%y %d", 7);
    assert_string_equal(buf, "%y 7");
    assert_int_equal(n, 4);

    n = fmt_unchecked(buf, sizeof(buf), "end%");
    assert_string_equal(buf, "end%");
    assert_int_equal(n, 4);

    n = fmt_unchecked(buf, sizeof(buf), "end%-5l");
    assert_string_equal(buf, "end%-5l");
    assert_int_equal(n, 7);

    /* %n never writes through its argument. */
    int target = 1234;
    n = fmt_unchecked(buf, sizeof(buf), "ab%n", &target);
    assert_int_equal(target, 1234);
    assert_string_equal(buf, "ab%n");
}

static void test_truncation(void **state)
{
    (void)state;
    char buf[16];

    /* size 0: nothing written, not even the terminator; NULL buffer allowed. */
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(ksnprintf(buf, 0, "hello %d", 42), 8);
    assert_int_equal(buf[0], 'Z');
    assert_int_equal(ksnprintf(NULL, 0, "hello %d", 42), 8);

    /* size 1: only the terminator. */
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(ksnprintf(buf, 1, "hello"), 5);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[1], 'Z');

    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(ksnprintf(buf, 5, "hello world"), 11);
    assert_string_equal(buf, "hell");
    assert_int_equal(buf[5], 'Z');

    /* Exactly fitting, and one byte short. */
    assert_int_equal(ksnprintf(buf, 6, "hello"), 5);
    assert_string_equal(buf, "hello");
    assert_int_equal(ksnprintf(buf, 5, "hello"), 5);
    assert_string_equal(buf, "hell");

    /* Truncation inside padding and inside a number. */
    memset(buf, 'Z', sizeof(buf));
    assert_int_equal(ksnprintf(buf, 4, "%10d", 7), 10);
    assert_string_equal(buf, "   ");
    assert_int_equal(ksnprintf(buf, 4, "%lld", (long long)INT64_MIN), 20);
    assert_string_equal(buf, "-92");
    assert_int_equal(ksnprintf(buf, 3, "%p", (void *)0x1234), 18);
    assert_string_equal(buf, "0x");
    assert_int_equal(ksnprintf(buf, sizeof(buf), "%100d", 1), 100);
    assert_int_equal(strlen(buf), sizeof(buf) - 1);
}

static void test_width_is_capped(void **state)
{
    (void)state;
    char buf[8];
    assert_int_equal(ksnprintf(buf, sizeof(buf), "%*d", 100000000, 1), 4096);
    assert_int_equal(fmt_unchecked(buf, sizeof(buf), "%*d", INT_MIN, 1), 4096);
    assert_int_equal(fmt_unchecked(buf, sizeof(buf), "%99999999999999999999d", 1), 4096);
    assert_int_equal(ksnprintf(buf, sizeof(buf), "%.*d", 100000000, 1), 4096);
}

static void test_matches_libc(void **state)
{
    (void)state;
    static const int ints[] = {0, 1, -1, 7, -7, 255, 4096, -65536, INT_MAX, INT_MIN};
    static const char *const int_fmts[] = {
        "%d", "%5d", "%-5d|", "%05d", "%+d", "% d", "%.3d", "%8.3d", "%-8.3d|", "%+08d",
        "% 08d", "%.0d", "%+.0d", "%x", "%#x", "%#08x", "%#.3x", "%X", "%#X", "%o", "%#o",
        "%#5o", "%#.0o", "%u", "%10u", "%-#10x|", "%hhd", "%hd", "%hhx", "%hu",
    };
    for (size_t f = 0; f < sizeof(int_fmts) / sizeof(int_fmts[0]); f++)
        for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
            char mine[64], libc[64];
            int a = fmt_unchecked(mine, sizeof(mine), int_fmts[f], ints[i]);
            int b = snprintf(libc, sizeof(libc), int_fmts[f], ints[i]);
            if (strcmp(mine, libc) != 0 || a != b)
                fail_msg("format '%s' value %d: keel '%s' (%d), libc '%s' (%d)", int_fmts[f],
                         ints[i], mine, a, libc, b);
        }

    static const long long wides[] = {0, -1, INT64_MIN, INT64_MAX, 0x7fffffff00000000ll};
    static const char *const wide_fmts[] = {"%lld", "%+25lld", "%-25lld|", "%025lld",
                                            "%.22lld", "%llx", "%#llX", "%llo", "%llu"};
    for (size_t f = 0; f < sizeof(wide_fmts) / sizeof(wide_fmts[0]); f++)
        for (size_t i = 0; i < sizeof(wides) / sizeof(wides[0]); i++) {
            char mine[64], libc[64];
            int a = fmt_unchecked(mine, sizeof(mine), wide_fmts[f], wides[i]);
            int b = snprintf(libc, sizeof(libc), wide_fmts[f], wides[i]);
            if (strcmp(mine, libc) != 0 || a != b)
                fail_msg("format '%s' value %lld: keel '%s', libc '%s'", wide_fmts[f], wides[i],
                         mine, libc);
        }

    SAME_AS_LIBC("[%s|%10.2s|%-6s|%c%c]", "abc", "xyz", "q", 'A', 'z');
    SAME_AS_LIBC("%d %s %x %%", -3, "mid", 0xabcu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_percent),
        cmocka_unit_test(test_signed),
        cmocka_unit_test(test_unsigned_bases),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_width_precision),
        cmocka_unit_test(test_length_modifiers),
        cmocka_unit_test(test_pointer),
        cmocka_unit_test(test_string_and_char),
        cmocka_unit_test(test_unknown_and_broken_directives),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_width_is_capped),
        cmocka_unit_test(test_matches_libc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
