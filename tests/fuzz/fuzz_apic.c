/* Fuzzes a VM's interrupt controllers as its guest and devices drive them: the local
 * APICs (vmm/dev/vlapic.c) through the xAPIC page on the device bus and the MSRs
 * (x2APIC, IA32_APIC_BASE, IA32_TSC_DEADLINE), the APIC bus between them
 * (vmm/dev/apic_bus.c), and the IOAPIC (vmm/dev/vioapic.c) through its window and its
 * input lines, with VM time moving forward and the vCPU side injecting and taking events.
 *
 * Input: byte 0: vCPUs - 1 (mod MAX_VCPUS); byte 1: the APIC timer rate (one of four);
 * then operations of 12 bytes: op, vCPU (mod the count), a 16-bit argument, a 64-bit
 * value (little-endian). Ops: xAPIC page write/read at window + arg[11:0], width
 * 1 << arg[13:12]; WRMSR/RDMSR of 0x800 + arg[7:0], IA32_APIC_BASE or IA32_TSC_DEADLINE
 * by arg[9:8]; time forward by value mod 2^32 ns, then every timer polled; IOAPIC write
 * and read (IOREGSEL or IOWIN by arg bit 0); an input line arg mod 32 to value bit 0;
 * injection (take the pending vector); taking the events; CR8; LINT arg mod 4.
 *
 * After each: kicks name only the VM's vCPUs; no IRR or ISR bit below 16; ESR holds only
 * the error bits the model sets; IA32_APIC_BASE has no reserved bit and no x2APIC without
 * the enable; a pending vector is one the PPR lets through; after a poll no deadline is
 * in the past; IOAPIC entries keep reserved bits clear and remote IRR only on level
 * pins; the whole input logs a bounded number of lines (everything is logged once).
 * SOURCES: vmm/dev/vlapic.c vmm/dev/apic_bus.c vmm/dev/vioapic.c vmm/dev/bus.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/fuzz/console_sink.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/console_sink.h"
#include "vmm/dev/apic_bus.h"
#include "vmm/dev/vioapic.h"
#include "vmm/dev/vlapic.h"

#define OP_BYTES 12
#define MAX_LINES 64

static struct vlapic lapic[MAX_VCPUS];
static struct apic_bus apic;
static struct vioapic io;
static struct vm_bus bus;
static uint64_t now;
static uint32_t vcpus, current;

static uint64_t fake_now(void *ctx)
{
    (void)ctx;
    return now;
}
static const struct dev_clock clk = {.now_ns = fake_now};

static void kick(void *ctx, uint32_t v)
{
    (void)ctx;
    FUZZ_CHECK(v < vcpus, "kick for vCPU %u of %u", v, vcpus);
}

static uint32_t current_vcpu(void *ctx)
{
    (void)ctx;
    return current;
}

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint32_t msr_of(uint16_t arg)
{
    switch ((arg >> 8) & 3) {
    case 1: return MSR_IA32_APIC_BASE;
    case 2: return MSR_IA32_TSC_DEADLINE;
    default: return MSR_X2APIC_FIRST + (arg & 0xff);
    }
}

static void check_lapic(struct vlapic *l, bool polled)
{
    FUZZ_CHECK(!(l->regs[APIC_IRR / 4] & 0xffff), "IRR bits below 16 on vCPU %u", l->index);
    FUZZ_CHECK(!(l->regs[APIC_ISR / 4] & 0xffff), "ISR bits below 16 on vCPU %u", l->index);
    uint32_t errors = APIC_ESR_SEND_ILLEGAL | APIC_ESR_RECV_ILLEGAL | APIC_ESR_ILLEGAL_REG;
    FUZZ_CHECK(!(l->regs[APIC_ESR / 4] & ~errors) && !(l->esr_pending & ~errors), "ESR 0x%x/0x%x",
               l->regs[APIC_ESR / 4], l->esr_pending);
    uint64_t reserved = 0x2ffull | ~0ull << apic.env.phys_bits;
    FUZZ_CHECK(!(l->base_msr & reserved), "IA32_APIC_BASE 0x%lx", (unsigned long)l->base_msr);
    FUZZ_CHECK(!(l->base_msr & APIC_BASE_EXTD) || (l->base_msr & APIC_BASE_EN), "x2APIC without EN");
    int p = vlapic_pending_intr(l);
    if (p >= 0) {
        uint32_t ppr = vlapic_mmio_read(l, APIC_PPR, 4); /* a register read, whatever the mode */
        FUZZ_CHECK(p >= 16 && p <= 255 && (uint32_t)(p & 0xf0) > (ppr & 0xf0), "pending vector %d, PPR 0x%x",
                   p, ppr);
    }
    if (polled) {
        uint64_t d = vlapic_timer_deadline(l);
        FUZZ_CHECK(d == CLOCK_NEVER || d > now, "vCPU %u deadline %lu not after %lu", l->index,
                   (unsigned long)d, (unsigned long)now);
    }
}

