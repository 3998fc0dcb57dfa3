/* The virtual IOAPIC (vmm/dev/vioapic.c) delivering to real virtual LAPICs over the
 * VM's APIC bus, with a simulated clock: registers and their read-only bits, edge and
 * level pins, remote IRR and the LAPIC's EOI clearing it (re-delivering while the line
 * is still asserted), delivery modes and destinations, a redirection to a vCPU the VM
 * does not have, the irq_sink seam and the MMIO window.
 * SOURCES: vmm/dev/vioapic.c vmm/dev/vlapic.c vmm/dev/apic_bus.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/vioapic.h"
#include "vmm/dev/vlapic.h"
#include "vmm/dev/apic_bus.h"
#include "tests/unit/console_capture.h"

#define NCPUS 3

static uint64_t now;
static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return now;
}
static const struct dev_clock clk = {.now_ns = fake_now};

static uint32_t kicks[MAX_VCPUS];
static void fake_kick(void *ctx, uint32_t vcpu)
{
    (void)ctx;
    kicks[vcpu]++;
}

static struct apic_bus apic;
static struct vlapic *cpu[NCPUS];
static struct vioapic io;

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < NCPUS; i++) {
        cpu[i] = aligned_alloc(4096, sizeof(struct vlapic));
        assert_non_null(cpu[i]);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NCPUS; i++)
        free(cpu[i]);
    return 0;
}

static int reset_vm(void **state)
{
    (void)state;
    struct apic_bus_config c = {.vm_name = "t", .clock = &clk, .tsc_hz = 1000000000, .timer_hz = 1000000000,
                                .ram_size = 1 << 20, .phys_bits = 39, .kick = fake_kick};
    assert_true(apic_bus_init(&apic, &c));
    for (int i = 0; i < NCPUS; i++) {
        assert_true(apic_bus_add_vcpu(&apic, cpu[i], (uint32_t)i));
        vlapic_mmio_write(cpu[i], APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    }
    vioapic_init(&io, &apic, "t", VIOAPIC_DEFAULT_ID);
    memset(kicks, 0, sizeof(kicks));
    capture_reset();
    return 0;
}

static uint32_t reg_read(uint32_t index)
{
    vioapic_write(&io, IOAPIC_IOREGSEL, index);
    return vioapic_read(&io, IOAPIC_IOWIN);
}

static void reg_write(uint32_t index, uint32_t value)
{
    vioapic_write(&io, IOAPIC_IOREGSEL, index);
    vioapic_write(&io, IOAPIC_IOWIN, value);
}

/* Programs pin: low dword of its entry, destination in bits 63:56. */
static void route(unsigned pin, uint32_t lo, uint8_t dest)
{
    reg_write(IOAPIC_REG_REDIR(pin) + 1, (uint32_t)dest << 24);
    reg_write(IOAPIC_REG_REDIR(pin), lo);
}

static uint32_t entry_lo(unsigned pin)
{
    return reg_read(IOAPIC_REG_REDIR(pin));
}

static bool irr(const struct vlapic *l, uint8_t v)
{
    return l->regs[APIC_IRR / 4 + (v / 32) * 4] >> (v % 32) & 1;
}

/* What the vCPU does: take the interrupt, run the handler, EOI. */
static void take_and_eoi(struct vlapic *l, int vector)
{
    assert_int_equal(vlapic_pending_intr(l), vector);
    vlapic_accept_intr(l, (uint8_t)vector);
    vlapic_mmio_write(l, APIC_EOI, 4, 0);
}

