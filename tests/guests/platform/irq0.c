#include "guest.h"
#include "intr.h"
#include "irq0.h"
#include "report.h"
#include "timing.h"

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_CMD_CH0_LOHI_MODE2 0x34
#define PIT_CMD_CH0_LOHI_MODE0 0x30
#define IRQ0_HZ 1000
#define WINDOW_MS 100
#define MPS_POLARITY_LOW 3u
#define MPS_TRIGGER_LEVEL 3u

static void pit_rate(uint32_t hz)
{
    uint32_t div = (PIT_HZ + hz / 2) / hz;
    outb(PIT_CMD, PIT_CMD_CH0_LOHI_MODE2);
    outb(PIT_CH0, (uint8_t)div);
    outb(PIT_CH0, (uint8_t)(div >> 8));
}

/* Takes interrupts for WINDOW_MS, then has `stop` mask the line and takes what was
 * already on its way, so that none is left pending for the next window. */
static void count_window(void (*stop)(uint32_t), uint32_t arg)
{
    uint64_t dl = deadline_ms(WINDOW_MS);
    sti();
    while (!expired(dl))
        __asm__ volatile("pause");
    stop(arg);
    delay_us(2000);
    cli();
}

/* At IRQ0_HZ a window should see WINDOW_MS interrupts. An emulator that falls behind
 * drops PIT ticks rather than queueing them: QEMU's TCG, whose PIT and TSC follow the
 * host's clock, delivered 24 of 100 with 4 vCPU threads on a loaded 2-core host. So
 * the floor only says the line is alive and periodic; the ceiling catches a wrong
 * divisor or a line that stays asserted. */
static bool rate_ok(uint32_t n)
{
    uint32_t want = IRQ0_HZ * WINDOW_MS / 1000;
    return n >= want / 10 && n <= want + want / 2;
}

static void stop_pic(uint32_t unused)
{
    (void)unused;
    pic_program(0);
}

static void via_ioapic(const struct acpi_info *acpi, uint32_t bsp_id)
{
    if (!acpi->madt_ok || !acpi->ioapic_addr) {
        fail("irq0-ioapic", "no IOAPIC from the MADT");
        return;
    }
    ioapic_init(acpi->ioapic_addr);
    uint32_t pins = ioapic_pins();
    if (acpi->irq0_gsi < acpi->ioapic_gsi_base || acpi->irq0_gsi - acpi->ioapic_gsi_base >= pins) {
        fail("irq0-ioapic", "GSI %u is not on the IOAPIC (GSIs %u-%u)", acpi->irq0_gsi,
             acpi->ioapic_gsi_base, acpi->ioapic_gsi_base + pins - 1);
        return;
    }
    uint32_t pin = acpi->irq0_gsi - acpi->ioapic_gsi_base;
    bool low = (acpi->irq0_flags & 3) == MPS_POLARITY_LOW;
    bool level = ((acpi->irq0_flags >> 2) & 3) == MPS_TRIGGER_LEVEL;
    uint32_t io0 = counts.ioapic_irq0, pic0 = counts.pic_irq0;
    ioapic_route(pin, VEC_IOAPIC_IRQ0, bsp_id, low, level);
    count_window(ioapic_mask, pin);
    uint32_t n = counts.ioapic_irq0 - io0, stray = counts.pic_irq0 - pic0;
    if (!rate_ok(n) || stray)
        fail("irq0-ioapic", "%u interrupts on IOAPIC pin %u in %u ms at %u Hz (and %u through "
             "the PIC, want 0)", n, pin, WINDOW_MS, IRQ0_HZ, stray);
    else
        ok("irq0-ioapic: PIT mode 2 at %u Hz: %u interrupts on IOAPIC pin %u (GSI %u, %s %s) "
           "in %u ms", IRQ0_HZ, n, pin, acpi->irq0_gsi, level ? "level" : "edge",
           low ? "low" : "high", WINDOW_MS);
}

static void via_pic(void)
{
    uint32_t io0 = counts.ioapic_irq0, pic0 = counts.pic_irq0;
    lapic_write(LAPIC_LVT_LINT0, LVT_EXTINT);
    pic_program(0x01);
    count_window(stop_pic, 0);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    uint32_t n = counts.pic_irq0 - pic0, stray = counts.ioapic_irq0 - io0;
    if (!rate_ok(n) || stray)
        fail("irq0-pic", "%u interrupts through the 8259 in %u ms at %u Hz (and %u through "
             "the IOAPIC, want 0)", n, WINDOW_MS, IRQ0_HZ, stray);
    else
        ok("irq0-pic: PIT mode 2 at %u Hz: %u interrupts through the 8259 (vector 0x%x, "
           "ExtINT on LINT0) in %u ms", IRQ0_HZ, n, VEC_PIC_IRQ0, WINDOW_MS);
}

void irq0_check(const struct acpi_info *acpi, uint32_t bsp_id)
{
    pit_rate(IRQ0_HZ);
    via_ioapic(acpi, bsp_id);
    via_pic();
    /* Mode 0 with no count written: OUT stays low, no more edges on IRQ0. */
    outb(PIT_CMD, PIT_CMD_CH0_LOHI_MODE0);
}
