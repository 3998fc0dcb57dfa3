/* Local APIC (see lapic.h). Register offsets are the xAPIC MMIO ones; in x2APIC mode
 * the same register is MSR 0x800 + offset / 16. */
#include "arch/x86/lapic.h"
#include "arch/x86/tsc.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/paging.h"
#include "vmm/lib/console.h"

#define APIC_BASE_BSP BIT(8)
#define APIC_BASE_EXTD BIT(10)
#define APIC_BASE_EN BIT(11)
#define APIC_BASE_ADDR_MASK 0x000ffffffffff000ull

#define LAPIC_ID 0x020
#define LAPIC_VERSION 0x030
#define LAPIC_EOI 0x0b0
#define LAPIC_SVR 0x0f0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_INITIAL 0x380
#define LAPIC_TIMER_CURRENT 0x390
#define LAPIC_TIMER_DIVIDE 0x3e0

#define SVR_ENABLE BIT(8)

#define ICR_FIXED 0x000
#define ICR_INIT 0x500
#define ICR_STARTUP 0x600
#define ICR_BUSY BIT(12)
#define ICR_ASSERT BIT(14)
#define ICR_ALL_BUT_SELF (3u << 18)

#define LVT_MASKED BIT(16)
#define LVT_TIMER_MODE_SHIFT 17
#define LVT_TIMER_MODE_MASK (3u << LVT_TIMER_MODE_SHIFT)
#define LVT_TIMER_TSC_DEADLINE (2u << LVT_TIMER_MODE_SHIFT)
#define LVT_TIMER_PERIODIC (1u << LVT_TIMER_MODE_SHIFT)

#define MSR_X2APIC_ICR 0x830

#define CPUID1_EDX_APIC BIT(9)
#define CPUID1_ECX_X2APIC BIT(21)

/* An IPI normally leaves the ICR within a microsecond; this is generous. */
#define ICR_TIMEOUT_US 100000

static enum lapic_mode mode;
static hva_t xapic_base;
/* The boot CPU's state as firmware left it. */
static uint64_t fw_apic_base_msr;
static uint32_t fw_svr;

static uint32_t lapic_read(uint32_t off)
{
    if (mode == LAPIC_MODE_X2APIC)
        return (uint32_t)rdmsr(MSR_X2APIC_BASE + (off >> 4));
    return mmio_read32(xapic_base + off);
}

static void lapic_write(uint32_t off, uint32_t v)
{
    if (mode == LAPIC_MODE_X2APIC)
        wrmsr(MSR_X2APIC_BASE + (off >> 4), v);
    else
        mmio_write32(xapic_base + off, v);
}

static void software_enable(void)
{
    uint32_t svr = lapic_read(LAPIC_SVR);
    if (!(svr & SVR_ENABLE))
        lapic_write(LAPIC_SVR, (svr & ~0xffu) | SVR_ENABLE | LAPIC_SPURIOUS_VECTOR);
}

bool lapic_init(bool allow_x2apic)
{
    struct cpuid_regs r = cpuid(1, 0);
    if (!(r.edx & CPUID1_EDX_APIC)) {
        kprintf("LAPIC: CPUID reports no local APIC\n");
        return false;
    }
    bool has_x2apic = r.ecx & CPUID1_ECX_X2APIC;
    uint64_t msr = rdmsr(MSR_IA32_APIC_BASE);
    const char *why;
    fw_apic_base_msr = msr;

    if (msr & APIC_BASE_EXTD) {
        mode = LAPIC_MODE_X2APIC;
        why = "left on by firmware";
    } else {
        /* x2APIC can only be entered from an enabled xAPIC. */
        if (!(msr & APIC_BASE_EN)) {
            msr |= APIC_BASE_EN;
            wrmsr(MSR_IA32_APIC_BASE, msr);
        }
        if (allow_x2apic && has_x2apic) {
            wrmsr(MSR_IA32_APIC_BASE, msr | APIC_BASE_EXTD);
            mode = LAPIC_MODE_X2APIC;
            why = "enabled by Keel";
        } else {
            mode = LAPIC_MODE_XAPIC;
            why = has_x2apic ? "x2APIC not requested" : "no x2APIC";
        }
    }

    hpa_t base = msr & APIC_BASE_ADDR_MASK;
    if (mode == LAPIC_MODE_XAPIC) {
        if (!paging_map_mmio(base, PAGE_SIZE)) {
            kprintf("LAPIC: cannot map the xAPIC registers at 0x%llx\n", (unsigned long long)base);
            mode = LAPIC_MODE_NONE;
            return false;
        }
        xapic_base = (hva_t)base;
    }

    fw_svr = lapic_read(LAPIC_SVR);
    software_enable();
    uint32_t ver = lapic_read(LAPIC_VERSION);
    if (mode == LAPIC_MODE_X2APIC)
        kprintf("LAPIC: x2APIC mode (%s), APIC ID %u, version 0x%02x, %u LVT entries\n", why,
                lapic_id(), ver & 0xff, ((ver >> 16) & 0xff) + 1);
    else
        kprintf("LAPIC: xAPIC mode at 0x%llx (%s), APIC ID %u, version 0x%02x, %u LVT entries\n",
                (unsigned long long)base, why, lapic_id(), ver & 0xff, ((ver >> 16) & 0xff) + 1);
    return true;
}

