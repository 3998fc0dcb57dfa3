/* The MC146818 computed from the VM clock (Motorola MC146818A datasheet: "Update
 * cycle", "Register A-D"). The divider's time is the VM time plus phase_ns, counted in
 * cycles of its 32.768 kHz clock; every whole second of it is an update, a periodic
 * tick is a power-of-two number of cycles. Flags are set when someone looks (a port
 * access or a poll) for everything that happened since the last look. */
#include "vmm/dev/rtc_cmos.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/time_math.h"

#define REG_SEC 0x00
#define REG_SEC_ALARM 0x01
#define REG_MIN 0x02
#define REG_MIN_ALARM 0x03
#define REG_HOUR 0x04
#define REG_HOUR_ALARM 0x05
#define REG_WDAY 0x06
#define REG_MDAY 0x07
#define REG_MONTH 0x08
#define REG_YEAR 0x09
#define REG_A 0x0a
#define REG_B 0x0b
#define REG_C 0x0c
#define REG_D 0x0d

#define A_UIP 0x80
#define A_DV 0x70
#define A_DV_NORMAL 0x20
#define A_DV_RESET 0x60 /* 11x: the divider is held */
#define A_RS 0x0f
#define B_SET 0x80
#define B_PIE 0x40
#define B_AIE 0x20
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_PF 0x40
#define C_AF 0x20
#define C_UF 0x10
#define D_VRT 0x80
#define HOUR_PM 0x80
#define ALARM_DONT_CARE 0xc0

#define CYCLES_HZ 32768ull
#define UIP_CYCLES 8 /* 244 us: UIP is set this long before each update */
#define SECS_PER_DAY 86400
#define NO_ALARM (-1)

static void PRINTF_LIKE(3, 4) log_once(struct rtc_cmos *rtc, uint32_t what, const char *fmt, ...)
{
    if (rtc->logged & what)
        return;
    rtc->logged |= what;
    va_list ap;
    va_start(ap, fmt);
    kprintf("VM %s: RTC: ", rtc->vm_name);
    kvprintf(fmt, ap);
    kprintf(" (logged once)\n");
    va_end(ap);
}

/* ---- calendar ---- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, struct rtc_time *t)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    t->year = (uint16_t)((int64_t)yoe + era * 400 + (m <= 2));
    t->month = (uint8_t)m;
    t->day = (uint8_t)(doy - (153 * mp + 2) / 5 + 1);
}

static int64_t secs_from_time(const struct rtc_time *t)
{
    return days_from_civil(t->year, t->month, t->day) * SECS_PER_DAY + t->hour * 3600 + t->minute * 60 +
           t->second;
}

static void time_from_secs(int64_t s, struct rtc_time *t)
{
    int64_t days = s / SECS_PER_DAY, sod = s % SECS_PER_DAY;
    if (sod < 0) {
        sod += SECS_PER_DAY;
        days--;
    }
    civil_from_days(days, t);
    t->hour = (uint8_t)(sod / 3600);
    t->minute = (uint8_t)(sod / 60 % 60);
    t->second = (uint8_t)(sod % 60);
}

static bool time_valid(const struct rtc_time *t)
{
    return t->year >= 1900 && t->year <= 2999 && t->month >= 1 && t->month <= 12 && t->day >= 1 && t->day <= 31 &&
           t->hour < 24 && t->minute < 60 && t->second < 60;
}

/* ---- the divider ---- */

static bool divider_running(const struct rtc_cmos *rtc)
{
    return (rtc->ram[REG_A] & A_DV_RESET) != A_DV_RESET;
}

static uint64_t cycles_at(const struct rtc_cmos *rtc, uint64_t ns)
{
    return muldiv64(ns + rtc->phase_ns, CYCLES_HZ, NS_PER_SEC);
}

