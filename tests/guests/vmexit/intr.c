/* The 64-bit IDT: entry.asm's exception stubs for vectors 0-31 (a fault stops the guest
 * with a report) and the handlers of the interrupts the tests cause. */
#include "vmexit.h"

#define IDT_ENTRIES 256
#define GATE_INTERRUPT64 0x8E
#define SEL_CODE64 0x18

struct gate64 {
    uint16_t offset_lo, selector;
    uint8_t ist, type;
    uint16_t offset_mid;
    uint32_t offset_hi, reserved;
} __attribute__((packed));

struct idt_desc {
    uint16_t limit;
    uint64_t base;
} __attribute__((packed));

struct iframe;

struct intr_counts counts;
extern void (*const exc_stubs[32])(void);

static struct gate64 idt[IDT_ENTRIES] __attribute__((aligned(16)));

#define HANDLER(name) __attribute__((interrupt)) static void name(struct iframe *f)

/* The EOI is timed here because it is one of the figures asked for: a write to the
 * LAPIC's EOI register, an exit under a hypervisor without APIC virtualization. */
HANDLER(on_self_ipi)
{
    (void)f;
    counts.self_ipi++;
    uint64_t t0 = rdtsc();
    lapic_eoi();
    counts.eoi_ticks += rdtsc() - t0;
}

HANDLER(on_timer)
{
    (void)f;
    counts.timer_tsc = rdtsc();
    counts.timer++;
    lapic_eoi();
}

/* Runs on the AP (in xAPIC mode whatever the BSP's): the sender waits for ap_ipis_done
 * to move, so the round trip it times covers delivery, this handler and its EOI. */
HANDLER(on_ipi)
{
    (void)f;
    counts.ipi++;
    lapic_write_mmio(LAPIC_EOI, 0);
    __atomic_fetch_add(&ap_ipis_done, 1, __ATOMIC_RELEASE);
}

/* The local APIC's spurious vector takes no EOI. */
HANDLER(on_spurious)
{
    (void)f;
    counts.spurious++;
}

static void set_gate(int vec, const void *fn)
{
    uint64_t a = (uint64_t)(uintptr_t)fn;
    idt[vec] = (struct gate64){ (uint16_t)a, SEL_CODE64, 0, GATE_INTERRUPT64,
                                (uint16_t)(a >> 16), (uint32_t)(a >> 32), 0 };
}

void intr_load_idt(void)
{
    struct idt_desc d = { sizeof(idt) - 1, (uint64_t)(uintptr_t)idt };
    __asm__ volatile("lidt %0" ::"m"(d));
}

void intr_init(void)
{
    for (int v = 0; v < 32; v++)
        set_gate(v, (const void *)exc_stubs[v]);
    set_gate(VEC_SELF_IPI, (const void *)on_self_ipi);
    set_gate(VEC_TIMER, (const void *)on_timer);
    set_gate(VEC_IPI, (const void *)on_ipi);
    set_gate(VEC_SPURIOUS, (const void *)on_spurious);
    intr_load_idt();
}
