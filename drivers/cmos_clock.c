/* Reading the host's CMOS clock. An update can land between two register reads, so
 * the time is read until two passes, each after update-in-progress cleared, agree. */
#include "drivers/cmos_clock.h"
#include "arch/x86/cpu.h"

#define CMOS_INDEX 0x70
#define CMOS_DATA 0x71
#define REG_A_UIP 0x80
#define REG_B_BINARY 0x04
#define REG_B_24H 0x02

static uint8_t cmos(uint8_t reg)
{
    outb(CMOS_INDEX, reg); /* NMI stays enabled: bit 7 clear */
    return inb(CMOS_DATA);
}

static uint8_t from_bcd(uint8_t v)
{
    return (uint8_t)((v >> 4) * 10 + (v & 15));
}

struct raw {
    uint8_t s, m, h, d, mo, y, c;
};

static bool read_once(struct raw *r)
{
    for (int spin = 0; cmos(0x0a) & REG_A_UIP; spin++)
        if (spin > 100000)
            return false;
    r->s = cmos(0x00);
    r->m = cmos(0x02);
    r->h = cmos(0x04);
    r->d = cmos(0x07);
    r->mo = cmos(0x08);
    r->y = cmos(0x09);
    r->c = cmos(0x32);
    return true;
}

bool cmos_clock_read(struct wall_time *t)
{
    *t = (struct wall_time){.year = 2026, .month = 1, .day = 1};
    struct raw a, b;
    int tries = 0;
    do {
        if (!read_once(&a) || !read_once(&b) || ++tries > 8)
            return false;
    } while (a.s != b.s || a.m != b.m || a.h != b.h || a.d != b.d || a.mo != b.mo || a.y != b.y);
    uint8_t regb = cmos(0x0b);
    bool pm = !(regb & REG_B_24H) && (a.h & 0x80);
    a.h &= 0x7f;
    if (!(regb & REG_B_BINARY)) {
        a.s = from_bcd(a.s);
        a.m = from_bcd(a.m);
        a.h = from_bcd(a.h);
        a.d = from_bcd(a.d);
        a.mo = from_bcd(a.mo);
        a.y = from_bcd(a.y);
        a.c = from_bcd(a.c);
    }
    if (!(regb & REG_B_24H))
        a.h = (uint8_t)(a.h % 12 + (pm ? 12 : 0));
    unsigned century = a.c >= 19 && a.c <= 29 ? a.c : 20;
    if (a.s > 59 || a.m > 59 || a.h > 23 || a.d < 1 || a.d > 31 || a.mo < 1 || a.mo > 12 || a.y > 99)
        return false;
    *t = (struct wall_time){.year = (uint16_t)(century * 100 + a.y), .month = a.mo, .day = a.d,
                            .hour = a.h, .minute = a.m, .second = a.s};
    return true;
}
