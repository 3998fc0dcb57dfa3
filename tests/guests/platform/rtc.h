/* The CMOS real-time clock (ports 0x70/0x71): a sane date and time, and seconds that
 * advance at the PM timer's idea of one per second. */
#ifndef PLATFORM_RTC_H
#define PLATFORM_RTC_H

void rtc_check(void);

#endif
