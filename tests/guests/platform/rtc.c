#include "guest.h"
#include "report.h"
#include "rtc.h"
#include "timing.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define CMOS_NMI_OFF 0x80 /* keep NMIs masked while the index is set, as firmware does */
#define RTC_SEC 0x00
#define RTC_MIN 0x02
#define RTC_HOUR 0x04
#define RTC_DAY 0x07
#define RTC_MONTH 0x08
#define RTC_YEAR 0x09
#define RTC_A 0x0A
#define RTC_B 0x0B
#define RTC_A_UIP 0x80
#define RTC_B_24H 0x02
#define RTC_B_BINARY 0x04
#define RTC_HOUR_PM 0x80

struct rtc_time {
    uint8_t sec, min, hour, day, month, year;
};

static uint8_t cmos(uint8_t reg)
{
    outb(CMOS_INDEX, CMOS_NMI_OFF | reg);
    return inb(CMOS_DATA);
}

/* Waits (bounded) for no update in progress: then the registers hold for 244 us. */
static bool wait_uip(void)
{
    uint64_t dl = deadline_ms(20);
    while (cmos(RTC_A) & RTC_A_UIP)
        if (expired(dl))
            return false;
    return true;
}

static bool same(const struct rtc_time *a, const struct rtc_time *b)
{
    return a->sec == b->sec && a->min == b->min && a->hour == b->hour && a->day == b->day &&
           a->month == b->month && a->year == b->year;
}

static bool read_time(struct rtc_time *t)
{
    /* Read until two reads agree, so that an update between them cannot tear the value. */
    for (int tries = 0; tries < 10; tries++) {
        struct rtc_time a, b;
        if (!wait_uip())
            return false;
        a = (struct rtc_time){ cmos(RTC_SEC), cmos(RTC_MIN), cmos(RTC_HOUR), cmos(RTC_DAY),
                               cmos(RTC_MONTH), cmos(RTC_YEAR) };
        if (!wait_uip())
            return false;
        b = (struct rtc_time){ cmos(RTC_SEC), cmos(RTC_MIN), cmos(RTC_HOUR), cmos(RTC_DAY),
                               cmos(RTC_MONTH), cmos(RTC_YEAR) };
        if (same(&a, &b)) {
            *t = a;
            return true;
        }
    }
    return false;
}

/* BCD to binary; false when a digit is not 0-9. */
static bool from_bcd(uint8_t *v)
{
    if ((*v & 0x0F) > 9 || (*v >> 4) > 9)
        return false;
    *v = (uint8_t)((*v >> 4) * 10 + (*v & 0x0F));
    return true;
}

/* Microseconds since the last call, by the PM timer (the TSC when there is none). */
struct stopwatch {
    uint32_t pm;
    uint64_t tsc, us;
};

static void sw_start(struct stopwatch *w)
{
    w->pm = pm_timer_present() ? pm_timer_read() : 0;
    w->tsc = rdtsc();
    w->us = 0;
}

/* Accumulates often enough that a 24-bit PM timer (4.7 s) cannot wrap unseen. */
static uint32_t sw_us(struct stopwatch *w)
{
    if (pm_timer_present()) {
        uint32_t now = pm_timer_read();
        w->us += udiv64_32((uint64_t)pm_timer_delta(w->pm, now) * 1000000u, PM_TIMER_HZ);
        w->pm = now;
    } else {
        uint64_t now = rdtsc();
        w->us += tsc_to_us(now - w->tsc);
        w->tsc = now;
    }
    return (uint32_t)w->us;
}

/* Polls the seconds register until it differs from *sec; false after limit_us. */
static bool next_second(uint8_t *sec, struct stopwatch *w, uint32_t limit_us)
{
    while (sw_us(w) < limit_us) {
        if (!wait_uip())
            return false;
        uint8_t s = cmos(RTC_SEC);
        if (s != *sec) {
            *sec = s;
            return true;
        }
        delay_us(500);
    }
    return false;
}

void rtc_check(void)
{
    struct rtc_time t;
    if (!read_time(&t)) {
        fail("rtc", "update-in-progress (register A bit 7) never cleared, or reads never "
             "agreed");
        return;
    }
    uint8_t b = cmos(RTC_B);
    bool bcd = !(b & RTC_B_BINARY), h24 = b & RTC_B_24H;
    struct rtc_time raw = t;
    bool pm = !h24 && (t.hour & RTC_HOUR_PM);
    t.hour &= h24 ? 0xFF : (uint8_t)~RTC_HOUR_PM;
    bool digits = !bcd || (from_bcd(&t.sec) && from_bcd(&t.min) && from_bcd(&t.hour) &&
                           from_bcd(&t.day) && from_bcd(&t.month) && from_bcd(&t.year));
    if (!h24 && digits)
        t.hour = (uint8_t)(t.hour % 12 + (pm ? 12 : 0));
    bool hour_ok = h24 ? t.hour < 24 : raw.hour != 0;
    if (!digits || t.sec > 59 || t.min > 59 || !hour_ok || t.hour > 23 || t.day < 1 ||
        t.day > 31 || t.month < 1 || t.month > 12 || t.year > 99) {
        fail("rtc", "register B 0x%02x (%s, %s): raw %02x-%02x-%02x %02x:%02x:%02x is not a "
             "date and time", b, bcd ? "BCD" : "binary", h24 ? "24h" : "12h", raw.year,
             raw.month, raw.day, raw.hour, raw.min, raw.sec);
        return;
    }
    ok("rtc: %02u-%02u-%02u %02u:%02u:%02u (%s, %s)", t.year, t.month, t.day, t.hour, t.min,
       t.sec, bcd ? "BCD" : "binary", h24 ? "24-hour" : "12-hour");

    /* From a second's edge to the next: one second of PM-timer time, give or take. */
    uint8_t sec = raw.sec;
    struct stopwatch w;
    sw_start(&w);
    if (!next_second(&sec, &w, 1100000)) {
        fail("rtc-advance", "the seconds register did not change within 1.1 s");
        return;
    }
    sw_start(&w);
    if (!next_second(&sec, &w, 1500000)) {
        fail("rtc-advance", "the seconds register changed once, then not within 1.5 s");
        return;
    }
    uint32_t us = sw_us(&w);
    const char *by = pm_timer_present() ? "PM timer" : "TSC";
    if (us < 900000 || us > 1100000)
        fail("rtc-advance", "one RTC second lasted %u us by the %s", us, by);
    else
        ok("rtc-advance: one RTC second lasted %u us by the %s", us, by);
}