void lapic_restore_firmware_state(void)
{
    if (mode == LAPIC_MODE_NONE)
        return;
    lapic_write(LAPIC_SVR, fw_svr);
    if (!(fw_apic_base_msr & APIC_BASE_EN) && mode == LAPIC_MODE_XAPIC)
        wrmsr(MSR_IA32_APIC_BASE, fw_apic_base_msr);
}

void lapic_init_ap(void)
{
    uint64_t msr = rdmsr(MSR_IA32_APIC_BASE);
    if (!(msr & APIC_BASE_EN)) {
        msr |= APIC_BASE_EN;
        wrmsr(MSR_IA32_APIC_BASE, msr);
    }
    if (mode == LAPIC_MODE_X2APIC && !(msr & APIC_BASE_EXTD))
        wrmsr(MSR_IA32_APIC_BASE, msr | APIC_BASE_EXTD);
    /* The reverse (x2APIC AP, xAPIC boot CPU) needs firmware to have mixed modes;
     * MMIO reads would then fail, so the boot CPU's choice is all that is supported. */
    if (mode != LAPIC_MODE_NONE)
        software_enable();
}

enum lapic_mode lapic_mode(void)
{
    return mode;
}

uint32_t lapic_max_apic_id(void)
{
    return lapic_max_apic_id_in(mode);
}

uint32_t lapic_id(void)
{
    switch (mode) {
    case LAPIC_MODE_X2APIC:
        return lapic_read(LAPIC_ID);
    case LAPIC_MODE_XAPIC:
        return lapic_read(LAPIC_ID) >> 24;
    default:
        /* Before lapic_init: the initial APIC ID, which firmware never changes in
         * practice. CPUID.1 has only its low 8 bits; leaf 0xB has all 32 (SDM vol. 3A,
         * 10.12.8.1), and on machines with x2APIC IDs above 255 the boot CPU may have one. */
        if (cpuid(0, 0).eax >= 0xb && cpuid(0xb, 0).ebx != 0)
            return cpuid(0xb, 0).edx;
        return cpuid(1, 0).ebx >> 24;
    }
}

void lapic_eoi(void)
{
    lapic_write(LAPIC_EOI, 0);
}

static bool xapic_icr_idle(void)
{
    for (uint32_t i = 0; i < ICR_TIMEOUT_US; i++) {
        if (!(mmio_read32(xapic_base + LAPIC_ICR_LOW) & ICR_BUSY))
            return true;
        udelay(1);
    }
    return false;
}

static bool send_ipi(uint32_t apic_id, uint32_t icr_low)
{
    if (mode == LAPIC_MODE_NONE || apic_id > lapic_max_apic_id())
        return false;

    /* The ICR is two registers in xAPIC mode: an interrupt handler sending its own
     * IPI between the two writes would redirect ours. */
    uint64_t flags = read_rflags();
    cli();
    bool ok = true;
    if (mode == LAPIC_MODE_X2APIC) {
        /* WRMSR to the x2APIC is not serializing: earlier stores (e.g. a trampoline
         * parameter block) must be visible before the target CPU can run. */
        __asm__ volatile("mfence; lfence" ::: "memory");
        wrmsr(MSR_X2APIC_ICR, lapic_x2apic_icr(apic_id, icr_low));
    } else {
        ok = xapic_icr_idle();
        if (ok) {
            mmio_write32(xapic_base + LAPIC_ICR_HIGH, lapic_xapic_icr_high(apic_id));
            mmio_write32(xapic_base + LAPIC_ICR_LOW, icr_low);
            ok = xapic_icr_idle();
        }
    }
    if (flags & RFLAGS_IF)
        sti();
    return ok;
}

