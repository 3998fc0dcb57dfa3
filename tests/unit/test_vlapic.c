/* The virtual local APIC (vmm/dev/vlapic.c) and the APIC bus between a VM's LAPICs
 * (vmm/dev/apic_bus.c), against a simulated clock: reset state, priorities and PPR,
 * IRR/ISR/EOI order, level EOIs reaching the IOAPIC's listener, the timer's arithmetic
 * in each mode, IPI delivery modes and destinations, INIT/SIPI, x2APIC MSR rules,
 * IA32_APIC_BASE transitions and relocation, ESR, CR8.
 * SOURCES: vmm/dev/vlapic.c vmm/dev/apic_bus.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/dev/vlapic.h"
#include "vmm/dev/apic_bus.h"
#include "tests/unit/console_capture.h"

#define RAM_SIZE (16ull << 20)
#define TSC_HZ 2000000000ull   /* 2 GHz guest TSC */
#define TSC_AT_ZERO 1000000ull /* guest TSC when the clock reads 0 */

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
    assert_true(vcpu < MAX_VCPUS);
    kicks[vcpu]++;
}

static int eois;
static uint8_t eoi_vector;
static void fake_eoi(void *ctx, uint8_t vector)
{
    (void)ctx;
    eois++;
    eoi_vector = vector;
}

static uint32_t current_vcpu;
static uint32_t fake_current(void *ctx)
{
    (void)ctx;
    return current_vcpu;
}

static struct apic_bus bus;
static struct vlapic *cpu[MAX_VCPUS];
static struct vm_bus *vmbus;

static struct apic_bus_config config(uint64_t timer_hz)
{
    return (struct apic_bus_config){.vm_name = "t", .clock = &clk, .tsc_hz = TSC_HZ, .tsc_at_zero = TSC_AT_ZERO,
                                    .timer_hz = timer_hz, .ram_size = RAM_SIZE, .ram_high_size = 1ull << 30,
                                    .phys_bits = 39, .kick = fake_kick};
}

/* A VM of n vCPUs with its APIC bus; the timer counts at timer_hz before the divider. */
static void make_vm(uint32_t n, uint64_t timer_hz)
{
    struct apic_bus_config c = config(timer_hz);
    assert_true(apic_bus_init(&bus, &c));
    apic_bus_set_eoi_listener(&bus, fake_eoi, NULL);
    for (uint32_t i = 0; i < n; i++)
        assert_true(apic_bus_add_vcpu(&bus, cpu[i], i));
    memset(kicks, 0, sizeof(kicks));
    eois = 0;
    now = 0;
}

static int setup(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_VCPUS; i++) {
        cpu[i] = aligned_alloc(4096, sizeof(struct vlapic));
        assert_non_null(cpu[i]);
    }
    vmbus = malloc(sizeof(*vmbus));
    assert_non_null(vmbus);
    capture_reset();
    make_vm(4, 1000000000ull);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_VCPUS; i++)
        free(cpu[i]);
    free(vmbus);
    return 0;
}

static uint32_t rd(struct vlapic *l, uint32_t off)
{
    return vlapic_mmio_read(l, off, 4);
}

static void wr(struct vlapic *l, uint32_t off, uint32_t v)
{
    vlapic_mmio_write(l, off, 4, v);
}

static void enable(struct vlapic *l)
{
    wr(l, APIC_SVR, APIC_SVR_ENABLE | 0xff);
}

static bool irr(const struct vlapic *l, uint8_t v)
{
    return l->regs[APIC_IRR / 4 + (v / 32) * 4] >> (v % 32) & 1;
}

static bool isr(const struct vlapic *l, uint8_t v)
{
    return l->regs[APIC_ISR / 4 + (v / 32) * 4] >> (v % 32) & 1;
}

/* A message from a non-LAPIC source (as the IOAPIC sends). */
static int send_fixed(uint8_t dest, uint8_t vector, bool level)
{
    struct apic_msg m = {.dest = dest, .vector = vector, .mode = APIC_DM_FIXED, .level = level};
    return apic_bus_send(&bus, &m, NULL);
}

/* ICR in xAPIC mode: destination first, the low word sends. */
static void ipi(struct vlapic *from, uint8_t dest, uint32_t lo)
{
    wr(from, APIC_ICR_HI, (uint32_t)dest << 24);
    wr(from, APIC_ICR_LO, lo);
}

static uint32_t esr(struct vlapic *l)
{
    wr(l, APIC_ESR, 0);
    return rd(l, APIC_ESR);
}

/* Enables x2APIC mode (through xAPIC, as the SDM requires). */
static void to_x2apic(struct vlapic *l)
{
    uint64_t base;
    assert_int_equal(vlapic_rdmsr(l, MSR_IA32_APIC_BASE, &base), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EXTD), VLAPIC_OK);
    assert_true(vlapic_x2apic(l));
}

/* ---- reset state ---- */

static void test_reset_state(void **state)
{
    (void)state;
    make_vm(2, 1000000000ull);
    assert_int_equal(cpu[0]->base_msr, XAPIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_BSP);
    assert_int_equal(cpu[1]->base_msr, XAPIC_DEFAULT_BASE | APIC_BASE_EN);
    assert_int_equal(rd(cpu[1], APIC_ID), 1u << 24);
    assert_int_equal(rd(cpu[1], APIC_VERSION), 0x00060014);
    assert_int_equal(rd(cpu[1], APIC_DFR), 0xffffffff);
    assert_int_equal(rd(cpu[1], APIC_SVR), 0xff);
    assert_int_equal(rd(cpu[1], APIC_TPR), 0);
    assert_int_equal(rd(cpu[1], APIC_LDR), 0);
    for (uint32_t off = APIC_LVT_TIMER; off <= APIC_LVT_ERROR; off += 0x10)
        assert_int_equal(rd(cpu[1], off), APIC_LVT_MASKED);
    assert_int_equal(rd(cpu[1], APIC_LVT_CMCI), APIC_LVT_MASKED);
    /* The BSP's LINT0 is the PIC's virtual wire, as PC firmware leaves it. */
    assert_int_equal(rd(cpu[0], APIC_LVT_LINT0), 0x700);
    assert_int_equal(vlapic_pending_intr(cpu[1]), -1);
    assert_int_equal(vlapic_timer_deadline(cpu[1]), CLOCK_NEVER);
    /* ID and version are read-only. */
    wr(cpu[1], APIC_ID, 7u << 24);
    wr(cpu[1], APIC_VERSION, 0);
    assert_int_equal(rd(cpu[1], APIC_ID), 1u << 24);
    assert_int_equal(rd(cpu[1], APIC_VERSION), 0x00060014);
}

/* ---- priorities ---- */

