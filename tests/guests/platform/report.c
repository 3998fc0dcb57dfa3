#include <stdarg.h>
#include "guest.h"
#include "report.h"

unsigned report_ok, report_failed, report_skipped;

static void line(const char *tag, const char *what, const char *fmt, va_list ap)
{
    printf("platform: %s", tag);
    if (what)
        printf("%s: ", what);
    vprintf(fmt, ap);
    printf("\n");
}

void ok(const char *fmt, ...)
{
    va_list ap;
    report_ok++;
    va_start(ap, fmt);
    line("ok ", NULL, fmt, ap);
    va_end(ap);
}

void fail(const char *what, const char *fmt, ...)
{
    va_list ap;
    report_failed++;
    va_start(ap, fmt);
    line("FAIL ", what, fmt, ap);
    va_end(ap);
}

void skip(const char *fmt, ...)
{
    va_list ap;
    report_skipped++;
    va_start(ap, fmt);
    line("skip ", NULL, fmt, ap);
    va_end(ap);
}

void note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    line("", NULL, fmt, ap);
    va_end(ap);
}
