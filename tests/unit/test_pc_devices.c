/* The PC device models of vmm/dev/ (PIC, PIT, RTC, ACPI PM, fw_cfg, PCI host, i8042,
 * port 0x92, pc-testdev) on one bus, hammered by a guest that writes
 * garbage: a deterministic storm of random port accesses of every width, with time
 * moving and the VM side polling at each device's deadline and acknowledging the PIC.
 * What must hold whatever the guest does: no memory error (ASan/UBSan), a bounded
 * number of console lines (each mistake is logged once per VM), deadlines never in the
 * past, IRQ 0 deliveries bounded by the PIT's minimum gap, and PIC vectors that come
 * from the programmed bases. */
/* SOURCES: vmm/dev/pic8259.c vmm/dev/pit8254.c vmm/dev/rtc_cmos.c vmm/dev/acpi_pm.c vmm/dev/fw_cfg.c vmm/dev/pci_host.c vmm/dev/i8042.c vmm/dev/port92.c vmm/dev/pc_testdev.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/acpi_pm.h"
#include "vmm/dev/fw_cfg.h"
#include "vmm/dev/i8042.h"
#include "vmm/dev/pc_testdev.h"
#include "vmm/dev/port92.h"
#include "vmm/dev/pci_host.h"
#include "vmm/dev/pic8259.h"
#include "vmm/dev/pit8254.h"
#include "vmm/dev/rtc_cmos.h"
#include "tests/unit/console_capture.h"
#include "tests/unit/sim_clock.h"

static struct vm_bus *bus;
static struct pic8259 pic;
static struct pit8254 pit;
static struct rtc_cmos rtc;
static struct acpi_pm pm;
static struct fw_cfg fc;
static struct pci_host pci;
static struct i8042 kbc;
static struct port92 p92;
static struct pc_testdev testdev;
static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The router of a board with only a PIC: every line goes to it, counted. */
static void route(void *ctx, unsigned line, bool high)
{
    (void)ctx;
    sim_irq_set(&sim_irq, line, high);
    if (line < PIC8259_LINES && line != PIC8259_CASCADE)
        pic8259_set_irq(&pic, line, high);
}

static const uint16_t ports[] = {0x20,  0x21,  0xa0,  0xa1,  0x4d0, 0x4d1, 0x40,  0x41,  0x42,  0x43,  0x61,
                                 0x70,  0x71,  0x600, 0x601, 0x602, 0x603, 0x604, 0x605, 0x606, 0x608, 0x609,
                                 0x60a, 0x60b, 0x510, 0x511, 0xcf8, 0xcf9, 0xcfa, 0xcfb, 0xcfc, 0xcfd, 0xcfe,
                                 0xcff, 0x60,  0x64,  0x92,  0xe0,  0xe1,  0xe3,  0xe4,  0xe8,  0xeb,  0x2000,
                                 0x2001, 0x2008, 0x200c, 0x2017, 0x2018};

static void test_random_guest_storm(void **state)
{
    (void)state;
    bus = calloc(1, sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "storm");
    sim_reset();
    capture_reset();
    static const struct irq_sink router = {.set = route};
    static const uint8_t blob[100] = {1};
    const struct rtc_cmos_config cfg = {
        .time = {.year = 2026, .month = 2, .day = 28, .hour = 23, .minute = 59, .second = 30},
        .ram_below_4g = 256 << 20,
        .cpus = 2,
    };
    assert_int_equal(pic8259_attach(&pic, bus, "storm", NULL, NULL), 0);
    assert_int_equal(pit8254_attach(&pit, bus, &sim_clock, &router, "storm"), 0);
    assert_int_equal(rtc_cmos_attach(&rtc, bus, &sim_clock, &router, &cfg, "storm"), 0);
    assert_int_equal(acpi_pm_attach(&pm, bus, &sim_clock, &router, ACPI_PM_BASE, "storm"), 0);
    assert_int_equal(fw_cfg_attach(&fc, bus, 2, 2, 256 << 20, "storm"), 0);
    assert_int_equal(fw_cfg_add_file(&fc, "etc/e820", blob, sizeof(blob)), 0);
    assert_int_equal(pci_host_attach(&pci, bus, &acpi_pm_rcr_ops, &pm, "storm"), 0);
    assert_int_equal(i8042_attach(&kbc, bus, &router, "storm"), 0);
    assert_int_equal(port92_attach(&p92, bus, "storm"), 0);
    assert_int_equal(pc_testdev_attach(&testdev, bus, &router, NULL, NULL, "storm"), 0);

    unsigned stops = 0, acks = 0;
    for (unsigned i = 0; i < 300000; i++) {
        uint64_t r = next_random();
        uint16_t port = ports[r % ARRAY_SIZE(ports)];
        static const unsigned widths[] = {1, 1, 1, 2, 4};
        unsigned width = widths[(r >> 8) % ARRAY_SIZE(widths)];
        uint64_t value = next_random() & ((1ull << (8 * width)) - 1); /* as exit_io.c hands it over */
        bool write = (r >> 16) & 1;
        struct bus_result res = vm_bus_pio(bus, port, width, write, &value);
        if (bus_action(res) != BUS_DONE)
            stops++; /* S5 or a reset: the VM would stop; the storm goes on */
        sim_ns += (r >> 24) % 20000; /* up to 20 us between accesses */

        uint64_t d[3] = {pit8254_deadline(&pit), rtc_cmos_deadline(&rtc), acpi_pm_deadline(&pm)};
        for (unsigned k = 0; k < 3; k++)
            assert_true(d[k] == CLOCK_NEVER || d[k] >= sim_ns);
        if (d[0] <= sim_ns + 20000)
            pit8254_poll(&pit);
        if (d[1] <= sim_ns + 20000)
            rtc_cmos_poll(&rtc);
        if (d[2] <= sim_ns + 20000)
            acpi_pm_poll(&pm);
        if (pic8259_intr(&pic) && (r >> 40) % 4 == 0) {
            uint8_t m = pic.chip[0].vector_base, s = pic.chip[1].vector_base;
            uint8_t v = pic8259_ack(&pic);
            assert_true((v >= m && v < m + 8) || (v >= s && v < s + 8));
            acks++;
        }
    }
    /* Each device logs each kind of mistake once; the bus logs 8 unclaimed ports and
     * a width refusal per range. */
    assert_true(capture_count() <= 48);
    assert_true(pit.irq_delivered <= sim_ns / PIT8254_MIN_IRQ_GAP_NS + 1);
    assert_true(stops > 0);
    assert_true(acks > 0);
    free(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_guest_storm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