static void test_priority_classes_and_ppr(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    enable(l);
    wr(l, APIC_TPR, 0x35);
    assert_int_equal(rd(l, APIC_PPR), 0x35); /* no ISR: PPR is the TPR */
    assert_int_equal(vlapic_highest_irr(l), -1);
    assert_int_equal(send_fixed(1, 0x3f, false), 1);
    assert_int_equal(vlapic_pending_intr(l), -1); /* class 3 is not above PPR class 3 */
    assert_int_equal(vlapic_highest_irr(l), 0x3f); /* held back by the TPR */
    assert_int_equal(send_fixed(1, 0x41, false), 1);
    assert_int_equal(vlapic_pending_intr(l), 0x41);
    vlapic_accept_intr(l, 0x41);
    assert_true(isr(l, 0x41));
    assert_false(irr(l, 0x41));
    /* An in-service class above the TPR's sets the PPR (its low nibble clear). */
    assert_int_equal(rd(l, APIC_PPR), 0x40);
    assert_int_equal(send_fixed(1, 0x4f, false), 1);
    assert_int_equal(vlapic_pending_intr(l), -1); /* same class as the one in service */
    assert_int_equal(send_fixed(1, 0x50, false), 1);
    assert_int_equal(vlapic_pending_intr(l), 0x50);
    /* A TPR above the in-service class wins. */
    wr(l, APIC_TPR, 0x60);
    assert_int_equal(rd(l, APIC_PPR), 0x60);
    assert_int_equal(vlapic_pending_intr(l), -1);
    /* Arbitration priority: TPR above IRR and ISR classes gives the TPR... */
    assert_int_equal(rd(l, APIC_APR), 0x60);
    /* ...otherwise the highest of the three classes. */
    wr(l, APIC_TPR, 0x10);
    assert_int_equal(rd(l, APIC_APR), 0x50);
    assert_int_equal(vlapic_pending_intr(l), 0x50);
}

static void test_irr_isr_eoi_order(void **state)
{
    (void)state;
    struct vlapic *l = cpu[2];
    enable(l);
    send_fixed(2, 0x40, false);
    send_fixed(2, 0x80, false);
    send_fixed(2, 0x60, false);
    assert_int_equal(kicks[2], 3);
    assert_int_equal(vlapic_pending_intr(l), 0x80);
    vlapic_accept_intr(l, 0x80);
    /* Lower classes wait while 0x80 is in service. */
    assert_int_equal(vlapic_pending_intr(l), -1);
    send_fixed(2, 0x90, false); /* a higher class nests */
    assert_int_equal(vlapic_pending_intr(l), 0x90);
    vlapic_accept_intr(l, 0x90);
    /* EOI retires the highest in service first. */
    wr(l, APIC_EOI, 0);
    assert_false(isr(l, 0x90));
    assert_true(isr(l, 0x80));
    assert_int_equal(vlapic_pending_intr(l), -1);
    wr(l, APIC_EOI, 0);
    assert_false(isr(l, 0x80));
    assert_int_equal(vlapic_pending_intr(l), 0x60);
    vlapic_accept_intr(l, 0x60);
    assert_int_equal(vlapic_pending_intr(l), -1);
    wr(l, APIC_EOI, 0);
    assert_int_equal(vlapic_pending_intr(l), 0x40);
    vlapic_accept_intr(l, 0x40);
    wr(l, APIC_EOI, 0);
    assert_int_equal(vlapic_pending_intr(l), -1);
    /* Edge-triggered vectors never reach the IOAPIC. */
    assert_int_equal(eois, 0);
    /* An EOI with nothing in service does nothing. */
    wr(l, APIC_EOI, 0);
    assert_int_equal(eois, 0);
    /* The same vector twice before acceptance is one interrupt. */
    send_fixed(2, 0x70, false);
    send_fixed(2, 0x70, false);
    vlapic_accept_intr(l, 0x70);
    assert_int_equal(vlapic_pending_intr(l), -1);
}

static void test_level_eoi_notifies_ioapic(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    enable(l);
    send_fixed(1, 0x55, true);
    send_fixed(1, 0x35, false);
    assert_true(l->regs[APIC_TMR / 4 + (0x55 / 32) * 4] >> (0x55 % 32) & 1);
    vlapic_accept_intr(l, (uint8_t)vlapic_pending_intr(l));
    wr(l, APIC_EOI, 0);
    assert_int_equal(eois, 1);
    assert_int_equal(eoi_vector, 0x55);
    vlapic_accept_intr(l, (uint8_t)vlapic_pending_intr(l));
    wr(l, APIC_EOI, 0);
    assert_int_equal(eois, 1); /* 0x35 was edge */
    /* The same vector arriving edge-triggered later clears its TMR bit. */
    send_fixed(1, 0x55, false);
    vlapic_accept_intr(l, 0x55);
    wr(l, APIC_EOI, 0);
    assert_int_equal(eois, 1);
}

static void test_software_disabled_refuses_fixed(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    assert_int_equal(send_fixed(1, 0x40, false), 0); /* SVR enable clear after reset */
    assert_false(irr(l, 0x40));
    /* NMI still gets through. */
    struct apic_msg nmi = {.dest = 1, .mode = APIC_DM_NMI};
    assert_int_equal(apic_bus_send(&bus, &nmi, NULL), 1);
    assert_true(vlapic_take_events(l) & VLAPIC_EV_NMI);
    /* Disabling masks every LVT entry, and they stay masked. */
    enable(l);
    wr(l, APIC_LVT_LINT1, 0x400);
    assert_int_equal(rd(l, APIC_LVT_LINT1), 0x400);
    wr(l, APIC_SVR, 0xff);
    assert_int_equal(rd(l, APIC_LVT_LINT1), 0x400 | APIC_LVT_MASKED);
    wr(l, APIC_LVT_ERROR, 0x33);
    assert_int_equal(rd(l, APIC_LVT_ERROR), 0x33 | APIC_LVT_MASKED);
}

/* ---- timer ---- */