/* The first VM nanosecond at which the divider has counted `cycles`. */
static uint64_t cycles_ns(const struct rtc_cmos *rtc, uint64_t cycles)
{
    uint64_t t = muldiv64(cycles, NS_PER_SEC, CYCLES_HZ);
    if (muldiv64(t, CYCLES_HZ, NS_PER_SEC) < cycles)
        t++;
    return t > rtc->phase_ns ? t - rtc->phase_ns : 0;
}

/* Cycles between periodic ticks, or 0 when the rate select is off. */
static uint64_t periodic_cycles(const struct rtc_cmos *rtc)
{
    unsigned rs = rtc->ram[REG_A] & A_RS;
    if (!rs)
        return 0;
    if (rs <= 2)
        rs += 7; /* 1 and 2 are the same rates as 8 and 9 at 32.768 kHz */
    return 1ull << (rs - 1);
}

static int64_t secs_at_k(const struct rtc_cmos *rtc, uint64_t k)
{
    return rtc->base_secs + (int64_t)(k - rtc->base_k);
}

/* ---- register encoding ---- */

static bool binary(const struct rtc_cmos *rtc)
{
    return rtc->ram[REG_B] & B_DM_BINARY;
}

static uint8_t encode(const struct rtc_cmos *rtc, unsigned v)
{
    return binary(rtc) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | (v % 10));
}

/* The value of a register byte, or -1 if it is not a number in the current format. */
static int decode(const struct rtc_cmos *rtc, uint8_t b)
{
    if (binary(rtc))
        return b;
    if ((b & 0xf) > 9 || (b >> 4) > 9)
        return -1;
    return (b >> 4) * 10 + (b & 0xf);
}

static uint8_t encode_hour(const struct rtc_cmos *rtc, unsigned h)
{
    if (rtc->ram[REG_B] & B_24H)
        return encode(rtc, h);
    unsigned h12 = h % 12 ? h % 12 : 12;
    return (uint8_t)(encode(rtc, h12) | (h >= 12 ? HOUR_PM : 0));
}

static int decode_hour(const struct rtc_cmos *rtc, uint8_t b)
{
    if (rtc->ram[REG_B] & B_24H)
        return decode(rtc, b);
    int h = decode(rtc, b & ~HOUR_PM);
    if (h < 1 || h > 12)
        return -1;
    return h % 12 + ((b & HOUR_PM) ? 12 : 0);
}

/* ---- the time ---- */

static void current_time(const struct rtc_cmos *rtc, uint64_t now, struct rtc_time *t)
{
    if (rtc->frozen)
        *t = rtc->fields;
    else
        time_from_secs(secs_at_k(rtc, cycles_at(rtc, now) / CYCLES_HZ), t);
}

static unsigned weekday(const struct rtc_cmos *rtc, const struct rtc_time *t)
{
    int64_t days = days_from_civil(t->year, t->month, t->day);
    unsigned sunday0 = (unsigned)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    return (sunday0 + rtc->wday_adjust) % 7 + 1;              /* the PC's RTC: 1 is Sunday */
}

/* ---- alarms ---- */

/* An alarm byte's value, ALARM_ANY for "don't care", or NO_ALARM if it can never match. */
#define ALARM_ANY (-2)
static int alarm_field(const struct rtc_cmos *rtc, unsigned reg, int limit)
{
    uint8_t b = rtc->ram[reg];
    if ((b & ALARM_DONT_CARE) == ALARM_DONT_CARE)
        return ALARM_ANY;
    int v = reg == REG_HOUR_ALARM ? decode_hour(rtc, b) : decode(rtc, b);
    return v >= 0 && v < limit ? v : NO_ALARM;
}

static bool field_matches(int alarm, unsigned v)
{
    return alarm == ALARM_ANY || alarm == (int)v;
}

