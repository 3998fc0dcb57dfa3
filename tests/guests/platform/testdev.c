#include "guest.h"
#include "intr.h"
#include "report.h"
#include "testdev.h"
#include "timing.h"

#define TESTDEV_SCRATCH 0xE0
#define TESTDEV_IRQ_BASE 0x2000
#define TESTDEV_MMIO 0xFF000000u
/* An ISA line with no interrupt override, so its GSI is its IOAPIC pin. */
#define TESTDEV_LINE 10
#define WAIT_MS 100

void testdev_check(const struct acpi_info *acpi, uint32_t bsp_id)
{
    outl(TESTDEV_SCRATCH, 0x5aa5c33cu);
    uint32_t back = inl(TESTDEV_SCRATCH);
    if (back != 0x5aa5c33cu) {
        skip("testdev: no pc-testdev (port 0x%x reads 0x%x)", TESTDEV_SCRATCH, back);
        return;
    }
    volatile uint32_t *mmio = (volatile uint32_t *)(uintptr_t)TESTDEV_MMIO;
    mmio[1] = 0xc0ffee11u;
    if (mmio[1] != 0xc0ffee11u) {
        fail("testdev", "MMIO scratch at 0x%x reads 0x%x after writing 0xc0ffee11", TESTDEV_MMIO + 4, mmio[1]);
        return;
    }
    if (!acpi->madt_ok || !acpi->ioapic_addr) {
        fail("testdev", "no IOAPIC from the MADT to route line %u", TESTDEV_LINE);
        return;
    }
    ioapic_init(acpi->ioapic_addr);
    uint32_t before = counts.testdev;
    ioapic_route(TESTDEV_LINE, VEC_TESTDEV, bsp_id, false, false);
    sti();
    outb(TESTDEV_IRQ_BASE + TESTDEV_LINE, 1);
    uint64_t dl = deadline_ms(WAIT_MS);
    while (counts.testdev == before && !expired(dl))
        __asm__ volatile("pause");
    outb(TESTDEV_IRQ_BASE + TESTDEV_LINE, 0);
    cli();
    ioapic_mask(TESTDEV_LINE);
    uint32_t n = counts.testdev - before;
    if (n != 1)
        fail("testdev", "raising line %u through port 0x%x gave %u interrupts on vector 0x%x in %u ms, want 1",
             TESTDEV_LINE, TESTDEV_IRQ_BASE + TESTDEV_LINE, n, VEC_TESTDEV, WAIT_MS);
    else
        ok("testdev: scratch port and MMIO page read back; line %u raised through port 0x%x arrived as vector 0x%x "
           "through IOAPIC pin %u", TESTDEV_LINE, TESTDEV_IRQ_BASE + TESTDEV_LINE, VEC_TESTDEV, TESTDEV_LINE);
}