static void test_timer_oneshot(void **state)
{
    (void)state;
    make_vm(2, 100000000ull); /* 100 MHz: 10 ns per tick before the divider */
    struct vlapic *l = cpu[1];
    enable(l);
    wr(l, APIC_TIMER_DIVIDE, 0x3); /* divide by 16: 160 ns per count */
    wr(l, APIC_LVT_TIMER, 0x40);
    now = 5000;
    wr(l, APIC_TIMER_INITIAL, 1000);
    assert_int_equal(rd(l, APIC_TIMER_INITIAL), 1000);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 1000);
    assert_int_equal(vlapic_timer_deadline(l), 5000 + 160000);
    now = 5000 + 159;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 1000);
    now = 5000 + 160;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 999);
    now = 5000 + 80000;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 500);
    now = 5000 + 159999;
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x40));
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 1);
    now = 5000 + 160000;
    uint32_t k = kicks[1];
    vlapic_timer_poll(l);
    assert_true(irr(l, 0x40));
    assert_int_equal(kicks[1], k + 1);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    /* It stays at 0 and does not fire again. */
    vlapic_accept_intr(l, 0x40);
    wr(l, APIC_EOI, 0);
    now += 10000000;
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x40));
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0);
    /* A rate that does not divide a second: 3 MHz, divide by 1; the deadline is the
     * first ns at which the count has reached 0 (10 ticks = 3333.3 ns). */
    make_vm(2, 3000000ull);
    l = cpu[1];
    enable(l);
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_LVT_TIMER, 0x41);
    wr(l, APIC_TIMER_INITIAL, 10);
    assert_int_equal(vlapic_timer_deadline(l), 3334);
    now = 3333;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 1);
    assert_false(irr(l, 0x41));
    now = 3334;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0); /* the read brings the timer up to date */
    assert_true(irr(l, 0x41));
    /* A count that ran out before the poll saw it still fires when the guest re-arms. */
    vlapic_accept_intr(l, 0x41);
    wr(l, APIC_EOI, 0);
    wr(l, APIC_TIMER_INITIAL, 10);
    now += 4000;
    wr(l, APIC_TIMER_INITIAL, 10);
    assert_true(irr(l, 0x41));
    vlapic_accept_intr(l, 0x41);
    wr(l, APIC_EOI, 0);
    /* Writing 0 stops a running timer. */
    wr(l, APIC_TIMER_INITIAL, 100);
    wr(l, APIC_TIMER_INITIAL, 0);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0);
}

static void test_timer_divide_values(void **state)
{
    (void)state;
    static const struct {
        uint32_t reg, divide;
    } cases[] = {{0x0, 2}, {0x1, 4}, {0x2, 8}, {0x3, 16}, {0x8, 32}, {0x9, 64}, {0xa, 128}, {0xb, 1}};
    make_vm(1, 1000000000ull); /* 1 ns per tick before the divider */
    struct vlapic *l = cpu[0];
    enable(l);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        now = 1000000;
        wr(l, APIC_TIMER_DIVIDE, cases[i].reg);
        assert_int_equal(rd(l, APIC_TIMER_DIVIDE), cases[i].reg);
        wr(l, APIC_TIMER_INITIAL, 100000);
        now += 128 * 100;
        assert_int_equal(rd(l, APIC_TIMER_CURRENT), 100000 - 128 * 100 / cases[i].divide);
        assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER); /* LVT still masked */
    }
    /* Changing the divider mid-count continues from the current count at the new rate. */
    now = 0;
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_TIMER_INITIAL, 1000);
    now = 400;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 600);
    wr(l, APIC_TIMER_DIVIDE, 0x0); /* by 2 */
    now = 600;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 500);
    wr(l, APIC_LVT_TIMER, 0x30);
    assert_int_equal(vlapic_timer_deadline(l), 400 + 1200);
}

static void test_timer_periodic(void **state)
{
    (void)state;
    make_vm(1, 1000000ull); /* 1 us per tick */
    struct vlapic *l = cpu[0];
    enable(l);
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x50);
    wr(l, APIC_TIMER_INITIAL, 1000); /* 1 ms */
    assert_int_equal(vlapic_timer_deadline(l), 1000000);
    now = 500000;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 500);
    now = 1000000;
    vlapic_timer_poll(l);
    assert_true(irr(l, 0x50));
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 1000); /* reloaded */
    assert_int_equal(vlapic_timer_deadline(l), 2000000);
    now = 1250000;
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 750);
    vlapic_accept_intr(l, 0x50);
    wr(l, APIC_EOI, 0);
    /* Polled late: one interrupt for the missed periods, next deadline on the grid. */
    now = 3500000;
    vlapic_timer_poll(l);
    assert_true(irr(l, 0x50));
    assert_int_equal(vlapic_timer_deadline(l), 4000000);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 500);
    /* Periodic to one-shot: the count runs out once more, then stops. */
    wr(l, APIC_LVT_TIMER, 0x50);
    now = 4000000;
    vlapic_timer_poll(l);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0);
}

static void test_timer_periodic_rate_floor(void **state)
{
    (void)state;
    make_vm(1, 1000000ull);
    struct vlapic *l = cpu[0];
    enable(l);
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x50);
    wr(l, APIC_TIMER_INITIAL, 1); /* every microsecond */
    assert_int_equal(vlapic_timer_deadline(l), 1000);
    now = 1000;
    vlapic_timer_poll(l);
    assert_true(irr(l, 0x50));
    /* The next one waits for the floor, not 1 us. */
    assert_int_equal(vlapic_timer_deadline(l), 1000 + APIC_TIMER_MIN_PERIOD_NS_DEFAULT);
    assert_logged("periodic APIC timer");
    int lines = capture_count();
    now = 1000 + APIC_TIMER_MIN_PERIOD_NS_DEFAULT;
    vlapic_timer_poll(l);
    assert_int_equal(capture_count(), lines); /* logged once */
}

static void test_timer_tsc_deadline(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    enable(l);
    uint64_t v;
    /* Outside TSC-deadline mode the MSR reads 0 and ignores writes. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 100), VLAPIC_OK);
    assert_int_equal(vlapic_rdmsr(l, MSR_IA32_TSC_DEADLINE, &v), VLAPIC_OK);
    assert_int_equal(v, 0);
    wr(l, APIC_LVT_TIMER, APIC_TIMER_TSC_DEADLINE | 0x60);
    /* 3000 TSC ticks at 2 GHz: 1500 ns. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 3000), VLAPIC_OK);
    assert_int_equal(vlapic_rdmsr(l, MSR_IA32_TSC_DEADLINE, &v), VLAPIC_OK);
    assert_int_equal(v, TSC_AT_ZERO + 3000);
    assert_int_equal(vlapic_timer_deadline(l), 1500);
    /* The initial count is ignored and the current count reads 0 in this mode. */
    wr(l, APIC_TIMER_INITIAL, 5);
    assert_int_equal(rd(l, APIC_TIMER_INITIAL), 0);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0);
    now = 1499;
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x60));
    now = 1500;
    vlapic_timer_poll(l);
    assert_true(irr(l, 0x60));
    assert_int_equal(vlapic_rdmsr(l, MSR_IA32_TSC_DEADLINE, &v), VLAPIC_OK);
    assert_int_equal(v, 0); /* disarmed once it fired */
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    vlapic_accept_intr(l, 0x60);
    wr(l, APIC_EOI, 0);
    /* An odd tick count rounds up: 3001 ticks is 1500.5 ns, so 1501 relative to zero. */
    now = 0;
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 3001), VLAPIC_OK);
    assert_int_equal(vlapic_timer_deadline(l), 1501);
    /* A deadline that passed before the poll saw it still fires when the guest re-arms. */
    now = 1501;
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 100000), VLAPIC_OK);
    assert_true(irr(l, 0x60));
    vlapic_accept_intr(l, 0x60);
    wr(l, APIC_EOI, 0);
    /* Writing 0 disarms. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, 0), VLAPIC_OK);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    /* A deadline already passed fires at once. */
    now = 10000;
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 10), VLAPIC_OK);
    assert_true(irr(l, 0x60));
    vlapic_accept_intr(l, 0x60);
    wr(l, APIC_EOI, 0);
    /* Leaving TSC-deadline mode disarms. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_TSC_DEADLINE, TSC_AT_ZERO + 1000000), VLAPIC_OK);
    wr(l, APIC_LVT_TIMER, 0x60);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    wr(l, APIC_LVT_TIMER, APIC_TIMER_TSC_DEADLINE | 0x60);
    assert_int_equal(vlapic_rdmsr(l, MSR_IA32_TSC_DEADLINE, &v), VLAPIC_OK);
    assert_int_equal(v, 0);
}

static void test_timer_masked(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1]; /* 1 GHz: a tick per ns before the divider */
    enable(l);
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_LVT_TIMER, APIC_LVT_MASKED | 0x44);
    wr(l, APIC_TIMER_INITIAL, 1000);
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER); /* nothing to wake for */
    now = 2000;
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x44));
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 0); /* it still counted */
    /* Unmasked after the one-shot ran out: nothing comes late. */
    wr(l, APIC_LVT_TIMER, 0x44);
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x44));
    assert_int_equal(vlapic_timer_deadline(l), CLOCK_NEVER);
    /* A masked periodic timer keeps its grid while masked. */
    wr(l, APIC_LVT_TIMER, APIC_LVT_MASKED | APIC_TIMER_PERIODIC | 0x44);
    now = 10000;
    wr(l, APIC_TIMER_INITIAL, 200000);
    now = 460000;
    vlapic_timer_poll(l);
    assert_false(irr(l, 0x44));
    wr(l, APIC_LVT_TIMER, APIC_TIMER_PERIODIC | 0x44);
    assert_int_equal(vlapic_timer_deadline(l), 610000);
    assert_int_equal(rd(l, APIC_TIMER_CURRENT), 150000);
}

