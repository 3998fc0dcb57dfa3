/* One IDT shared by all CPUs; only the IST stacks behind it are per CPU. */
#include "arch/x86/trap.h"
#include "arch/x86/extable.h"
#include "arch/x86/percpu.h"
#include "arch/x86/lapic.h"
#include "vmm/lib/console.h"

struct idt_gate {
    uint16_t offset_lo;
    uint16_t selector;
    uint8_t ist;
    uint8_t type_attr;
    uint16_t offset_mid;
    uint32_t offset_hi;
    uint32_t reserved;
} PACKED;

struct idt_pointer {
    uint16_t limit;
    uint64_t base;
} PACKED;

#define GATE_INTERRUPT 0x8e /* present, DPL 0, 64-bit interrupt gate: IF cleared */

extern const uint64_t isr_stub_table[256];
static struct idt_gate idt[256] ALIGNED(16);
static irq_handler_t irq_handlers[256];

static void set_gate(unsigned v, uint64_t handler, uint8_t ist)
{
    idt[v] = (struct idt_gate){
        .offset_lo = handler & 0xffff,
        .selector = GDT_KCODE,
        .ist = ist,
        .type_attr = GATE_INTERRUPT,
        .offset_mid = (handler >> 16) & 0xffff,
        .offset_hi = (uint32_t)(handler >> 32),
    };
}

void idt_init(void)
{
    for (unsigned v = 0; v < 256; v++)
        set_gate(v, isr_stub_table[v], 0);
    /* Faults that may arrive on a broken stack get known-good ones. */
    idt[VECTOR_DOUBLE_FAULT].ist = IST_DOUBLE_FAULT;
    idt[VECTOR_NMI].ist = IST_NMI;
    idt[VECTOR_MACHINE_CHECK].ist = IST_MACHINE_CHECK;
}

void idt_load(void)
{
    struct idt_pointer p = {.limit = sizeof(idt) - 1, .base = (uint64_t)(uintptr_t)idt};
    __asm__ volatile("lidt %0" ::"m"(p));
}

void irq_register(uint8_t vector, irq_handler_t handler)
{
    irq_handlers[vector] = handler;
}

void trap_dispatch(struct trap_frame *f)
{
    if (f->vector < VECTOR_FIRST_IRQ) {
        uint64_t fixup = extable_fixup(f->rip);
        if (!fixup)
            exception_fatal(f);
        f->rip = fixup;
        return;
    }
    irq_handler_t h = irq_handlers[f->vector];
    if (h) {
        h(f);
        return;
    }
    /* The APIC needs no EOI for its spurious vector; anything else unexpected is
     * reported and acknowledged, so it cannot block lower-priority vectors. */
    if (f->vector != VECTOR_SPURIOUS) {
        kprintf("IRQ: unexpected interrupt vector %lu at rip 0x%lx, acknowledged and dropped\n", f->vector, f->rip);
        lapic_eoi();
    }
}