/* The first second of the day at or after sod that the alarm matches, or NO_ALARM. */
static int alarm_from(const struct rtc_cmos *rtc, int sod)
{
    int ah = alarm_field(rtc, REG_HOUR_ALARM, 24), am = alarm_field(rtc, REG_MIN_ALARM, 60),
        as = alarm_field(rtc, REG_SEC_ALARM, 60);
    if (ah == NO_ALARM || am == NO_ALARM || as == NO_ALARM)
        return NO_ALARM;
    for (int h = sod / 3600; h < 24; h++) {
        if (!field_matches(ah, (unsigned)h))
            continue;
        int m0 = h == sod / 3600 ? sod / 60 % 60 : 0;
        for (int m = m0; m < 60; m++) {
            if (!field_matches(am, (unsigned)m))
                continue;
            int s0 = (h == sod / 3600 && m == m0 && m0 == sod / 60 % 60) ? sod % 60 : 0;
            for (int s = s0; s < 60; s++)
                if (field_matches(as, (unsigned)s))
                    return h * 3600 + m * 60 + s;
        }
    }
    return NO_ALARM;
}

/* The first RTC second after t the alarm matches, or NO_ALARM. */
static int64_t next_alarm(const struct rtc_cmos *rtc, int64_t t)
{
    int64_t next = t + 1;
    int64_t day = next / SECS_PER_DAY, sod = next % SECS_PER_DAY;
    if (sod < 0) {
        sod += SECS_PER_DAY;
        day--;
    }
    int hit = alarm_from(rtc, (int)sod);
    if (hit != NO_ALARM)
        return day * SECS_PER_DAY + hit;
    hit = alarm_from(rtc, 0);
    return hit == NO_ALARM ? NO_ALARM : (day + 1) * SECS_PER_DAY + hit;
}

/* ---- flags and IRQ 8 ---- */

static void update_irq(struct rtc_cmos *rtc)
{
    bool want = rtc->flags & rtc->ram[REG_B] & (C_PF | C_AF | C_UF);
    if (want && !rtc->irq_high) {
        rtc->irq_high = true;
        irq_set(&rtc->irq, RTC_CMOS_IRQ, true);
    }
}

/* Turns updates and periodic ticks up to now into flags. */
static void advance(struct rtc_cmos *rtc, uint64_t now)
{
    uint64_t cycles = cycles_at(rtc, now), k = cycles / CYCLES_HZ;
    if (!rtc->frozen && k > rtc->k_seen) {
        rtc->flags |= C_UF;
        int64_t from = secs_at_k(rtc, rtc->k_seen), to = secs_at_k(rtc, k);
        int64_t hit = next_alarm(rtc, from);
        if (hit != NO_ALARM && hit <= to)
            rtc->flags |= C_AF;
    }
    rtc->k_seen = k;
    uint64_t period = periodic_cycles(rtc);
    if (period && divider_running(rtc)) {
        uint64_t p = cycles / period;
        if (p > rtc->p_seen)
            rtc->flags |= C_PF;
        rtc->p_seen = p;
    }
    update_irq(rtc);
}

/* Restarts the periodic count at now (the rate changed, or the divider restarted). */
static void restart_periodic(struct rtc_cmos *rtc, uint64_t now)
{
    uint64_t period = periodic_cycles(rtc);
    rtc->p_seen = period ? cycles_at(rtc, now) / period : 0;
}

static void freeze(struct rtc_cmos *rtc, uint64_t now)
{
    if (rtc->frozen)
        return;
    current_time(rtc, now, &rtc->fields);
    rtc->frozen = true;
}

static void thaw(struct rtc_cmos *rtc, uint64_t now)
{
    if (!rtc->frozen || (rtc->ram[REG_B] & B_SET) || !divider_running(rtc))
        return;
    rtc->base_secs = secs_from_time(&rtc->fields);
    rtc->base_k = rtc->k_seen = cycles_at(rtc, now) / CYCLES_HZ;
    rtc->frozen = false;
}