/* ---- IPIs ---- */

static void test_ipi_physical_and_broadcast(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        enable(cpu[i]);
    ipi(cpu[0], 2, 0x4041); /* fixed, assert */
    assert_true(irr(cpu[2], 0x41));
    assert_int_equal(kicks[2], 1);
    assert_false(irr(cpu[1], 0x41));
    assert_int_equal(rd(cpu[0], APIC_ICR_LO), 0x4041); /* delivery status idle */
    assert_int_equal(rd(cpu[0], APIC_ICR_HI), 2u << 24);
    /* Broadcast 0xFF reaches everyone, the sender too. */
    ipi(cpu[0], 0xff, 0x4042);
    for (int i = 0; i < 4; i++)
        assert_true(irr(cpu[i], 0x42));
    /* Physical destination to an ID the VM does not have: nobody, logged once. */
    capture_reset();
    uint64_t dropped = bus.dropped;
    ipi(cpu[0], 4, 0x4043);
    ipi(cpu[0], 0x17, 0x4043);
    for (int i = 0; i < 4; i++)
        assert_false(irr(cpu[i], 0x43));
    assert_int_equal(bus.dropped, dropped + 2);
    assert_logged("IPI from vCPU 0 to APIC ID destination 0x4 reaches nobody");
    assert_int_equal(capture_count(), 1);
    /* The same from the IOAPIC's side: the caller is told nobody is there. */
    assert_int_equal(send_fixed(9, 0x43, false), APIC_SEND_NOBODY);
    /* A hardware-disabled LAPIC takes nothing. */
    assert_int_equal(vlapic_wrmsr(cpu[3], MSR_IA32_APIC_BASE, XAPIC_DEFAULT_BASE), VLAPIC_OK);
    ipi(cpu[0], 3, 0x4044);
    assert_false(irr(cpu[3], 0x44));
}

static void test_ipi_logical_flat_and_cluster(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        enable(cpu[i]);
        wr(cpu[i], APIC_LDR, (1u << i) << 24); /* flat: one bit each */
    }
    ipi(cpu[0], 0x0a, 0x4850); /* logical, vCPUs 1 and 3 */
    assert_false(irr(cpu[0], 0x50));
    assert_true(irr(cpu[1], 0x50));
    assert_false(irr(cpu[2], 0x50));
    assert_true(irr(cpu[3], 0x50));
    /* Cluster model: cluster in bits 7:4, members in 3:0. */
    static const uint8_t ids[] = {0x11, 0x12, 0x21, 0x22};
    for (int i = 0; i < 4; i++) {
        wr(cpu[i], APIC_DFR, 0x0fffffff);
        assert_int_equal(rd(cpu[i], APIC_DFR), 0x0fffffff);
        wr(cpu[i], APIC_LDR, (uint32_t)ids[i] << 24);
    }
    ipi(cpu[0], 0x23, 0x4851); /* cluster 2, members 1 and 2 */
    assert_false(irr(cpu[0], 0x51));
    assert_false(irr(cpu[1], 0x51));
    assert_true(irr(cpu[2], 0x51));
    assert_true(irr(cpu[3], 0x51));
    ipi(cpu[0], 0x12, 0x4852);
    assert_true(irr(cpu[1], 0x52));
    assert_false(irr(cpu[3], 0x52));
    /* Logical 0xFF is a broadcast in either model. */
    ipi(cpu[0], 0xff, 0x4853);
    for (int i = 0; i < 4; i++)
        assert_true(irr(cpu[i], 0x53));
    /* A logical destination nobody matches reaches nobody. */
    uint64_t dropped = bus.dropped;
    ipi(cpu[0], 0x34, 0x4854);
    assert_int_equal(bus.dropped, dropped + 1);
}

static void test_ipi_shorthands(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        enable(cpu[i]);
    ipi(cpu[1], 3, 0x44060); /* self: the destination field is ignored */
    assert_true(irr(cpu[1], 0x60));
    assert_false(irr(cpu[3], 0x60));
    ipi(cpu[1], 0, 0x84061); /* all including self */
    for (int i = 0; i < 4; i++)
        assert_true(irr(cpu[i], 0x61));
    ipi(cpu[1], 0, 0xc4062); /* all excluding self */
    for (int i = 0; i < 4; i++)
        assert_int_equal(irr(cpu[i], 0x62), i != 1);
    /* Alone in its VM, "all but self" names nobody. */
    make_vm(1, 1000000000ull);
    enable(cpu[0]);
    uint64_t dropped = bus.dropped;
    ipi(cpu[0], 0, 0xc4062);
    assert_int_equal(bus.dropped, dropped + 1);
}

