/* The BSP's local APIC: in xAPIC mode by MMIO at the base IA32_APIC_BASE names, after
 * lapic_enable_x2apic through the x2APIC MSRs. The AP stays in xAPIC mode. */
#include "vmexit.h"

#define APIC_BASE_MASK 0xFFFFF000u
#define APIC_BASE_X2APIC (1u << 10)
#define MSR_X2APIC_BASE 0x800u
#define MSR_X2APIC_ICR 0x830u
#define SEND_SPIN_LIMIT 100000000ull /* TSC ticks: far beyond any delivery */
#define PIC1_DATA 0x21
#define PIC2_DATA 0xA1

static uintptr_t lapic_base = 0xFEE00000u;
static bool x2apic;

uint32_t lapic_read(uint32_t reg)
{
    if (x2apic)
        return (uint32_t)rdmsr(MSR_X2APIC_BASE + (reg >> 4));
    return *(volatile uint32_t *)(lapic_base + reg);
}

void lapic_write(uint32_t reg, uint32_t val)
{
    if (x2apic)
        wrmsr(MSR_X2APIC_BASE + (reg >> 4), val);
    else
        lapic_write_mmio(reg, val);
}

void lapic_write_mmio(uint32_t reg, uint32_t val)
{
    *(volatile uint32_t *)(lapic_base + reg) = val;
}

uint32_t lapic_id(void)
{
    return x2apic ? lapic_read(LAPIC_ID) : lapic_read(LAPIC_ID) >> 24;
}

void lapic_enable_x2apic(void)
{
    if (!x2apic)
        wrmsr(MSR_IA32_APIC_BASE, rdmsr(MSR_IA32_APIC_BASE) | APIC_BASE_X2APIC);
    x2apic = true;
}

void lapic_init(void)
{
    lapic_base = (uintptr_t)(rdmsr(MSR_IA32_APIC_BASE) & APIC_BASE_MASK);
    /* Firmware may leave the 8259's timer line open (SeaBIOS does): with interrupts on it
     * would arrive on vector 8. LINT0 is masked below as well. */
    outb(PIC1_DATA, 0xFF);
    outb(PIC2_DATA, 0xFF);
}

void lapic_enable(void)
{
    lapic_write(LAPIC_LVT_TIMER, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
    lapic_write(LAPIC_LVT_LINT1, LVT_MASKED);
    lapic_write(LAPIC_LVT_ERROR, LVT_MASKED);
    lapic_write(LAPIC_TPR, 0);
    lapic_write(LAPIC_SVR, 0x100 | VEC_SPURIOUS);
}

bool lapic_send(uint32_t dest, uint32_t low)
{
    /* The x2APIC's ICR is one MSR and has no delivery-status bit to wait on. */
    if (x2apic) {
        wrmsr(MSR_X2APIC_ICR, (uint64_t)dest << 32 | low);
        return true;
    }
    lapic_write(LAPIC_ICR_HI, dest << 24);
    lapic_write(LAPIC_ICR_LO, low);
    uint64_t t0 = rdtsc();
    while (lapic_read(LAPIC_ICR_LO) & ICR_PENDING)
        if (rdtsc() - t0 > SEND_SPIN_LIMIT)
            return false;
    return true;
}

void spin_ticks(uint64_t ticks)
{
    uint64_t t0 = rdtsc();
    while (rdtsc() - t0 < ticks)
        __asm__ volatile("pause");
}