uint64_t rtc_cmos_deadline(struct rtc_cmos *rtc)
{
    uint64_t now = clock_now_ns(&rtc->clock);
    advance(rtc, now);
    if (rtc->irq_high)
        return CLOCK_NEVER;
    uint8_t b = rtc->ram[REG_B];
    uint64_t best = CLOCK_NEVER;
    uint64_t period = periodic_cycles(rtc);
    if ((b & B_PIE) && period && divider_running(rtc))
        best = MIN(best, cycles_ns(rtc, (rtc->p_seen + 1) * period));
    if (!rtc->frozen) {
        if (b & B_UIE)
            best = MIN(best, cycles_ns(rtc, (rtc->k_seen + 1) * CYCLES_HZ));
        if (b & B_AIE) {
            int64_t hit = next_alarm(rtc, secs_at_k(rtc, rtc->k_seen));
            if (hit != NO_ALARM)
                best = MIN(best, cycles_ns(rtc, (rtc->base_k + (uint64_t)(hit - rtc->base_secs)) * CYCLES_HZ));
        }
    }
    return best == CLOCK_NEVER ? best : MAX(best, now);
}

void rtc_cmos_poll(struct rtc_cmos *rtc)
{
    advance(rtc, clock_now_ns(&rtc->clock));
}

/* ---- registers ---- */

static uint8_t read_reg(struct rtc_cmos *rtc, unsigned reg, uint64_t now)
{
    struct rtc_time t;
    switch (reg) {
    case REG_SEC: current_time(rtc, now, &t); return encode(rtc, t.second);
    case REG_MIN: current_time(rtc, now, &t); return encode(rtc, t.minute);
    case REG_HOUR: current_time(rtc, now, &t); return encode_hour(rtc, t.hour);
    case REG_WDAY: current_time(rtc, now, &t); return encode(rtc, weekday(rtc, &t));
    case REG_MDAY: current_time(rtc, now, &t); return encode(rtc, t.day);
    case REG_MONTH: current_time(rtc, now, &t); return encode(rtc, t.month);
    case REG_YEAR: current_time(rtc, now, &t); return encode(rtc, t.year % 100);
    case RTC_CMOS_CENTURY: current_time(rtc, now, &t); return encode(rtc, t.year / 100);
    case REG_A: {
        bool uip = !rtc->frozen && cycles_at(rtc, now) % CYCLES_HZ >= CYCLES_HZ - UIP_CYCLES;
        return (uint8_t)((rtc->ram[REG_A] & ~A_UIP) | (uip ? A_UIP : 0));
    }
    case REG_C: {
        advance(rtc, now);
        uint8_t v = rtc->flags | (rtc->flags & rtc->ram[REG_B] & (C_PF | C_AF | C_UF) ? C_IRQF : 0);
        rtc->flags = 0;
        if (rtc->irq_high) {
            rtc->irq_high = false;
            irq_set(&rtc->irq, RTC_CMOS_IRQ, false);
        }
        return v;
    }
    case REG_D: return D_VRT;
    default: return rtc->ram[reg];
    }
}