static void test_ipi_lowest_priority(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++) {
        enable(cpu[i]);
        wr(cpu[i], APIC_LDR, 0x01000000u << i);
    }
    wr(cpu[0], APIC_TPR, 0x20);
    wr(cpu[1], APIC_TPR, 0x40);
    wr(cpu[2], APIC_TPR, 0x10);
    wr(cpu[3], APIC_TPR, 0x00);
    ipi(cpu[0], 0x07, 0x4970); /* lowest priority among vCPUs 0-2 */
    assert_true(irr(cpu[2], 0x70));
    assert_false(irr(cpu[0], 0x70) || irr(cpu[1], 0x70) || irr(cpu[3], 0x70));
    /* Equal priorities: the lowest index. */
    wr(cpu[2], APIC_TPR, 0x20);
    ipi(cpu[0], 0x05, 0x4972);
    assert_true(irr(cpu[0], 0x72));
    /* An in-service interrupt raises a candidate's arbitration priority. */
    send_fixed(0, 0x90, false);
    vlapic_accept_intr(cpu[0], 0x90);
    ipi(cpu[0], 0x05, 0x4973);
    assert_true(irr(cpu[2], 0x73));
}

static void test_nmi_init_sipi(void **state)
{
    (void)state;
    struct vlapic *ap = cpu[1];
    enable(ap);
    wr(ap, APIC_TPR, 0x30);
    send_fixed(1, 0x40, false);
    ipi(cpu[0], 1, 0x4400); /* NMI */
    assert_int_equal(kicks[1], 2);
    uint32_t ev = vlapic_take_events(ap);
    assert_int_equal(ev, VLAPIC_EV_NMI);
    assert_int_equal(vlapic_take_events(ap), 0);
    /* INIT level de-assert delivers nothing. */
    ipi(cpu[0], 1, 0x8500);
    assert_int_equal(vlapic_take_events(ap), 0);
    /* A SIPI before an INIT is superseded by the INIT. */
    ipi(cpu[0], 1, 0x4608);
    ipi(cpu[0], 1, 0x4500); /* INIT assert */
    ev = vlapic_take_events(ap);
    assert_int_equal(ev, VLAPIC_EV_INIT);
    /* INIT reset the LAPIC, keeping its ID and base. */
    assert_int_equal(rd(ap, APIC_TPR), 0);
    assert_int_equal(rd(ap, APIC_SVR), 0xff);
    assert_int_equal(rd(ap, APIC_ID), 1u << 24);
    assert_false(irr(ap, 0x40));
    assert_int_equal(ap->base_msr, XAPIC_DEFAULT_BASE | APIC_BASE_EN);
    /* INIT then SIPI, as an OS starts an AP. */
    ipi(cpu[0], 1, 0x4500);
    ipi(cpu[0], 1, 0x469a);
    ev = vlapic_take_events(ap);
    assert_int_equal(ev & (VLAPIC_EV_INIT | VLAPIC_EV_SIPI), VLAPIC_EV_INIT | VLAPIC_EV_SIPI);
    assert_int_equal(VLAPIC_EV_SIPI_VECTOR(ev), 0x9a);
    /* A second SIPI carries its own vector. */
    ipi(cpu[0], 1, 0x4610);
    ev = vlapic_take_events(ap);
    assert_int_equal(ev, VLAPIC_EV_SIPI | 0x10 << 8);
    /* INIT-SIPI to all but self, as Linux starts every AP at once. */
    ipi(cpu[0], 0, 0xc4500);
    ipi(cpu[0], 0, 0xc4620);
    assert_int_equal(vlapic_take_events(cpu[0]), 0);
    for (int i = 1; i < 4; i++) {
        ev = vlapic_take_events(cpu[i]);
        assert_int_equal(ev, VLAPIC_EV_INIT | VLAPIC_EV_SIPI | 0x20 << 8);
    }
}

static void test_lint_inputs(void **state)
{
    (void)state;
    struct vlapic *bsp = cpu[0];
    /* Reset state: LINT0 is the PIC's wire. */
    vlapic_set_lint(bsp, 0, true);
    assert_true(vlapic_extint_pending(bsp));
    assert_true(vlapic_has_event(bsp));
    vlapic_set_lint(bsp, 0, false);
    assert_false(vlapic_extint_pending(bsp));
    enable(bsp);
    wr(bsp, APIC_LVT_LINT0, APIC_LVT_MASKED | 0x700);
    vlapic_set_lint(bsp, 0, true);
    assert_false(vlapic_extint_pending(bsp));
    vlapic_set_lint(bsp, 0, false);
    /* LINT1 as NMI: the rising edge. */
    wr(bsp, APIC_LVT_LINT1, 0x400);
    vlapic_set_lint(bsp, 1, true);
    vlapic_set_lint(bsp, 1, true);
    assert_int_equal(vlapic_take_events(bsp), VLAPIC_EV_NMI);
    vlapic_set_lint(bsp, 1, false);
    /* LINT0 fixed. */
    wr(bsp, APIC_LVT_LINT0, 0x39);
    vlapic_set_lint(bsp, 0, true);
    assert_int_equal(vlapic_pending_intr(bsp), 0x39);
}

/* ---- x2APIC ---- */

