/* Register model, timer and interrupt acceptance of a virtual local APIC (see vlapic.h).
 * Facts from the SDM, vol. 3 ch. 10 (11 in later editions): reset state 10.4.7.1, INIT
 * 10.4.7.3, priorities 10.8.3, ESR 10.5.3, timer 10.5.4, x2APIC 10.12. */
#include "vmm/dev/vlapic.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"
#include "vmm/lib/time_math.h"

#define REG(l, off) ((l)->regs[(off) / 4])

/* Writable bits of each register (what an xAPIC write keeps, what x2APIC allows). */
#define TPR_BITS 0xffu
#define SVR_BITS 0x3ffu /* vector, software enable, focus check disable */
#define LDR_BITS 0xff000000u
#define DFR_MODEL_BITS 0xf0000000u
#define LVT_TIMER_BITS 0x000700ffu /* vector, mask, mode */
#define LVT_LINT_BITS 0x0001a7ffu  /* vector, delivery mode, polarity, trigger, mask */
#define LVT_OTHER_BITS 0x000107ffu /* thermal, perf, CMCI: vector, delivery mode, mask */
#define LVT_ERROR_BITS 0x000100ffu
#define LVT_RO_BITS 0x00005000u /* delivery status, remote IRR: ignored on write */
#define DIVIDE_BITS 0x0000000bu
#define ICR_LO_BITS 0x000ccfffu           /* vector, mode, dest mode, level, trigger, shorthand */
#define X2APIC_ICR_RESERVED 0xfff32000ull /* bits 31:20, 17:16, 13 (bit 12 ignored) */
#define ICR_LEVEL_ASSERT BIT(14)
#define ICR_TRIGGER_LEVEL BIT(15)
#define APIC_BASE_RESERVED 0x2ffull /* bits 7:0 and 9; bits at and above phys_bits too */

static const uint32_t lvt_offsets[] = {APIC_LVT_TIMER, APIC_LVT_THERMAL, APIC_LVT_PERF, APIC_LVT_LINT0,
                                       APIC_LVT_LINT1, APIC_LVT_ERROR,   APIC_LVT_CMCI};

/* ---- 256-bit registers (ISR, TMR, IRR): vector v is bit v%32 of register v/32 ---- */

static uint32_t *vec_word(struct vlapic *l, uint32_t base, uint8_t v)
{
    return &l->regs[base / 4 + (v >> 5) * 4];
}

static bool vec_test(const struct vlapic *l, uint32_t base, uint8_t v)
{
    return __atomic_load_n(&l->regs[base / 4 + (v >> 5) * 4], __ATOMIC_RELAXED) >> (v & 31) & 1;
}

static int vec_highest(const struct vlapic *l, uint32_t base)
{
    for (int i = 7; i >= 0; i--) {
        uint32_t w = __atomic_load_n(&l->regs[base / 4 + i * 4], __ATOMIC_ACQUIRE);
        if (w)
            return i * 32 + 31 - __builtin_clz(w);
    }
    return -1;
}

static void kick_self(struct vlapic *l)
{
    if (l->env->kick)
        l->env->kick(l->env->kick_ctx, l->index);
}

static bool move_window(struct vlapic *l, uint64_t base)
{
    return !l->env->move_window || l->env->move_window(l->env->bus, l, base);
}

static bool sw_enabled(const struct vlapic *l)
{
    return REG(l, APIC_SVR) & APIC_SVR_ENABLE;
}

/* ---- priorities (SDM 10.8.3) ---- */

static uint8_t ppr(const struct vlapic *l)
{
    uint8_t tpr = vlapic_tpr(l);
    int isrv = vec_highest(l, APIC_ISR);
    uint8_t isr_class = isrv < 0 ? 0 : (uint8_t)(isrv & 0xf0);
    return (tpr & 0xf0) >= isr_class ? tpr : isr_class;
}

uint8_t vlapic_arbitration_priority(const struct vlapic *l)
{
    uint8_t tpr = vlapic_tpr(l);
    int isrv = vec_highest(l, APIC_ISR), irrv = vec_highest(l, APIC_IRR);
    uint8_t isr_class = isrv < 0 ? 0 : (uint8_t)(isrv & 0xf0);
    uint8_t irr_class = irrv < 0 ? 0 : (uint8_t)(irrv & 0xf0);
    if ((tpr & 0xf0) >= irr_class && (tpr & 0xf0) > isr_class)
        return tpr;
    return MAX(tpr & 0xf0, MAX(isr_class, irr_class));
}

/* ---- accepting interrupts (any CPU) ---- */