/* A write to a time register: the new field, or false if the value is not one. */
static bool write_time(struct rtc_cmos *rtc, unsigned reg, uint8_t v, uint64_t now)
{
    int x = reg == REG_HOUR ? decode_hour(rtc, v) : decode(rtc, v);
    static const struct {
        int lo, hi;
    } range[] = {[REG_SEC] = {0, 59}, [REG_MIN] = {0, 59}, [REG_HOUR] = {0, 23}, [REG_WDAY] = {1, 7},
                 [REG_MDAY] = {1, 31}, [REG_MONTH] = {1, 12}, [REG_YEAR] = {0, 99}};
    int lo = reg == RTC_CMOS_CENTURY ? 19 : range[reg].lo, hi = reg == RTC_CMOS_CENTURY ? 29 : range[reg].hi;
    if (x < lo || x > hi)
        return false;
    struct rtc_time t;
    current_time(rtc, now, &t);
    switch (reg) {
    case REG_SEC: t.second = (uint8_t)x; break;
    case REG_MIN: t.minute = (uint8_t)x; break;
    case REG_HOUR: t.hour = (uint8_t)x; break;
    case REG_MDAY: t.day = (uint8_t)x; break;
    case REG_MONTH: t.month = (uint8_t)x; break;
    case REG_YEAR: t.year = (uint16_t)(t.year / 100 * 100 + x); break;
    case RTC_CMOS_CENTURY: t.year = (uint16_t)(x * 100 + t.year % 100); break;
    case REG_WDAY: {
        rtc->wday_adjust = 0;
        rtc->wday_adjust = (uint8_t)((x - (int)weekday(rtc, &t) + 7) % 7);
        return true;
    }
    default: break;
    }
    if (rtc->frozen) {
        /* Kept as written: a date like 31 February is legal while SET is, as the guest
         * may be half-way through writing a new one. */
        rtc->fields = t;
    } else {
        rtc->base_secs = secs_from_time(&t);
        rtc->base_k = rtc->k_seen;
    }
    return true;
}

static void write_reg(struct rtc_cmos *rtc, unsigned reg, uint8_t v, uint64_t now)
{
    advance(rtc, now);
    switch (reg) {
    case REG_SEC:
    case REG_MIN:
    case REG_HOUR:
    case REG_WDAY:
    case REG_MDAY:
    case REG_MONTH:
    case REG_YEAR:
    case RTC_CMOS_CENTURY:
        if (!write_time(rtc, reg, v, now))
            log_once(rtc, RTC_LOG_BAD_VALUE, "register 0x%02x written 0x%02x, not a valid %s value; dropped", reg, v,
                     binary(rtc) ? "binary" : "BCD");
        break;
    case REG_A: {
        uint8_t dv = v & A_DV;
        if (dv != A_DV_NORMAL && (dv & A_DV_RESET) != A_DV_RESET)
            log_once(rtc, RTC_LOG_DIVIDER, "register A 0x%02x selects a divider test mode; run at 32.768 kHz", v);
        bool was_held = !divider_running(rtc);
        if ((dv & A_DV_RESET) == A_DV_RESET)
            freeze(rtc, now);
        rtc->ram[REG_A] = v & ~A_UIP;
        if (was_held && divider_running(rtc)) {
            /* Out of reset the divider starts half-way: the first update is 500 ms on. */
            uint64_t into = (now % NS_PER_SEC), want = NS_PER_SEC / 2;
            rtc->phase_ns = (want + NS_PER_SEC - into) % NS_PER_SEC;
            rtc->k_seen = cycles_at(rtc, now) / CYCLES_HZ;
            thaw(rtc, now);
        }
        restart_periodic(rtc, now);
        break;
    }
    case REG_B:
        if (v & B_SET) {
            freeze(rtc, now);
            v &= ~B_UIE; /* SET clears UIE */
        }
        rtc->ram[REG_B] = v;
        thaw(rtc, now);
        update_irq(rtc);
        break;
    case REG_C:
    case REG_D:
        log_once(rtc, RTC_LOG_READ_ONLY, "register %c is read-only; write of 0x%02x dropped", 'A' + reg - REG_A, v);
        break;
    default: rtc->ram[reg] = v; break; /* alarms and NVRAM */
    }
}

static struct bus_result rtc_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)width;
    struct rtc_cmos *rtc = dev;
    /* The index port is write-only; reads float, which probing code expects. */
    *value = offset == 0 ? 0xff : read_reg(rtc, rtc->index, clock_now_ns(&rtc->clock));
    return BUS_OK;
}

static struct bus_result rtc_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)width;
    struct rtc_cmos *rtc = dev;
    if (offset == 0) {
        rtc->index = value & 0x7f;
        rtc->nmi_masked = value & 0x80;
    } else {
        write_reg(rtc, rtc->index, (uint8_t)value, clock_now_ns(&rtc->clock));
    }
    return BUS_OK;
}