static void test_x2apic_msrs(void **state)
{
    (void)state;
    make_vm(MAX_VCPUS, 1000000000ull);
    struct vlapic *l = cpu[3];
    uint64_t v;
    /* Outside x2APIC mode its MSRs #GP. */
    assert_int_equal(vlapic_rdmsr(l, 0x802, &v), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, 0x808, 0), VLAPIC_GP);
    to_x2apic(l);
    assert_int_equal(vlapic_rdmsr(l, 0x802, &v), VLAPIC_OK);
    assert_int_equal(v, 3);
    assert_int_equal(vlapic_rdmsr(l, 0x803, &v), VLAPIC_OK);
    assert_int_equal(v, APIC_VERSION_VALUE);
    assert_int_equal(vlapic_rdmsr(l, 0x80d, &v), VLAPIC_OK);
    assert_int_equal(v, 1u << 3); /* cluster 0, bit 3 */
    assert_int_equal(vlapic_rdmsr(cpu[0], 0x80d, &v), VLAPIC_GP); /* vCPU 0 is still xAPIC */
    to_x2apic(cpu[15]);
    assert_int_equal(vlapic_rdmsr(cpu[15], 0x80d, &v), VLAPIC_OK);
    assert_int_equal(v, 1u << 15);
    /* Read-only registers #GP on write. */
    static const uint32_t ro[] = {0x802, 0x803, 0x80a, 0x80d, 0x810, 0x817, 0x818, 0x820, 0x827, 0x839};
    for (size_t i = 0; i < ARRAY_SIZE(ro); i++)
        assert_int_equal(vlapic_wrmsr(l, ro[i], 0), VLAPIC_GP);
    /* Write-only ones #GP on read. */
    assert_int_equal(vlapic_rdmsr(l, 0x80b, &v), VLAPIC_GP);
    assert_int_equal(vlapic_rdmsr(l, 0x83f, &v), VLAPIC_GP);
    /* xAPIC-only and reserved addresses #GP both ways. */
    static const uint32_t none[] = {0x800, 0x801, 0x804, 0x807, 0x809, 0x80c, 0x80e, 0x829,
                                    0x82e, 0x831, 0x83a, 0x83d, 0x840, 0x8ff};
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        assert_int_equal(vlapic_rdmsr(l, none[i], &v), VLAPIC_GP);
        assert_int_equal(vlapic_wrmsr(l, none[i], 0), VLAPIC_GP);
    }
    /* Reserved bits #GP and change nothing. */
    assert_int_equal(vlapic_wrmsr(l, 0x808, 0x20), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, 0x808, 0x120), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, 0x808, 1ull << 32), VLAPIC_GP);
    assert_int_equal(vlapic_rdmsr(l, 0x808, &v), VLAPIC_OK);
    assert_int_equal(v, 0x20);
    assert_int_equal(vlapic_wrmsr(l, 0x80f, 0x1ff | BIT(12)), VLAPIC_GP); /* no EOI-broadcast suppression */
    assert_int_equal(vlapic_wrmsr(l, 0x80f, 0x1ff), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, 0x832, APIC_TIMER_MODE_MASK | 0x40), VLAPIC_GP); /* mode 3 */
    assert_int_equal(vlapic_wrmsr(l, 0x83e, 0x4), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, 0x80b, 1), VLAPIC_GP); /* EOI takes only 0 */
    assert_int_equal(vlapic_wrmsr(l, 0x80b, 0), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, 0x828, 1), VLAPIC_GP); /* ESR takes only 0 */
    assert_int_equal(vlapic_wrmsr(l, 0x828, 0), VLAPIC_OK);
    /* The 64-bit ICR: destination in bits 63:32. */
    to_x2apic(cpu[9]);
    assert_int_equal(vlapic_wrmsr(cpu[9], 0x80f, 0x1ff), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, 0x830, 9ull << 32 | 0x4055), VLAPIC_OK);
    assert_true(irr(cpu[9], 0x55));
    assert_int_equal(vlapic_rdmsr(l, 0x830, &v), VLAPIC_OK);
    assert_int_equal(v, 9ull << 32 | 0x4055);
    assert_int_equal(vlapic_wrmsr(l, 0x830, 9ull << 32 | BIT(13) | 0x56), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, 0x830, 9ull << 32 | BIT(20) | 0x56), VLAPIC_GP);
    assert_false(irr(cpu[9], 0x56));
    /* Physical broadcast is 0xFFFFFFFF; 0xFF is just an ID the VM lacks. */
    uint64_t dropped = bus.dropped;
    assert_int_equal(vlapic_wrmsr(l, 0x830, 0xffull << 32 | 0x57), VLAPIC_OK);
    assert_int_equal(bus.dropped, dropped + 1);
    assert_int_equal(vlapic_wrmsr(l, 0x830, 0xffffffffull << 32 | 0x57), VLAPIC_OK);
    assert_true(irr(cpu[9], 0x57) && irr(l, 0x57));
    assert_false(irr(cpu[0], 0x57)); /* software-disabled still */
    /* Logical x2APIC: cluster 0, bits for IDs 3 and 9. */
    assert_int_equal(vlapic_wrmsr(l, 0x830, (uint64_t)(BIT(3) | BIT(9)) << 32 | 0x800 | 0x58), VLAPIC_OK);
    assert_true(irr(cpu[9], 0x58) && irr(l, 0x58));
    /* SELF IPI: vector only. */
    assert_int_equal(vlapic_wrmsr(l, 0x83f, 0x59), VLAPIC_OK);
    assert_true(irr(l, 0x59));
    assert_int_equal(vlapic_wrmsr(l, 0x83f, 0x159), VLAPIC_GP);
    /* The timer through MSRs. */
    assert_int_equal(vlapic_wrmsr(l, 0x83e, 0xb), VLAPIC_OK);
    assert_int_equal(vlapic_wrmsr(l, 0x838, 500), VLAPIC_OK);
    now += 100;
    assert_int_equal(vlapic_rdmsr(l, 0x839, &v), VLAPIC_OK);
    assert_int_equal(v, 400);
    /* The xAPIC page is gone in x2APIC mode. */
    assert_false(vlapic_xapic_at(l, XAPIC_DEFAULT_BASE));
}

static void test_apic_base_transitions(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    const uint64_t base = XAPIC_DEFAULT_BASE;
    /* EXTD without EN is invalid. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EXTD), VLAPIC_GP);
    /* Reserved bits: 7:0, 9, and above MAXPHYADDR (39 here). */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN | 1), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN | BIT(9)), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, BIT(39) | base | APIC_BASE_EN), VLAPIC_GP);
    assert_int_equal(l->base_msr, base | APIC_BASE_EN);
    /* xAPIC -> x2APIC -> (xAPIC refused) -> disabled -> (x2APIC refused) -> xAPIC. */
    enable(l);
    wr(l, APIC_TPR, 0x40);
    to_x2apic(l);
    uint64_t v;
    assert_int_equal(vlapic_rdmsr(l, 0x808, &v), VLAPIC_OK);
    assert_int_equal(v, 0x40); /* state carries into x2APIC mode */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN), VLAPIC_GP);
    assert_true(vlapic_x2apic(l));
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base), VLAPIC_OK);
    assert_false(vlapic_hw_enabled(l));
    assert_int_equal(vlapic_rdmsr(l, 0x808, &v), VLAPIC_GP);
    assert_int_equal(send_fixed(1, 0x40, false), 0); /* a disabled APIC takes nothing */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_EXTD), VLAPIC_GP);
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN), VLAPIC_OK);
    /* Re-enabled, it starts from its reset state, with the xAPIC ID format. */
    assert_int_equal(rd(l, APIC_TPR), 0);
    assert_int_equal(rd(l, APIC_SVR), 0xff);
    assert_int_equal(rd(l, APIC_ID), 1u << 24);
    /* The BSP flag is the hardware's: a write does not move it. */
    assert_int_equal(vlapic_wrmsr(l, MSR_IA32_APIC_BASE, base | APIC_BASE_EN | APIC_BASE_BSP), VLAPIC_OK);
    assert_int_equal(l->base_msr, base | APIC_BASE_EN);
    assert_int_equal(vlapic_wrmsr(cpu[0], MSR_IA32_APIC_BASE, base | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(cpu[0]->base_msr, base | APIC_BASE_EN | APIC_BASE_BSP);
    /* INIT keeps x2APIC mode (the base MSR survives INIT). */
    to_x2apic(l);
    struct apic_msg init = {.dest = 1, .mode = APIC_DM_INIT};
    apic_bus_send(&bus, &init, NULL);
    assert_int_equal(vlapic_take_events(l), VLAPIC_EV_INIT);
    assert_true(vlapic_x2apic(l));
    assert_int_equal(vlapic_rdmsr(l, 0x802, &v), VLAPIC_OK);
    assert_int_equal(v, 1);
    assert_int_equal(vlapic_rdmsr(l, 0x80d, &v), VLAPIC_OK);
    assert_int_equal(v, 1u << 1);
}

static struct bus_result other_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)dev, (void)offset, (void)width;
    *value = 0x1234;
    return BUS_OK;
}
static struct bus_result other_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    (void)dev, (void)offset, (void)width, (void)value;
    return BUS_OK;
}
static const struct bus_ops other_ops = {.read = other_read, .write = other_write};