/* TMR first, so the owner never sees the IRR bit with a stale trigger mode; a locked
 * operation on it only when the mode changes (edge after edge is the common case). */
static void set_irr(struct vlapic *l, uint8_t v, bool level)
{
    uint32_t bit = 1u << (v & 31);
    uint32_t *tmr = vec_word(l, APIC_TMR, v);
    bool was_level = __atomic_load_n(tmr, __ATOMIC_RELAXED) & bit;
    if (level && !was_level)
        __atomic_fetch_or(tmr, bit, __ATOMIC_RELAXED);
    else if (!level && was_level)
        __atomic_fetch_and(tmr, ~bit, __ATOMIC_RELAXED);
    __atomic_fetch_or(vec_word(l, APIC_IRR, v), bit, __ATOMIC_RELEASE);
}

/* The ISR is written by its owner only (others just read it), so no locked operation. */
static void isr_update(struct vlapic *l, uint8_t v, bool set)
{
    uint32_t *w = vec_word(l, APIC_ISR, v), bit = 1u << (v & 31);
    uint32_t old = __atomic_load_n(w, __ATOMIC_RELAXED);
    __atomic_store_n(w, set ? old | bit : old & ~bit, __ATOMIC_RELAXED);
}

/* Records errors and raises the LVT error interrupt (SDM 10.5.3). */
static void record_error(struct vlapic *l, uint32_t bits)
{
    __atomic_fetch_or(&l->esr_pending, bits, __ATOMIC_RELAXED);
    uint32_t lvt = __atomic_load_n(&REG(l, APIC_LVT_ERROR), __ATOMIC_RELAXED);
    if (lvt & APIC_LVT_MASKED)
        return;
    if ((lvt & 0xff) < 16)
        __atomic_fetch_or(&l->esr_pending, APIC_ESR_RECV_ILLEGAL, __ATOMIC_RELAXED);
    else
        set_irr(l, (uint8_t)lvt, false);
}