static const struct bus_ops rtc_ops = {.read = rtc_read, .write = rtc_write};

static void set16(uint8_t *ram, unsigned at, uint64_t v)
{
    ram[at] = (uint8_t)v;
    ram[at + 1] = (uint8_t)(v >> 8);
}

/* As QEMU's pc_cmos_init() sets them, which SeaBIOS and older kernels read. */
static void set_memory_bytes(struct rtc_cmos *rtc, const struct rtc_cmos_config *cfg)
{
    uint64_t kib = 1024, mib = 1024 * kib, below = cfg->ram_below_4g;
    set16(rtc->ram, 0x15, MIN(below / kib, 640));
    uint64_t ext = below > mib ? (below - mib) / kib : 0;
    set16(rtc->ram, 0x17, MIN(ext, 0xffff));
    set16(rtc->ram, 0x30, MIN(ext, 0xffff));
    uint64_t above16 = below > 16 * mib ? (below - 16 * mib) / (64 * kib) : 0;
    set16(rtc->ram, 0x34, MIN(above16, 0xffff));
    uint64_t high = cfg->ram_above_4g / (64 * kib);
    rtc->ram[0x5b] = (uint8_t)high;
    rtc->ram[0x5c] = (uint8_t)(high >> 8);
    rtc->ram[0x5d] = (uint8_t)(high >> 16);
    rtc->ram[0x5f] = (uint8_t)(cfg->cpus - 1);
}

int rtc_cmos_attach(struct rtc_cmos *rtc, struct vm_bus *bus, const struct dev_clock *clock,
                    const struct irq_sink *irq, const struct rtc_cmos_config *cfg, const char *vm_name)
{
    memset(rtc, 0, sizeof(*rtc));
    rtc->clock = *clock;
    rtc->irq = *irq;
    rtc->vm_name = vm_name;
    if (!time_valid(&cfg->time) || cfg->cpus < 1 || cfg->cpus > 256 || cfg->ram_above_4g / (64 * 1024) > 0xffffff ||
        cfg->ram_below_4g > (4ull << 30)) {
        kprintf("VM %s: RTC: bad configuration (time %u-%02u-%02u %02u:%02u:%02u, %u CPUs, RAM 0x%lx + 0x%lx)\n",
                vm_name, cfg->time.year, cfg->time.month, cfg->time.day, cfg->time.hour, cfg->time.minute,
                cfg->time.second, cfg->cpus, cfg->ram_below_4g, cfg->ram_above_4g);
        return -BUS_EINVAL;
    }
    rtc->ram[REG_A] = A_DV_NORMAL | 0x06;
    rtc->ram[REG_B] = B_24H;
    set_memory_bytes(rtc, cfg);
    uint64_t now = clock_now_ns(clock);
    rtc->phase_ns = (NS_PER_SEC - now % NS_PER_SEC) % NS_PER_SEC;
    rtc->base_k = rtc->k_seen = cycles_at(rtc, now) / CYCLES_HZ;
    rtc->base_secs = secs_from_time(&cfg->time);
    restart_periodic(rtc, now);
    int id = vm_bus_add(bus, &(struct bus_region){.space = BUS_PIO, .base = RTC_CMOS_PORT, .len = 2,
                                                  .widths = BUS_WIDTH_1, .ops = &rtc_ops, .dev = rtc,
                                                  .owner = "RTC/CMOS"});
    return id < 0 ? id : 0;
}

void rtc_cmos_system_reset(struct rtc_cmos *rtc)
{
    rtc->ram[REG_B] &= (uint8_t)~(B_PIE | B_AIE | B_UIE);
    rtc->flags = 0;
    rtc->index = 0;
    rtc->nmi_masked = false;
    if (rtc->irq_high) {
        rtc->irq_high = false;
        irq_set(&rtc->irq, RTC_CMOS_IRQ, false);
    }
}