static void test_apic_base_relocation(void **state)
{
    (void)state;
    vm_bus_init(vmbus, "t");
    assert_true(apic_bus_attach_mmio(&bus, vmbus, fake_current, NULL) > 0);
    assert_true(vm_bus_add(vmbus, &(struct bus_region){.space = BUS_MMIO, .base = 0xfec00000, .len = 0x1000,
                                                       .widths = BUS_WIDTH_4, .ops = &other_ops,
                                                       .owner = "ioapic"}) > 0);
    uint64_t v = 0;
    /* Through the device bus, each vCPU sees its own LAPIC in the window. */
    current_vcpu = 2;
    assert_int_equal(bus_action(vm_bus_access(vmbus, BUS_MMIO, XAPIC_DEFAULT_BASE + APIC_ID, 4, false, &v)),
                     BUS_DONE);
    assert_int_equal(v, 2u << 24);
    v = 0x20;
    vm_bus_access(vmbus, BUS_MMIO, XAPIC_DEFAULT_BASE + APIC_TPR, 4, true, &v);
    assert_int_equal(rd(cpu[2], APIC_TPR), 0x20);
    assert_int_equal(rd(cpu[1], APIC_TPR), 0);
    /* Moved: the window follows. */
    capture_reset();
    const uint64_t moved = 0xfed00000;
    current_vcpu = 0;
    for (int i = 0; i < 4; i++)
        assert_int_equal(vlapic_wrmsr(cpu[i], MSR_IA32_APIC_BASE, moved | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[0]), moved);
    assert_true(vlapic_xapic_at(cpu[0], moved + 0x20));
    const struct bus_range *r = vm_bus_find(vmbus, BUS_MMIO, moved);
    assert_non_null(r);
    assert_string_equal(r->owner, "local APIC");
    assert_null(vm_bus_find(vmbus, BUS_MMIO, XAPIC_DEFAULT_BASE));
    assert_int_equal(bus_action(vm_bus_access(vmbus, BUS_MMIO, moved + APIC_VERSION, 4, false, &v)), BUS_DONE);
    assert_int_equal(v, APIC_VERSION_VALUE);
    assert_logged("one xAPIC page"); /* vCPU 0 moved first, the others were still at the old base */
    /* Onto RAM: refused, the old base stays, logged once. */
    capture_reset();
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0x100000 | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[1]), moved);
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0x0 | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[1]), moved);
    /* The RAM at 4 GiB is RAM too, to its last page. */
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0x100000000ull | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[1]), moved);
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0x13ffff000ull | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[1]), moved);
    assert_logged("moved its xAPIC base onto RAM at 0x100000: refused");
    assert_int_equal(capture_count(), 1);
    /* Onto another device: refused, logged once. */
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0xfec00000 | APIC_BASE_EN), VLAPIC_OK);
    assert_int_equal(vlapic_base(cpu[1]), moved);
    assert_logged("where the device bus cannot put it");
    assert_true(vm_bus_find(vmbus, BUS_MMIO, moved) != NULL);
    /* Other bits of a refused write still apply. */
    assert_int_equal(vlapic_wrmsr(cpu[1], MSR_IA32_APIC_BASE, 0x200000), VLAPIC_OK);
    assert_false(vlapic_hw_enabled(cpu[1]));
    assert_int_equal(vlapic_base(cpu[1]), moved);
    /* A vCPU whose APIC is off reads all-ones in the window. */
    current_vcpu = 1;
    v = 0;
    vm_bus_access(vmbus, BUS_MMIO, moved + APIC_ID, 4, false, &v);
    assert_int_equal(v, 0xffffffff);
    assert_logged("while its APIC is disabled");
    /* RESET brings the page home. */
    vlapic_reset(cpu[0]);
    assert_int_equal(vlapic_base(cpu[0]), XAPIC_DEFAULT_BASE);
    assert_non_null(vm_bus_find(vmbus, BUS_MMIO, XAPIC_DEFAULT_BASE));
    vm_bus_destroy(vmbus);
}

/* ---- ESR, register access, CR8 ---- */

static void test_esr(void **state)
{
    (void)state;
    struct vlapic *l = cpu[0];
    enable(l);
    enable(cpu[1]);
    /* An illegal vector in the ICR is a send error; nothing is sent. */
    ipi(l, 1, 0x4005);
    assert_false(irr(cpu[1], 0x05));
    assert_int_equal(rd(l, APIC_ESR), 0); /* errors appear only after a write */
    wr(l, APIC_ESR, 0);
    assert_int_equal(rd(l, APIC_ESR), APIC_ESR_SEND_ILLEGAL);
    assert_int_equal(rd(l, APIC_ESR), APIC_ESR_SEND_ILLEGAL); /* reads do not clear */
    wr(l, APIC_ESR, 0);
    assert_int_equal(rd(l, APIC_ESR), 0);
    /* An illegal vector received (from the IOAPIC) is the receiver's error. */
    assert_int_equal(send_fixed(1, 0x0e, false), 1);
    assert_false(irr(cpu[1], 0x0e));
    assert_int_equal(esr(cpu[1]), APIC_ESR_RECV_ILLEGAL);
    /* An illegal LVT vector is a receive error when it fires. */
    wr(l, APIC_TIMER_DIVIDE, 0xb);
    wr(l, APIC_LVT_TIMER, 0x03);
    wr(l, APIC_TIMER_INITIAL, 10);
    now = 10;
    vlapic_timer_poll(l);
    assert_int_equal(vlapic_pending_intr(l), -1);
    assert_int_equal(esr(l), APIC_ESR_RECV_ILLEGAL);
    /* Reserved offsets and bad widths are illegal register addresses. */
    assert_int_equal(rd(l, 0x010), 0);
    assert_int_equal(esr(l), APIC_ESR_ILLEGAL_REG);
    assert_int_equal(vlapic_mmio_read(l, APIC_TPR, 2), 0);
    assert_int_equal(esr(l), APIC_ESR_ILLEGAL_REG);
    wr(l, APIC_TPR + 4, 0x50);
    assert_int_equal(rd(l, APIC_TPR), 0);
    assert_int_equal(esr(l), APIC_ESR_ILLEGAL_REG);
    assert_int_equal(rd(l, APIC_SELF_IPI), 0); /* x2APIC only */
    assert_int_equal(esr(l), APIC_ESR_ILLEGAL_REG);
    /* An unmasked error LVT raises its interrupt; errors accumulate until the write. */
    wr(l, APIC_LVT_ERROR, 0xfe);
    ipi(l, 1, 0x4001);
    rd(l, 0x3a0);
    assert_int_equal(vlapic_pending_intr(l), 0xfe);
    assert_int_equal(esr(l), APIC_ESR_SEND_ILLEGAL | APIC_ESR_ILLEGAL_REG);
}