static void set_event(struct vlapic *l, uint32_t clear, uint32_t set)
{
    uint32_t old = __atomic_load_n(&l->events, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&l->events, &old, (old & ~clear) | set, true, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
        ;
}

/* A locally generated interrupt (timer, LINT, error) of the given vector. */
static void local_fixed(struct vlapic *l, uint8_t vector, bool level)
{
    if (vector < 16)
        record_error(l, APIC_ESR_RECV_ILLEGAL);
    else
        set_irr(l, vector, level);
    kick_self(l);
}

bool vlapic_deliver(struct vlapic *l, const struct apic_msg *m)
{
    if (!vlapic_hw_enabled(l))
        return false;
    switch (m->mode) {
    case APIC_DM_FIXED:
    case APIC_DM_LOWEST:
        if (!sw_enabled(l))
            return false;
        if (m->vector < 16)
            record_error(l, APIC_ESR_RECV_ILLEGAL);
        else
            set_irr(l, m->vector, m->level);
        return true;
    case APIC_DM_NMI: set_event(l, 0, VLAPIC_EV_NMI); return true;
    case APIC_DM_INIT:
        if (m->deassert)
            return false;
        set_event(l, VLAPIC_EV_SIPI | 0xff00u, VLAPIC_EV_INIT);
        return true;
    case APIC_DM_SIPI: set_event(l, 0xff00u, VLAPIC_EV_SIPI | (uint32_t)m->vector << 8); return true;
    case APIC_DM_EXTINT: set_event(l, 0, VLAPIC_EV_EXTINT); return true;
    default: return false;
    }
}

bool vlapic_matches(const struct vlapic *l, const struct apic_msg *m)
{
    if (m->dest == (m->x2apic ? 0xffffffffu : 0xffu))
        return true;
    if (!m->logical)
        return m->dest == l->index;
    uint32_t ldr = __atomic_load_n(&REG(l, APIC_LDR), __ATOMIC_RELAXED);
    if (vlapic_x2apic(l))
        return (m->dest >> 16) == (ldr >> 16) && (m->dest & ldr & 0xffff);
    uint8_t mda = (uint8_t)m->dest, id = (uint8_t)(ldr >> 24);
    switch (__atomic_load_n(&REG(l, APIC_DFR), __ATOMIC_RELAXED) >> 28) {
    case 0xf: return mda & id;                                      /* flat */
    case 0x0: return (mda >> 4) == (id >> 4) && (mda & id & 0x0f); /* cluster */
    default: return false;
    }
}

/* ---- reset ---- */

static uint32_t x2apic_ldr(uint32_t id)
{
    return (id >> 4) << 16 | 1u << (id & 0xf);
}

/* Registers to their power-up values; base_msr says which mode the ID is in. */
static void reset_regs(struct vlapic *l)
{
    memset(l->regs, 0, sizeof(l->regs));
    bool x2 = vlapic_x2apic(l);
    REG(l, APIC_ID) = x2 ? l->index : l->index << 24;
    REG(l, APIC_VERSION) = APIC_VERSION_VALUE;
    REG(l, APIC_LDR) = x2 ? x2apic_ldr(l->index) : 0;
    REG(l, APIC_DFR) = 0xffffffffu;
    REG(l, APIC_SVR) = 0xff;
    for (size_t i = 0; i < ARRAY_SIZE(lvt_offsets); i++)
        REG(l, lvt_offsets[i]) = APIC_LVT_MASKED;
    /* The BSP's LINT0 as PC firmware leaves it (and QEMU resets it): the PIC's virtual
     * wire, so kernels that never touch the LAPIC still get the PIC's interrupts. */
    if (l->index == 0)
        REG(l, APIC_LVT_LINT0) = APIC_DM_EXTINT << 8;
    __atomic_store_n(&l->esr_pending, 0, __ATOMIC_RELAXED);
    l->timer_start_ns = 0;
    l->timer_start_count = 0;
    l->timer_deadline_ns = CLOCK_NEVER;
    l->tsc_deadline = 0;
    l->timer_divide = 2; /* divide register 0 */
}

static uint64_t default_base_msr(const struct vlapic *l)
{
    return XAPIC_DEFAULT_BASE | APIC_BASE_EN | (l->index == 0 ? APIC_BASE_BSP : 0);
}

void vlapic_init(struct vlapic *l, struct apic_env *env, uint32_t index)
{
    memset(l, 0, sizeof(*l));
    l->env = env;
    l->index = index;
    l->base_msr = default_base_msr(l);
    reset_regs(l);
}

void vlapic_reset(struct vlapic *l)
{
    move_window(l, XAPIC_DEFAULT_BASE);
    l->base_msr = default_base_msr(l);
    __atomic_store_n(&l->events, 0, __ATOMIC_RELAXED);
    reset_regs(l);
}

/* ---- timer (SDM 10.5.4) ---- */

static uint64_t now_ns(const struct vlapic *l)
{
    return clock_now_ns(l->env->clock);
}

static uint32_t timer_mode(const struct vlapic *l)
{
    return (REG(l, APIC_LVT_TIMER) & APIC_TIMER_MODE_MASK) >> 17;
}

static uint64_t ticks_since_start(const struct vlapic *l, uint64_t now)
{
    if (now <= l->timer_start_ns)
        return 0;
    return muldiv64(now - l->timer_start_ns, l->env->timer_hz, l->timer_divide * NS_PER_SEC);
}

/* The first ns at which ticks_since_start reaches ticks. */
static uint64_t ns_at_tick(const struct vlapic *l, uint64_t ticks)
{
    uint64_t per = l->timer_divide * NS_PER_SEC, hz = l->env->timer_hz;
    uint64_t q = muldiv64(ticks, per, hz);
    if (q == UINT64_MAX)
        return CLOCK_NEVER;
    if (muldiv64(q, hz, per) < ticks)
        q++;
    return q > CLOCK_NEVER - 1 - l->timer_start_ns ? CLOCK_NEVER : l->timer_start_ns + q;
}

/* The count now, in one-shot and periodic mode. */
static uint32_t timer_count(const struct vlapic *l, uint64_t now)
{
    if (timer_mode(l) == VLAPIC_TIMER_TSC_DEADLINE || l->timer_start_count == 0)
        return 0;
    uint64_t t = ticks_since_start(l, now), first = l->timer_start_count;
    if (t < first)
        return (uint32_t)(first - t);
    uint32_t reload = REG(l, APIC_TIMER_INITIAL);
    if (timer_mode(l) != VLAPIC_TIMER_PERIODIC || reload == 0)
        return 0;
    return reload - (uint32_t)((t - first) % reload);
}

/* (Re)starts counting down from count at now. */
static void timer_start(struct vlapic *l, uint64_t now, uint32_t count)
{
    l->timer_start_ns = now;
    l->timer_start_count = count;
    l->timer_deadline_ns = count ? ns_at_tick(l, count) : CLOCK_NEVER;
}

static void timer_disarm(struct vlapic *l)
{
    l->timer_start_count = 0;
    l->timer_deadline_ns = CLOCK_NEVER;
    l->tsc_deadline = 0;
}

/* Guest TSC to clock ns, rounded up: the first ns at which the guest TSC has reached tsc. */
static uint64_t tsc_to_ns(const struct vlapic *l, uint64_t tsc)
{
    const struct apic_env *c = l->env;
    if (tsc <= c->tsc_at_zero)
        return 0;
    uint64_t d = tsc - c->tsc_at_zero;
    uint64_t q = muldiv64(d, NS_PER_SEC, c->tsc_hz);
    if (q == UINT64_MAX)
        return CLOCK_NEVER;
    if (muldiv64(q, c->tsc_hz, NS_PER_SEC) < d)
        q++;
    return q;
}

/* Brings the timer up to now: an expiry at or before now fires (unless masked) and
 * re-arms a periodic timer. Every timer register access comes through here first, so a
 * masked timer that expired is seen as expired when it is unmasked. */
static void timer_advance(struct vlapic *l, uint64_t now)
{
    if (l->timer_deadline_ns == CLOCK_NEVER || now < l->timer_deadline_ns)
        return;
    uint32_t reload = REG(l, APIC_TIMER_INITIAL);
    if (timer_mode(l) == VLAPIC_TIMER_PERIODIC && reload) {
        uint64_t t = ticks_since_start(l, now), first = l->timer_start_count;
        uint64_t next = first + ((t - first) / reload + 1) * reload;
        uint64_t at = ns_at_tick(l, next);
        uint64_t min = l->env->timer_min_period_ns;
        /* A period shorter than the floor would have the host wake for every one of
         * them; the guest gets them coalesced, as it would if it fell behind. */
        if (at - now < min && now <= CLOCK_NEVER - 1 - min) {
            at = now + min;
            if (!__atomic_exchange_n(&l->env->logged_timer_rate, true, __ATOMIC_RELAXED))
                kprintf("VM %s: vCPU %u's periodic APIC timer (%u ticks, divide %u) is faster than one "
                        "interrupt per %lu ns: it fires at that rate (logged once)\n",
                        l->env->vm_name, l->index, reload, l->timer_divide, (unsigned long)min);
        }
        l->timer_deadline_ns = at;
    } else {
        timer_disarm(l);
    }
    uint32_t lvt = REG(l, APIC_LVT_TIMER);
    if (!(lvt & APIC_LVT_MASKED))
        local_fixed(l, (uint8_t)lvt, false);
}

void vlapic_timer_poll(struct vlapic *l)
{
    timer_advance(l, now_ns(l));
}

uint64_t vlapic_timer_deadline(const struct vlapic *l)
{
    if (REG(l, APIC_LVT_TIMER) & APIC_LVT_MASKED)
        return CLOCK_NEVER;
    return l->timer_deadline_ns;
}

static uint32_t divide_value(uint32_t reg)
{
    uint32_t d = (reg & 3) | (reg & 8) >> 1;
    return d == 7 ? 1 : 2u << d;
}

static void write_timer_lvt(struct vlapic *l, uint32_t value)
{
    uint64_t now = now_ns(l);
    timer_advance(l, now);
    uint32_t old_mode = timer_mode(l), new_mode = (value & APIC_TIMER_MODE_MASK) >> 17;
    uint32_t count = timer_count(l, now);
    REG(l, APIC_LVT_TIMER) = value;
    if (old_mode == new_mode)
        return;
    /* Entering or leaving TSC-deadline mode disarms the timer (SDM 10.5.4.1); between
     * one-shot and periodic the count carries on under the new mode. */
    if (old_mode == VLAPIC_TIMER_TSC_DEADLINE || new_mode == VLAPIC_TIMER_TSC_DEADLINE) {
        timer_disarm(l);
        REG(l, APIC_TIMER_INITIAL) = 0;
    } else {
        timer_start(l, now, count);
    }
}

static void write_timer_initial(struct vlapic *l, uint32_t value)
{
    if (timer_mode(l) == VLAPIC_TIMER_TSC_DEADLINE)
        return;
    uint64_t now = now_ns(l);
    timer_advance(l, now); /* an expiry the poll has not seen yet still fires */
    REG(l, APIC_TIMER_INITIAL) = value;
    timer_start(l, now, value);
}

static void write_timer_divide(struct vlapic *l, uint32_t value)
{
    uint64_t now = now_ns(l);
    timer_advance(l, now);
    uint32_t count = timer_count(l, now);
    REG(l, APIC_TIMER_DIVIDE) = value;
    l->timer_divide = divide_value(value);
    if (timer_mode(l) != VLAPIC_TIMER_TSC_DEADLINE)
        timer_start(l, now, count);
}

static uint32_t read_timer_current(struct vlapic *l)
{
    uint64_t now = now_ns(l);
    timer_advance(l, now);
    return timer_count(l, now);
}

static void write_tsc_deadline(struct vlapic *l, uint64_t value)
{
    if (!vlapic_hw_enabled(l) || timer_mode(l) != VLAPIC_TIMER_TSC_DEADLINE)
        return; /* SDM 10.5.4.1: ignored outside TSC-deadline mode */
    uint64_t now = now_ns(l);
    timer_advance(l, now); /* an expiry the poll has not seen yet still fires */
    l->tsc_deadline = value;
    l->timer_deadline_ns = value ? tsc_to_ns(l, value) : CLOCK_NEVER;
    timer_advance(l, now); /* a deadline in the past fires at once */
}

/* ---- EOI, injection, events ---- */

static void eoi(struct vlapic *l)
{
    int v = vec_highest(l, APIC_ISR);
    if (v < 0)
        return;
    isr_update(l, (uint8_t)v, false);
    if (vec_test(l, APIC_TMR, (uint8_t)v) && l->env->level_eoi)
        l->env->level_eoi(l->env->bus, (uint8_t)v);
}

int vlapic_pending_intr(const struct vlapic *l)
{
    if (!vlapic_hw_enabled(l))
        return -1;
    int v = vec_highest(l, APIC_IRR);
    if (v < 0 || (v & 0xf0) <= (ppr(l) & 0xf0))
        return -1;
    return v;
}

int vlapic_highest_irr(const struct vlapic *l)
{
    return vec_highest(l, APIC_IRR);
}

void vlapic_accept_intr(struct vlapic *l, uint8_t vector)
{
    uint32_t bit = 1u << (vector & 31);
    __atomic_fetch_and(vec_word(l, APIC_IRR, vector), ~bit, __ATOMIC_ACQUIRE);
    isr_update(l, vector, true);
}

uint32_t vlapic_take_events(struct vlapic *l)
{
    uint32_t ev = __atomic_exchange_n(&l->events, 0, __ATOMIC_ACQUIRE);
    if (ev & VLAPIC_EV_INIT)
        reset_regs(l); /* base_msr (and with it x2APIC mode) survives INIT */
    return ev;
}

bool vlapic_extint_pending(const struct vlapic *l)
{
    if (__atomic_load_n(&l->events, __ATOMIC_RELAXED) & VLAPIC_EV_EXTINT)
        return true;
    if (!l->lint_level[0])
        return false;
    /* With the APIC off, LINT0 is the CPU's INTR pin; software-disabled, the PIC still
     * gets through, as QEMU models it and kernels written for it expect. */
    uint32_t lvt = REG(l, APIC_LVT_LINT0);
    return !vlapic_hw_enabled(l) || !sw_enabled(l) ||
           (!(lvt & APIC_LVT_MASKED) && ((lvt >> 8) & 7) == APIC_DM_EXTINT);
}

bool vlapic_has_event(const struct vlapic *l)
{
    return __atomic_load_n(&l->events, __ATOMIC_RELAXED) || vlapic_pending_intr(l) >= 0 ||
           vlapic_extint_pending(l);
}

void vlapic_set_lint(struct vlapic *l, unsigned pin, bool high)
{
    if (pin > 1)
        return;
    bool was = l->lint_level[pin];
    l->lint_level[pin] = high;
    if (!high || was)
        return;
    if (!vlapic_hw_enabled(l)) {
        /* LINT1 is the CPU's NMI pin then; LINT0 (INTR) is level, see vlapic_extint_pending. */
        if (pin == 1)
            set_event(l, 0, VLAPIC_EV_NMI);
        kick_self(l);
        return;
    }
    uint32_t lvt = REG(l, pin ? APIC_LVT_LINT1 : APIC_LVT_LINT0);
    if (pin == 0 && vlapic_extint_pending(l)) {
        kick_self(l);
        return;
    }
    if (lvt & APIC_LVT_MASKED)
        return;
    switch ((lvt >> 8) & 7) {
    case APIC_DM_FIXED: local_fixed(l, (uint8_t)lvt, lvt & BIT(15)); break;
    case APIC_DM_NMI:
        set_event(l, 0, VLAPIC_EV_NMI);
        kick_self(l);
        break;
    case APIC_DM_INIT:
        set_event(l, VLAPIC_EV_SIPI | 0xff00u, VLAPIC_EV_INIT);
        kick_self(l);
        break;
    default: break; /* ExtINT is handled above; SMI has no SMM to go to */
    }
}

/* ---- IPIs ---- */

static void send_ipi(struct vlapic *l, uint32_t lo, uint32_t dest)
{
    struct apic_msg m = {
        .dest = dest,
        .vector = (uint8_t)lo,
        .mode = (lo >> 8) & 7,
        .logical = lo & BIT(11),
        .shorthand = (lo >> 18) & 3,
        .x2apic = vlapic_x2apic(l),
    };
    /* Since the Pentium 4 the level and trigger bits matter only for the INIT level
     * de-assert, which carries no interrupt; IPIs are edge-triggered. */
    m.deassert = m.mode == APIC_DM_INIT && !(lo & ICR_LEVEL_ASSERT) && (lo & ICR_TRIGGER_LEVEL);
    if ((m.mode == APIC_DM_FIXED || m.mode == APIC_DM_LOWEST) && m.vector < 16) {
        record_error(l, APIC_ESR_SEND_ILLEGAL);
        kick_self(l);
        return;
    }
    if (l->env->send(l->env->bus, &m, l) == APIC_SEND_NOBODY &&
        !__atomic_exchange_n(&l->env->logged_missing, true, __ATOMIC_RELAXED))
        kprintf("VM %s: IPI from vCPU %u to %s destination 0x%x reaches nobody: the VM has %u vCPUs "
                "(logged once)\n",
                l->env->vm_name, l->index, m.logical ? "logical" : "APIC ID", dest, l->env->vcpus);
}

/* ---- register access ---- */

/* Reads the register at offset in the current mode; false for one this mode lacks
 * (or a write-only one in x2APIC mode). */
static bool read_reg(struct vlapic *l, uint32_t off, uint32_t *v)
{
    bool x2 = vlapic_x2apic(l);
    switch (off) {
    case APIC_ID:
    case APIC_VERSION:
    case APIC_TPR:
    case APIC_LDR:
    case APIC_SVR:
    case APIC_ESR:
    case APIC_ICR_LO:
    case APIC_LVT_CMCI:
    case APIC_LVT_TIMER:
    case APIC_LVT_THERMAL:
    case APIC_LVT_PERF:
    case APIC_LVT_LINT0:
    case APIC_LVT_LINT1:
    case APIC_LVT_ERROR:
    case APIC_TIMER_INITIAL:
    case APIC_TIMER_DIVIDE: *v = REG(l, off); return true;
    case APIC_PPR: *v = ppr(l); return true;
    case APIC_TIMER_CURRENT: *v = read_timer_current(l); return true;
    case APIC_APR:
        *v = vlapic_arbitration_priority(l);
        return !x2;
    case APIC_EOI:
    case APIC_RRD: *v = 0; return !x2;
    case APIC_DFR:
    case APIC_ICR_HI: *v = REG(l, off); return !x2;
    default: break;
    }
    if (off >= APIC_ISR && off < APIC_ESR && !(off & 0xf)) {
        *v = __atomic_load_n(&REG(l, off), __ATOMIC_ACQUIRE);
        return true;
    }
    return false;
}

enum write_result {
    W_OK = 0,
    W_BAD,   /* reserved bits set, or a read-only register: #GP in x2APIC, ignored in xAPIC */
    W_NOREG, /* no such register in this mode */
};

/* Keeps the writable bits of value; W_BAD when it sets others (RO bits excepted). */
static enum write_result masked(uint32_t value, uint32_t bits, uint32_t ignored, uint32_t *out)
{
    *out = value & bits;
    return value & ~(bits | ignored) ? W_BAD : W_OK;
}

static void write_svr(struct vlapic *l, uint32_t v)
{
    REG(l, APIC_SVR) = v;
    if (v & APIC_SVR_ENABLE)
        return;
    /* Software disable masks every LVT entry (SDM 10.4.7.2). */
    for (size_t i = 0; i < ARRAY_SIZE(lvt_offsets); i++)
        REG(l, lvt_offsets[i]) |= APIC_LVT_MASKED;
}

static uint32_t lvt_bits(uint32_t off)
{
    switch (off) {
    case APIC_LVT_TIMER: return LVT_TIMER_BITS;
    case APIC_LVT_LINT0:
    case APIC_LVT_LINT1: return LVT_LINT_BITS;
    case APIC_LVT_ERROR: return LVT_ERROR_BITS;
    default: return LVT_OTHER_BITS;
    }
}

/* A 32-bit register write in the current mode (not the x2APIC ICR, see vlapic_wrmsr). */
static enum write_result write_reg(struct vlapic *l, uint32_t off, uint32_t value)
{
    bool x2 = vlapic_x2apic(l);
    uint32_t v;
    enum write_result r;
    switch (off) {
    case APIC_ID:
    case APIC_VERSION:
    case APIC_PPR:
    case APIC_TIMER_CURRENT: return W_BAD;
    case APIC_APR:
    case APIC_RRD: return x2 ? W_NOREG : W_BAD;
    case APIC_TPR:
        r = masked(value, TPR_BITS, 0, &v);
        if (r == W_OK || !x2)
            REG(l, APIC_TPR) = v;
        return r;
    case APIC_EOI:
        if (x2 && value)
            return W_BAD;
        eoi(l);
        return W_OK;
    case APIC_LDR:
        if (x2)
            return W_BAD;
        REG(l, APIC_LDR) = value & LDR_BITS;
        return W_OK;
    case APIC_DFR:
        if (x2)
            return W_NOREG;
        REG(l, APIC_DFR) = (value & DFR_MODEL_BITS) | ~DFR_MODEL_BITS;
        return W_OK;
    case APIC_SVR:
        r = masked(value, SVR_BITS, 0, &v);
        if (r == W_OK || !x2)
            write_svr(l, v);
        return r;
    case APIC_ESR:
        if (x2 && value)
            return W_BAD;
        REG(l, APIC_ESR) = __atomic_exchange_n(&l->esr_pending, 0, __ATOMIC_RELAXED);
        return W_OK;
    case APIC_ICR_LO:
        if (x2)
            return W_NOREG; /* 0x830 is 64 bits wide, handled by vlapic_wrmsr */
        REG(l, APIC_ICR_LO) = value & ICR_LO_BITS;
        send_ipi(l, value & ICR_LO_BITS, REG(l, APIC_ICR_HI) >> 24);
        return W_OK;
    case APIC_ICR_HI:
        if (x2)
            return W_NOREG;
        REG(l, APIC_ICR_HI) = value & 0xff000000u;
        return W_OK;
    case APIC_LVT_TIMER:
        r = masked(value, LVT_TIMER_BITS, LVT_RO_BITS, &v);
        if ((v & APIC_TIMER_MODE_MASK) == APIC_TIMER_MODE_MASK) {
            v &= ~APIC_TIMER_MODE_MASK; /* mode 3 is reserved: one-shot */
            r = W_BAD;
        }
        if (!sw_enabled(l))
            v |= APIC_LVT_MASKED;
        if (r == W_OK || !x2)
            write_timer_lvt(l, v);
        return r;
    case APIC_LVT_THERMAL:
    case APIC_LVT_PERF:
    case APIC_LVT_LINT0:
    case APIC_LVT_LINT1:
    case APIC_LVT_ERROR:
    case APIC_LVT_CMCI:
        r = masked(value, lvt_bits(off), LVT_RO_BITS, &v);
        if (!sw_enabled(l))
            v |= APIC_LVT_MASKED;
        if (r == W_OK || !x2)
            REG(l, off) = v;
        return r;
    case APIC_TIMER_INITIAL: write_timer_initial(l, value); return W_OK;
    case APIC_TIMER_DIVIDE:
        r = masked(value, DIVIDE_BITS, 0, &v);
        if (r == W_OK || !x2)
            write_timer_divide(l, v);
        return r;
    case APIC_SELF_IPI:
        if (!x2)
            return W_NOREG;
        r = masked(value, 0xff, 0, &v);
        if (r == W_OK)
            send_ipi(l, v | APIC_SH_SELF << 18, 0);
        return r;
    default: break;
    }
    if (off >= APIC_ISR && off < APIC_ESR && !(off & 0xf))
        return W_BAD; /* ISR, TMR, IRR are read-only */
    return W_NOREG;
}

/* Only 32-bit accesses at the start of a register reach registers (SDM 10.4.1). */
static bool xapic_access_ok(struct vlapic *l, uint32_t offset, unsigned width)
{
    if (width == 4 && !(offset & 0xf) && offset < XAPIC_WINDOW_SIZE)
        return true;
    record_error(l, APIC_ESR_ILLEGAL_REG);
    kick_self(l);
    return false;
}

uint32_t vlapic_mmio_read(struct vlapic *l, uint32_t offset, unsigned width)
{
    uint32_t v = 0;
    if (xapic_access_ok(l, offset, width) && !read_reg(l, offset, &v)) {
        record_error(l, APIC_ESR_ILLEGAL_REG);
        kick_self(l);
        v = 0;
    }
    return v;
}

void vlapic_mmio_write(struct vlapic *l, uint32_t offset, unsigned width, uint32_t value)
{
    if (xapic_access_ok(l, offset, width) && write_reg(l, offset, value) == W_NOREG) {
        record_error(l, APIC_ESR_ILLEGAL_REG);
        kick_self(l);
    }
}

/* ---- MSRs ---- */

static enum vlapic_status write_apic_base(struct vlapic *l, uint64_t value)
{
    uint64_t reserved = APIC_BASE_RESERVED | ~0ull << l->env->phys_bits;
    uint64_t old_state = l->base_msr & (APIC_BASE_EN | APIC_BASE_EXTD);
    uint64_t new_state = value & (APIC_BASE_EN | APIC_BASE_EXTD);
    /* SDM 10.12.5: EXTD without EN is invalid; x2APIC cannot go back to xAPIC or come
     * straight from disabled. */
    if ((value & reserved) || new_state == APIC_BASE_EXTD ||
        (old_state == (APIC_BASE_EN | APIC_BASE_EXTD) && new_state == APIC_BASE_EN) ||
        (old_state == 0 && new_state == (APIC_BASE_EN | APIC_BASE_EXTD)))
        return VLAPIC_GP;
    uint64_t base = value & ~0xfffull;
    if (base != vlapic_base(l) && !move_window(l, base))
        base = vlapic_base(l);
    l->base_msr = base | new_state | (l->base_msr & APIC_BASE_BSP);
    if (new_state == old_state)
        return VLAPIC_OK;
    if (new_state == 0) {
        /* Disabled, the APIC forgets its state; re-enabled it starts from reset. */
        __atomic_store_n(&l->events, 0, __ATOMIC_RELAXED);
        reset_regs(l);
    } else if (new_state == (APIC_BASE_EN | APIC_BASE_EXTD)) {
        REG(l, APIC_ID) = l->index;
        REG(l, APIC_LDR) = x2apic_ldr(l->index);
        REG(l, APIC_DFR) = 0xffffffffu;
    }
    return VLAPIC_OK;
}

enum vlapic_status vlapic_rdmsr(struct vlapic *l, uint32_t msr, uint64_t *value)
{
    *value = 0;
    if (msr == MSR_IA32_APIC_BASE) {
        *value = l->base_msr;
        return VLAPIC_OK;
    }
    if (msr == MSR_IA32_TSC_DEADLINE) {
        if (timer_mode(l) == VLAPIC_TIMER_TSC_DEADLINE) {
            timer_advance(l, now_ns(l));
            *value = l->tsc_deadline;
        }
        return VLAPIC_OK;
    }
    if (!vlapic_x2apic(l) || msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST)
        return VLAPIC_GP;
    uint32_t off = (msr - MSR_X2APIC_FIRST) << 4, v;
    if (off == APIC_ICR_LO) {
        *value = (uint64_t)REG(l, APIC_ICR_HI) << 32 | REG(l, APIC_ICR_LO);
        return VLAPIC_OK;
    }
    if (!read_reg(l, off, &v))
        return VLAPIC_GP;
    *value = v;
    return VLAPIC_OK;
}

enum vlapic_status vlapic_wrmsr(struct vlapic *l, uint32_t msr, uint64_t value)
{
    if (msr == MSR_IA32_APIC_BASE)
        return write_apic_base(l, value);
    if (msr == MSR_IA32_TSC_DEADLINE) {
        write_tsc_deadline(l, value);
        return VLAPIC_OK;
    }
    if (!vlapic_x2apic(l) || msr < MSR_X2APIC_FIRST || msr > MSR_X2APIC_LAST)
        return VLAPIC_GP;
    uint32_t off = (msr - MSR_X2APIC_FIRST) << 4;
    if (off == APIC_ICR_LO) {
        if (value & X2APIC_ICR_RESERVED)
            return VLAPIC_GP;
        uint32_t lo = (uint32_t)value & ICR_LO_BITS;
        REG(l, APIC_ICR_LO) = lo;
        REG(l, APIC_ICR_HI) = (uint32_t)(value >> 32);
        send_ipi(l, lo, (uint32_t)(value >> 32));
        return VLAPIC_OK;
    }
    if (value >> 32)
        return VLAPIC_GP; /* every other x2APIC register is 32 bits wide */
    return write_reg(l, off, (uint32_t)value) == W_OK ? VLAPIC_OK : VLAPIC_GP;
}

/* ---- CR8 ---- */

uint64_t vlapic_get_cr8(const struct vlapic *l)
{
    return vlapic_tpr(l) >> 4;
}

enum vlapic_status vlapic_set_cr8(struct vlapic *l, uint64_t cr8)
{
    if (cr8 > 0xf)
        return VLAPIC_GP;
    REG(l, APIC_TPR) = (uint32_t)cr8 << 4;
    return VLAPIC_OK;
}