bool lapic_send_init(uint32_t apic_id)
{
    return send_ipi(apic_id, ICR_INIT | ICR_ASSERT);
}

bool lapic_send_init_others(void)
{
    /* With a shorthand the destination field is ignored. */
    return send_ipi(0, ICR_INIT | ICR_ASSERT | ICR_ALL_BUT_SELF);
}

bool lapic_send_sipi(uint32_t apic_id, uint8_t vector)
{
    return send_ipi(apic_id, ICR_STARTUP | ICR_ASSERT | vector);
}

bool lapic_send_fixed(uint32_t apic_id, uint8_t vector)
{
    return send_ipi(apic_id, ICR_FIXED | ICR_ASSERT | vector);
}

/* Divide Configuration Register encodings (bits 3, 1:0) for divisors 1, 2, ... 128. */
static const uint8_t divide_codes[8] = {0xb, 0x0, 0x1, 0x2, 0x3, 0x8, 0x9, 0xa};

bool lapic_timer_set_divide(uint32_t divisor)
{
    for (uint32_t i = 0; i < ARRAY_SIZE(divide_codes); i++) {
        if (divisor == (1u << i)) {
            lapic_write(LAPIC_TIMER_DIVIDE, divide_codes[i]);
            return true;
        }
    }
    return false;
}

void lapic_timer_start(uint8_t vector, enum lapic_timer_mode tmode, uint32_t initial_count,
                       bool masked)
{
    uint32_t lvt = vector | ((uint32_t)tmode << LVT_TIMER_MODE_SHIFT);
    if (masked)
        lvt |= LVT_MASKED;
    lapic_write(LAPIC_LVT_TIMER, lvt);
    lapic_write(LAPIC_TIMER_INITIAL, initial_count);
}

void lapic_timer_stop(void)
{
    lapic_write(LAPIC_TIMER_INITIAL, 0);
    lapic_write(LAPIC_LVT_TIMER, lapic_read(LAPIC_LVT_TIMER) | LVT_MASKED);
}

void lapic_timer_mask(bool masked)
{
    uint32_t lvt = lapic_read(LAPIC_LVT_TIMER);
    lapic_write(LAPIC_LVT_TIMER, masked ? (lvt | LVT_MASKED) : (lvt & ~LVT_MASKED));
}

uint32_t lapic_timer_current(void)
{
    return lapic_read(LAPIC_TIMER_CURRENT);
}

void lapic_timer_save(struct lapic_timer_state *s)
{
    s->lvt = lapic_read(LAPIC_LVT_TIMER);
    s->divide = lapic_read(LAPIC_TIMER_DIVIDE);
    s->initial = lapic_read(LAPIC_TIMER_INITIAL);
    s->current = lapic_read(LAPIC_TIMER_CURRENT);
    s->tsc_deadline = 0;
    if ((s->lvt & LVT_TIMER_MODE_MASK) == LVT_TIMER_TSC_DEADLINE)
        s->tsc_deadline = rdmsr(MSR_IA32_TSC_DEADLINE);
}

void lapic_timer_restore(const struct lapic_timer_state *s)
{
    /* Stop whatever Keel left running before reprogramming the mode. */
    lapic_write(LAPIC_TIMER_INITIAL, 0);
    lapic_write(LAPIC_TIMER_DIVIDE, s->divide);
    lapic_write(LAPIC_LVT_TIMER, s->lvt);
    switch (s->lvt & LVT_TIMER_MODE_MASK) {
    case LVT_TIMER_TSC_DEADLINE:
        /* A deadline already in the past fires at once, as it would have anyway. */
        if (s->tsc_deadline)
            wrmsr(MSR_IA32_TSC_DEADLINE, s->tsc_deadline);
        break;
    case LVT_TIMER_PERIODIC:
        lapic_write(LAPIC_TIMER_INITIAL, s->initial);
        break;
    default:
        lapic_write(LAPIC_TIMER_INITIAL, s->current);
        break;
    }
}

void lapic_timer_restore_if_changed(const struct lapic_timer_state *s)
{
    struct lapic_timer_state now;
    lapic_timer_save(&now);
    bool same = now.lvt == s->lvt && now.divide == s->divide;
    /* Restoring a one-shot sets its initial count to what was left, so only a
     * periodic timer's initial count says whether someone else programmed it. */
    if ((s->lvt & LVT_TIMER_MODE_MASK) == LVT_TIMER_PERIODIC)
        same = same && now.initial == s->initial;
    if (!same)
        lapic_timer_restore(s);
}