static void test_xapic_register_masks(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    enable(l);
    wr(l, APIC_TPR, 0xffffffff);
    assert_int_equal(rd(l, APIC_TPR), 0xff);
    wr(l, APIC_LDR, 0xffffffff);
    assert_int_equal(rd(l, APIC_LDR), 0xff000000);
    wr(l, APIC_DFR, 0);
    assert_int_equal(rd(l, APIC_DFR), 0x0fffffff);
    wr(l, APIC_LVT_LINT0, 0xffffffff);
    assert_int_equal(rd(l, APIC_LVT_LINT0), 0x1a7ff);
    wr(l, APIC_LVT_TIMER, 0xffffffff & ~APIC_TIMER_MODE_MASK);
    assert_int_equal(rd(l, APIC_LVT_TIMER), 0x100ff);
    wr(l, APIC_LVT_ERROR, 0xffffffff);
    assert_int_equal(rd(l, APIC_LVT_ERROR), 0x100ff);
    wr(l, APIC_LVT_CMCI, 0xffffffff);
    assert_int_equal(rd(l, APIC_LVT_CMCI), 0x107ff);
    wr(l, APIC_TIMER_DIVIDE, 0xffffffff);
    assert_int_equal(rd(l, APIC_TIMER_DIVIDE), 0xb);
    wr(l, APIC_ICR_HI, 0xffffffff);
    assert_int_equal(rd(l, APIC_ICR_HI), 0xff000000);
    assert_int_equal(rd(l, APIC_RRD), 0);
    /* The IRR is the guest's to read, not to write. */
    wr(l, APIC_IRR + 0x30, 0xffffffff);
    assert_int_equal(rd(l, APIC_IRR + 0x30), 0);
    assert_int_equal(esr(l), 0);
}

static void test_cr8_is_tpr(void **state)
{
    (void)state;
    struct vlapic *l = cpu[1];
    enable(l);
    assert_int_equal(vlapic_set_cr8(l, 5), VLAPIC_OK);
    assert_int_equal(rd(l, APIC_TPR), 0x50);
    assert_int_equal(vlapic_get_cr8(l), 5);
    wr(l, APIC_TPR, 0x7f);
    assert_int_equal(vlapic_get_cr8(l), 7);
    assert_int_equal(vlapic_set_cr8(l, 0x10), VLAPIC_GP);
    assert_int_equal(rd(l, APIC_TPR), 0x7f);
    /* CR8 blocks by class as the TPR does. */
    assert_int_equal(vlapic_set_cr8(l, 4), VLAPIC_OK);
    send_fixed(1, 0x4a, false);
    assert_int_equal(vlapic_pending_intr(l), -1);
    assert_int_equal(vlapic_set_cr8(l, 3), VLAPIC_OK);
    assert_int_equal(vlapic_pending_intr(l), 0x4a);
}

static void test_bus_config_refused(void **state)
{
    (void)state;
    struct apic_bus b;
    struct apic_bus_config c = config(0);
    capture_reset();
    assert_false(apic_bus_init(&b, &c));
    assert_logged("APIC bus not set up: a TSC or APIC timer rate of 0");
    c = config(1000);
    c.clock = NULL;
    assert_false(apic_bus_init(&b, &c));
    c = config(1000);
    c.phys_bits = 64;
    assert_false(apic_bus_init(&b, &c));
    /* LAPICs: one per index, below MAX_VCPUS, page-aligned. */
    assert_false(apic_bus_add_vcpu(&bus, cpu[5], 1));
    assert_logged("LAPIC 1 not added: index already taken");
    assert_false(apic_bus_add_vcpu(&bus, cpu[5], MAX_VCPUS));
    assert_false(apic_bus_add_vcpu(&bus, (struct vlapic *)((char *)cpu[5] + 64), 5));
    assert_int_equal(bus.env.vcpus, 4);
}

static void test_every_vcpu_up_to_max(void **state)
{
    (void)state;
    make_vm(MAX_VCPUS, 1000000000ull);
    for (int i = 0; i < MAX_VCPUS; i++)
        enable(cpu[i]);
    ipi(cpu[0], 0xff, 0x4080);
    for (int i = 0; i < MAX_VCPUS; i++) {
        assert_true(irr(cpu[i], 0x80));
        assert_int_equal(kicks[i], 1);
    }
    ipi(cpu[3], MAX_VCPUS - 1, 0x4081);
    assert_true(irr(cpu[MAX_VCPUS - 1], 0x81));
    uint64_t dropped = bus.dropped;
    ipi(cpu[3], MAX_VCPUS, 0x4082);
    assert_int_equal(bus.dropped, dropped + 1);
}

static int reset_vm(void **state)
{
    (void)state;
    capture_reset();
    make_vm(4, 1000000000ull);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reset_state, reset_vm),
        cmocka_unit_test_setup(test_priority_classes_and_ppr, reset_vm),
        cmocka_unit_test_setup(test_irr_isr_eoi_order, reset_vm),
        cmocka_unit_test_setup(test_level_eoi_notifies_ioapic, reset_vm),
        cmocka_unit_test_setup(test_software_disabled_refuses_fixed, reset_vm),
        cmocka_unit_test_setup(test_timer_oneshot, reset_vm),
        cmocka_unit_test_setup(test_timer_divide_values, reset_vm),
        cmocka_unit_test_setup(test_timer_periodic, reset_vm),
        cmocka_unit_test_setup(test_timer_periodic_rate_floor, reset_vm),
        cmocka_unit_test_setup(test_timer_tsc_deadline, reset_vm),
        cmocka_unit_test_setup(test_timer_masked, reset_vm),
        cmocka_unit_test_setup(test_ipi_physical_and_broadcast, reset_vm),
        cmocka_unit_test_setup(test_ipi_logical_flat_and_cluster, reset_vm),
        cmocka_unit_test_setup(test_ipi_shorthands, reset_vm),
        cmocka_unit_test_setup(test_ipi_lowest_priority, reset_vm),
        cmocka_unit_test_setup(test_nmi_init_sipi, reset_vm),
        cmocka_unit_test_setup(test_lint_inputs, reset_vm),
        cmocka_unit_test_setup(test_x2apic_msrs, reset_vm),
        cmocka_unit_test_setup(test_apic_base_transitions, reset_vm),
        cmocka_unit_test_setup(test_apic_base_relocation, reset_vm),
        cmocka_unit_test_setup(test_esr, reset_vm),
        cmocka_unit_test_setup(test_xapic_register_masks, reset_vm),
        cmocka_unit_test_setup(test_cr8_is_tpr, reset_vm),
        cmocka_unit_test_setup(test_bus_config_refused, reset_vm),
        cmocka_unit_test_setup(test_every_vcpu_up_to_max, reset_vm),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
