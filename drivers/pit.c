/* 8254 PIT channel 2 (see pit.h). */
#include "drivers/pit.h"
#include "arch/x86/cpu.h"

#define PIT_CH2_DATA 0x42
#define PIT_MODE_CMD 0x43
#define NMI_SC 0x61 /* system control port B */

#define NMI_SC_GATE2 BIT(0)
#define NMI_SC_SPEAKER BIT(1)
#define NMI_SC_OUT2 BIT(5)
#define NMI_SC_WRITABLE 0x0f

/* Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary. */
#define PIT_CMD_CH2_MODE0 0xb0
/* Counter latch command for channel 2. */
#define PIT_CMD_CH2_LATCH 0x80

static uint8_t saved_nmi_sc;

void pit_ch2_start(uint16_t count)
{
    saved_nmi_sc = inb(NMI_SC);
    /* Gate low while loading so the count starts exactly when the gate opens. */
    uint8_t v = saved_nmi_sc & NMI_SC_WRITABLE & ~(NMI_SC_GATE2 | NMI_SC_SPEAKER);
    outb(NMI_SC, v);
    outb(PIT_MODE_CMD, PIT_CMD_CH2_MODE0);
    outb(PIT_CH2_DATA, (uint8_t)count);
    outb(PIT_CH2_DATA, (uint8_t)(count >> 8));
    outb(NMI_SC, v | NMI_SC_GATE2);
}

bool pit_ch2_expired(void)
{
    return inb(NMI_SC) & NMI_SC_OUT2;
}

uint16_t pit_ch2_read(void)
{
    outb(PIT_MODE_CMD, PIT_CMD_CH2_LATCH);
    uint8_t lo = inb(PIT_CH2_DATA);
    uint8_t hi = inb(PIT_CH2_DATA);
    return (uint16_t)(lo | (hi << 8));
}

void pit_ch2_stop(void)
{
    /* Bits 7:4 are status on read and ignored on write. */
    outb(NMI_SC, saved_nmi_sc & NMI_SC_WRITABLE);
}
