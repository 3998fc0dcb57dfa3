/* The PC's CMOS RTC (an MC146818: index port 0x70 with the NMI mask in bit 7, data
 * port 0x71) and its 128 bytes of CMOS RAM.
 *
 * Emulated: the time of day (the host time given at attach, plus the VM clock), BCD or
 * binary and 12- or 24-hour registers by register B, the century at 0x32, SET (the
 * clock stops while the guest writes it), register A's divider reset (the first update
 * comes 500 ms after release) and rate select, UIP set for the 244 us (8 cycles of the
 * 32.768 kHz clock) before each update, register C's flags cleared by reading it,
 * register D's valid-RAM bit, and the periodic, alarm (with don't-care bytes) and
 * update-ended interrupts on IRQ 8. NVRAM: the bytes QEMU's PC sets for SeaBIOS
 * (memory sizes at 0x15-0x18, 0x30-0x31, 0x34-0x35, 0x5b-0x5d; CPU count at 0x5f);
 * the rest of 0x0e-0x7f is plain RAM, zero at attach.
 * Left out: daylight saving (DSE is stored, never acted on), the square-wave pin,
 * the divider's test modes (treated as 32.768 kHz), the upper 128 bytes (0x72/0x73).
 *
 * IRQ 8 goes high when an enabled flag is set and low when register C is read; the VM
 * asks for rtc_cmos_deadline() and calls rtc_cmos_poll() at or after it. While the
 * line is high nothing new can be signalled, so the deadline is CLOCK_NEVER then. */
#ifndef KEEL_VMM_DEV_RTC_CMOS_H
#define KEEL_VMM_DEV_RTC_CMOS_H

#include "vmm/dev/bus.h"
#include "vmm/dev/clock.h"
#include "vmm/dev/irq.h"

#define RTC_CMOS_PORT 0x70
#define RTC_CMOS_IRQ 8
#define RTC_CMOS_BYTES 128
#define RTC_CMOS_CENTURY 0x32

struct rtc_time {
    uint16_t year; /* 1900-2999 */
    uint8_t month, day, hour, minute, second;
};

struct rtc_cmos_config {
    struct rtc_time time;  /* the time of day at attach */
    uint64_t ram_below_4g; /* guest RAM below 4 GiB, bytes */
    uint64_t ram_above_4g; /* and above */
    unsigned cpus;         /* 1-256 */
};

enum rtc_cmos_logged {
    RTC_LOG_BAD_VALUE = BIT(0), /* a time register written out of range */
    RTC_LOG_READ_ONLY = BIT(1), /* register C or D written */
    RTC_LOG_DIVIDER = BIT(2),   /* a divider test mode */
};

struct rtc_cmos {
    uint8_t index;
    bool nmi_masked;
    uint8_t ram[RTC_CMOS_BYTES]; /* registers A, B and the alarms are kept here too */
    /* The clock: seconds since 1970 at divider boundary base_k, counting while not
     * frozen (SET, or the divider held in reset). Frozen, the time is in fields. */
    int64_t base_secs;
    uint64_t base_k;
    bool frozen;
    struct rtc_time fields;
    uint8_t wday_adjust; /* what the guest wrote to the day of week, less the real one, mod 7 */
    uint64_t phase_ns;   /* VM time + phase_ns is the divider's time: whole seconds are updates */
    uint64_t k_seen, p_seen; /* updates and periodic ticks already turned into flags */
    uint8_t flags;           /* register C's PF, AF, UF */
    bool irq_high;
    struct dev_clock clock;
    struct irq_sink irq;
    const char *vm_name;
    uint32_t logged; /* enum rtc_cmos_logged */
};

/* Sets the time and the NVRAM bytes from cfg (register A 0x26, B 0x02: BCD, 24-hour,
 * as a BIOS leaves them; the first update one second after attach) and registers
 * ports 0x70-0x71, byte-wide. Returns 0, -BUS_EINVAL (after logging why) for a bad
 * config, or a negative bus error. */
int rtc_cmos_attach(struct rtc_cmos *rtc, struct vm_bus *bus, const struct dev_clock *clock,
                    const struct irq_sink *irq, const struct rtc_cmos_config *cfg, const char *vm_name);

/* A reset of the machine, not of the battery-backed chip: the time and the CMOS RAM
 * stay (a BIOS reads its shutdown status byte 0x0F there after a reset), the interrupt
 * enables and flags clear as the MC146818's RESET input does, IRQ 8 goes low. */
void rtc_cmos_system_reset(struct rtc_cmos *rtc);

/* VM time (ns) of the next event that would raise IRQ 8, or CLOCK_NEVER. */
uint64_t rtc_cmos_deadline(struct rtc_cmos *rtc);

/* Sets the flags of everything up to now, raising IRQ 8 if one is enabled. */
void rtc_cmos_poll(struct rtc_cmos *rtc);

/* Port 0x70 bit 7: the guest masked NMIs. */
static inline bool rtc_cmos_nmi_masked(const struct rtc_cmos *rtc)
{
    return rtc->nmi_masked;
}

#endif