static void test_registers(void **state)
{
    (void)state;
    assert_int_equal(reg_read(IOAPIC_REG_VERSION), 0x00170011);
    assert_int_equal(reg_read(IOAPIC_REG_ID), 0);
    reg_write(IOAPIC_REG_ID, 0xffffffff);
    assert_int_equal(reg_read(IOAPIC_REG_ID), 0x0f000000);
    assert_int_equal(reg_read(IOAPIC_REG_ARB), 0x0f000000); /* loaded from the ID */
    reg_write(IOAPIC_REG_VERSION, 0);
    reg_write(IOAPIC_REG_ARB, 0);
    assert_int_equal(reg_read(IOAPIC_REG_VERSION), 0x00170011);
    assert_int_equal(reg_read(IOAPIC_REG_ARB), 0x0f000000);
    /* Reset: every entry masked, edge, vector 0, destination 0. */
    for (unsigned pin = 0; pin < VIOAPIC_PINS; pin++) {
        assert_int_equal(entry_lo(pin), IOAPIC_REDIR_MASKED);
        assert_int_equal(reg_read(IOAPIC_REG_REDIR(pin) + 1), 0);
    }
    /* Writable bits only: delivery status and remote IRR are the IOAPIC's. */
    reg_write(IOAPIC_REG_REDIR(5), 0xffffffff);
    assert_int_equal(entry_lo(5), 0x0001afff);
    reg_write(IOAPIC_REG_REDIR(5) + 1, 0xffffffff);
    assert_int_equal(reg_read(IOAPIC_REG_REDIR(5) + 1), 0xff000000);
    /* Indices past the table read 0 and ignore writes. */
    reg_write(IOAPIC_REG_REDIR(VIOAPIC_PINS), 0x1234);
    assert_int_equal(reg_read(IOAPIC_REG_REDIR(VIOAPIC_PINS)), 0);
    assert_int_equal(reg_read(0x03), 0);
    /* IOREGSEL reads back its 8 bits. */
    vioapic_write(&io, IOAPIC_IOREGSEL, 0x1ff);
    assert_int_equal(vioapic_read(&io, IOAPIC_IOREGSEL), 0xff);
    assert_int_equal(vioapic_read(&io, 0x20), 0);
}

static void test_edge(void **state)
{
    (void)state;
    route(4, 0x34, 1); /* fixed, physical, edge, vector 0x34 to APIC ID 1 */
    vioapic_set_irq(&io, 4, true);
    assert_true(irr(cpu[1], 0x34));
    assert_int_equal(kicks[1], 1);
    assert_false(irr(cpu[0], 0x34));
    take_and_eoi(cpu[1], 0x34);
    /* Held high: no second edge. */
    vioapic_set_irq(&io, 4, true);
    assert_false(irr(cpu[1], 0x34));
    vioapic_set_irq(&io, 4, false);
    vioapic_set_irq(&io, 4, true);
    assert_true(irr(cpu[1], 0x34));
    take_and_eoi(cpu[1], 0x34);
    vioapic_set_irq(&io, 4, false);
    /* Edge pins never set remote IRR. */
    assert_int_equal(entry_lo(4) & IOAPIC_REDIR_REMOTE_IRR, 0);
    /* An edge while masked is lost, unmasking does not bring it back. */
    route(4, IOAPIC_REDIR_MASKED | 0x34, 1);
    vioapic_set_irq(&io, 4, true);
    route(4, 0x34, 1);
    assert_false(irr(cpu[1], 0x34));
    vioapic_set_irq(&io, 4, false);
    /* Through the irq_sink seam, as the router drives it. */
    struct irq_sink sink = vioapic_irq_sink(&io);
    irq_pulse(&sink, 4);
    assert_true(irr(cpu[1], 0x34));
    irq_pulse(&sink, VIOAPIC_PINS); /* not a pin: ignored */
}

static void test_level_remote_irr_and_eoi(void **state)
{
    (void)state;
    route(10, IOAPIC_REDIR_LEVEL | 0x5a, 2);
    vioapic_set_irq(&io, 10, true);
    assert_true(irr(cpu[2], 0x5a));
    assert_true(entry_lo(10) & IOAPIC_REDIR_REMOTE_IRR);
    /* The LAPIC knows it is level-triggered (TMR). */
    assert_true(cpu[2]->regs[APIC_TMR / 4 + (0x5a / 32) * 4] >> (0x5a % 32) & 1);
    /* While remote IRR is set, nothing more is sent. */
    vlapic_accept_intr(cpu[2], 0x5a);
    vioapic_set_irq(&io, 10, true);
    assert_false(irr(cpu[2], 0x5a));
    /* The EOI with the line still asserted: remote IRR clears and it comes again. */
    vlapic_mmio_write(cpu[2], APIC_EOI, 4, 0);
    assert_true(irr(cpu[2], 0x5a));
    assert_true(entry_lo(10) & IOAPIC_REDIR_REMOTE_IRR);
    /* The guest silences the device, then EOIs: remote IRR clears, nothing is resent. */
    vioapic_set_irq(&io, 10, false);
    take_and_eoi(cpu[2], 0x5a);
    assert_int_equal(entry_lo(10) & IOAPIC_REDIR_REMOTE_IRR, 0);
    assert_false(irr(cpu[2], 0x5a));
    /* Masked while asserted: held back until unmasked. */
    route(10, IOAPIC_REDIR_MASKED | IOAPIC_REDIR_LEVEL | 0x5a, 2);
    vioapic_set_irq(&io, 10, true);
    assert_false(irr(cpu[2], 0x5a));
    route(10, IOAPIC_REDIR_LEVEL | 0x5a, 2);
    assert_true(irr(cpu[2], 0x5a));
    /* Reprogrammed to edge: remote IRR goes. */
    route(10, 0x5a, 2);
    assert_int_equal(entry_lo(10) & IOAPIC_REDIR_REMOTE_IRR, 0);
    /* The guest cannot set remote IRR itself. */
    route(11, IOAPIC_REDIR_MASKED | IOAPIC_REDIR_LEVEL | IOAPIC_REDIR_REMOTE_IRR | 0x60, 0);
    assert_int_equal(entry_lo(11) & IOAPIC_REDIR_REMOTE_IRR, 0);
}

