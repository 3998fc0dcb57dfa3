/* The platform guest's verdict lines: one per check, in a fixed form the system test
 * greps for, and the counts for the summary. */
#ifndef PLATFORM_REPORT_H
#define PLATFORM_REPORT_H

/* "platform: ok <what>" */
void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "platform: FAIL <what>: <detail>" */
void fail(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "platform: skip <what>": the platform lacks an optional feature. */
void skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "platform: <text>": information that is not a verdict. */
void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

extern unsigned report_ok, report_failed, report_skipped;

#endif