static void check_ioapic(void)
{
    for (unsigned i = 0; i < VIOAPIC_PINS; i++) {
        uint64_t e = io.redir[i];
        FUZZ_CHECK(!(e & 0x00fffffffffe1000ull), "IOAPIC entry %u reserved bits: 0x%lx", i, (unsigned long)e);
        FUZZ_CHECK(!(e & IOAPIC_REDIR_REMOTE_IRR) || (e & IOAPIC_REDIR_LEVEL), "remote IRR on edge pin %u", i);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint64_t rates[] = {1000000, 3000000, 100000000, 1000000000};
    if (size < 2)
        return 0;
    sink_reset();
    vcpus = 1 + data[0] % MAX_VCPUS;
    now = 0;
    struct apic_bus_config c = {.vm_name = "fuzz", .clock = &clk, .tsc_hz = 2000000000, .tsc_at_zero = 12345,
                                .timer_hz = rates[data[1] & 3], .ram_size = 16 << 20, .phys_bits = 39,
                                .kick = kick};
    /* The device bus once: initialising its 64 Ki port map per input cost nine tenths of
     * the time. Only the two windows come and go. */
    static bool bus_ready;
    static int ranges[2];
    if (!bus_ready) {
        vm_bus_init(&bus, "fuzz");
        bus_ready = true;
    }
    for (int i = 0; i < 2; i++)
        if (ranges[i] > 0)
            FUZZ_CHECK(vm_bus_remove(&bus, ranges[i]) == 0, "range %d not removed", ranges[i]);
    FUZZ_CHECK(apic_bus_init(&apic, &c), "bus refused");
    for (uint32_t i = 0; i < vcpus; i++)
        FUZZ_CHECK(apic_bus_add_vcpu(&apic, &lapic[i], i), "vCPU %u refused", i);
    ranges[0] = apic_bus_attach_mmio(&apic, &bus, current_vcpu, NULL);
    FUZZ_CHECK(ranges[0] > 0, "xAPIC window refused");
    vioapic_init(&io, &apic, "fuzz", VIOAPIC_DEFAULT_ID);
    ranges[1] = vioapic_attach(&io, &bus, VIOAPIC_BASE);
    FUZZ_CHECK(ranges[1] > 0, "IOAPIC window refused");

    for (size_t at = 2; at + OP_BYTES <= size; at += OP_BYTES) {
        const uint8_t *op = data + at;
        current = op[1] % vcpus;
        struct vlapic *l = &lapic[current];
        uint16_t arg = (uint16_t)le(op + 2, 2);
        uint64_t value = le(op + 4, 8);
        bool polled = false;
        uint64_t v = value;
        switch (op[0] % 12) {
        case 0:
        case 1:
            vm_bus_access(&bus, BUS_MMIO, apic.window_base + (arg & 0xfff), 1u << ((arg >> 12) & 3),
                          op[0] % 12 == 0, &v);
            break;
        case 2: vlapic_wrmsr(l, msr_of(arg), value); break;
        case 3: vlapic_rdmsr(l, msr_of(arg), &v); break;
        case 4:
            now += (uint32_t)value;
            for (uint32_t i = 0; i < vcpus; i++)
                vlapic_timer_poll(&lapic[i]);
            polled = true;
            break;
        case 5: vioapic_write(&io, arg & 1 ? IOAPIC_IOWIN : IOAPIC_IOREGSEL, (uint32_t)value); break;
        case 6: (void)vioapic_read(&io, arg & 1 ? IOAPIC_IOWIN : IOAPIC_IOREGSEL); break;
        case 7: vioapic_set_irq(&io, arg % 32, value & 1); break;
        case 8: {
            int p = vlapic_pending_intr(l);
            if (p >= 0)
                vlapic_accept_intr(l, (uint8_t)p);
            break;
        }
        case 9: (void)vlapic_take_events(l); break;
        case 10: vlapic_set_cr8(l, value & 0x1f); break;
        default: vlapic_set_lint(l, arg % 4, value & 1); break;
        }
        for (uint32_t i = 0; i < vcpus; i++)
            check_lapic(&lapic[i], polled);
        check_ioapic();
    }
    FUZZ_CHECK(sink_lines() <= MAX_LINES, "%u console lines from one input", sink_lines());
    return 0;
}