static void test_eoi_matches_vector(void **state)
{
    (void)state;
    /* Two level pins sharing a vector (a shared PCI interrupt), a third with its own. */
    route(16, IOAPIC_REDIR_LEVEL | 0x70, 0);
    route(17, IOAPIC_REDIR_LEVEL | 0x70, 0);
    route(18, IOAPIC_REDIR_LEVEL | 0x71, 0);
    vioapic_set_irq(&io, 16, true);
    vioapic_set_irq(&io, 17, true);
    vioapic_set_irq(&io, 18, true);
    vioapic_set_irq(&io, 16, false);
    vioapic_set_irq(&io, 17, false);
    vioapic_eoi(&io, 0x70);
    assert_int_equal(entry_lo(16) & IOAPIC_REDIR_REMOTE_IRR, 0);
    assert_int_equal(entry_lo(17) & IOAPIC_REDIR_REMOTE_IRR, 0);
    assert_true(entry_lo(18) & IOAPIC_REDIR_REMOTE_IRR);
    vioapic_eoi(&io, 0x72);
    assert_true(entry_lo(18) & IOAPIC_REDIR_REMOTE_IRR);
}

static void test_delivery_modes(void **state)
{
    (void)state;
    route(1, APIC_DM_NMI << 8, 1);
    vioapic_set_irq(&io, 1, true);
    assert_int_equal(vlapic_take_events(cpu[1]), VLAPIC_EV_NMI);
    route(2, APIC_DM_INIT << 8, 2);
    vioapic_set_irq(&io, 2, true);
    assert_int_equal(vlapic_take_events(cpu[2]), VLAPIC_EV_INIT);
    assert_int_equal(vlapic_mmio_read(cpu[2], APIC_SVR, 4), 0xff); /* INIT reset it */
    vlapic_mmio_write(cpu[2], APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    route(3, APIC_DM_EXTINT << 8, 0);
    vioapic_set_irq(&io, 3, true);
    assert_true(vlapic_extint_pending(cpu[0]));
    assert_int_equal(vlapic_take_events(cpu[0]), VLAPIC_EV_EXTINT);
    /* A level-triggered NMI is not EOIed, so it holds nothing. */
    route(5, IOAPIC_REDIR_LEVEL | APIC_DM_NMI << 8, 1);
    vioapic_set_irq(&io, 5, true);
    assert_int_equal(entry_lo(5) & IOAPIC_REDIR_REMOTE_IRR, 0);
    /* Lowest priority: the vCPU with the lowest TPR among the logical destination. */
    for (int i = 0; i < NCPUS; i++)
        vlapic_mmio_write(cpu[i], APIC_LDR, 4, (1u << i) << 24);
    vlapic_mmio_write(cpu[0], APIC_TPR, 4, 0x30);
    vlapic_mmio_write(cpu[1], APIC_TPR, 4, 0x20);
    vlapic_mmio_write(cpu[2], APIC_TPR, 4, 0x10);
    route(6, BIT(11) | APIC_DM_LOWEST << 8 | 0x66, 0x03);
    vioapic_set_irq(&io, 6, true);
    assert_true(irr(cpu[1], 0x66));
    assert_false(irr(cpu[0], 0x66) || irr(cpu[2], 0x66));
    /* Logical fixed to a set. */
    route(7, BIT(11) | 0x67, 0x05);
    vioapic_set_irq(&io, 7, true);
    assert_true(irr(cpu[0], 0x67) && irr(cpu[2], 0x67));
    assert_false(irr(cpu[1], 0x67));
    /* Physical broadcast. */
    route(8, 0x68, 0xff);
    vioapic_set_irq(&io, 8, true);
    for (int i = 0; i < NCPUS; i++)
        assert_true(irr(cpu[i], 0x68));
    /* Reserved modes are not sent, logged once. */
    route(9, 3 << 8 | 0x69, 0);
    vioapic_set_irq(&io, 9, true);
    route(12, APIC_DM_SIPI << 8 | 0x69, 0);
    vioapic_set_irq(&io, 12, true);
    assert_false(irr(cpu[0], 0x69));
    assert_int_equal(vlapic_take_events(cpu[0]), 0);
    assert_logged("IOAPIC pin 9 has the reserved delivery mode 3");
    assert_int_equal(capture_count(), 1);
}

static void test_missing_destination(void **state)
{
    (void)state;
    route(20, IOAPIC_REDIR_LEVEL | 0x80, 7); /* the VM has APIC IDs 0-2 */
    vioapic_set_irq(&io, 20, true);
    for (int i = 0; i < NCPUS; i++)
        assert_false(irr(cpu[i], 0x80));
    /* Dropped: remote IRR stays clear, so re-aiming it delivers. */
    assert_int_equal(entry_lo(20) & IOAPIC_REDIR_REMOTE_IRR, 0);
    assert_int_equal(io.dropped, 1);
    assert_logged("IOAPIC pin 20 is redirected to APIC ID 0x7, which the VM does not have: dropped");
    route(21, 0x81, 0x40);
    vioapic_set_irq(&io, 21, true);
    assert_int_equal(io.dropped, 2);
    assert_int_equal(capture_count(), 1); /* logged once */
    route(20, IOAPIC_REDIR_LEVEL | 0x80, 2);
    assert_true(irr(cpu[2], 0x80));
    assert_true(entry_lo(20) & IOAPIC_REDIR_REMOTE_IRR);
    /* A logical destination nobody has is the same. */
    route(22, BIT(11) | 0x82, 0x80);
    vioapic_set_irq(&io, 22, true);
    assert_int_equal(io.dropped, 3);
    /* A software-disabled target is there but takes nothing: no remote IRR either. */
    vlapic_mmio_write(cpu[1], APIC_SVR, 4, 0xff);
    route(23, IOAPIC_REDIR_LEVEL | 0x83, 1);
    vioapic_set_irq(&io, 23, true);
    assert_false(irr(cpu[1], 0x83));
    assert_int_equal(entry_lo(23) & IOAPIC_REDIR_REMOTE_IRR, 0);
    assert_int_equal(io.dropped, 3);
}

static void test_mmio_window(void **state)
{
    (void)state;
    struct vm_bus *bus = malloc(sizeof(*bus));
    assert_non_null(bus);
    vm_bus_init(bus, "t");
    assert_true(vioapic_attach(&io, bus, VIOAPIC_BASE) > 0);
    uint64_t v = IOAPIC_REG_VERSION;
    vm_bus_access(bus, BUS_MMIO, VIOAPIC_BASE + IOAPIC_IOREGSEL, 4, true, &v);
    v = 0;
    vm_bus_access(bus, BUS_MMIO, VIOAPIC_BASE + IOAPIC_IOWIN, 4, false, &v);
    assert_int_equal(v, 0x00170011);
    /* Programming a pin through the window, then raising it. */
    v = IOAPIC_REG_REDIR(0);
    vm_bus_access(bus, BUS_MMIO, VIOAPIC_BASE + IOAPIC_IOREGSEL, 4, true, &v);
    v = 0x31;
    vm_bus_access(bus, BUS_MMIO, VIOAPIC_BASE + IOAPIC_IOWIN, 4, true, &v);
    vioapic_set_irq(&io, 0, true);
    assert_true(irr(cpu[0], 0x31));
    /* The window and the xAPIC page do not collide with each other. */
    assert_true(apic_bus_attach_mmio(&apic, bus, NULL, NULL) > 0);
    vm_bus_destroy(bus);
    free(bus);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_registers, reset_vm),
        cmocka_unit_test_setup(test_edge, reset_vm),
        cmocka_unit_test_setup(test_level_remote_irr_and_eoi, reset_vm),
        cmocka_unit_test_setup(test_eoi_matches_vector, reset_vm),
        cmocka_unit_test_setup(test_delivery_modes, reset_vm),
        cmocka_unit_test_setup(test_missing_destination, reset_vm),
        cmocka_unit_test_setup(test_mmio_window, reset_vm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
