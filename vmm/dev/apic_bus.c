/* Destination resolution and delivery between a VM's LAPICs (see apic_bus.h). */
#include "vmm/dev/apic_bus.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

/* True the first time only, from any CPU. */
static bool first_time(bool *flag)
{
    return !__atomic_exchange_n(flag, true, __ATOMIC_RELAXED);
}

static int env_send(void *bus, const struct apic_msg *m, const struct vlapic *src)
{
    return apic_bus_send(bus, m, src);
}

static bool env_move_window(void *bus, const struct vlapic *l, uint64_t new_base);

static void env_level_eoi(void *bus, uint8_t vector)
{
    struct apic_bus *b = bus;
    if (b->eoi)
        b->eoi(b->eoi_ctx, vector);
}

bool apic_bus_init(struct apic_bus *b, const struct apic_bus_config *cfg)
{
    memset(b, 0, sizeof(*b));
    const char *name = cfg->vm_name ? cfg->vm_name : "?";
    const char *why = NULL;
    if (!cfg->clock || !cfg->clock->now_ns)
        why = "no clock";
    else if (cfg->tsc_hz == 0 || cfg->timer_hz == 0)
        why = "a TSC or APIC timer rate of 0";
    else if (cfg->phys_bits < 32 || cfg->phys_bits > 52)
        why = "a physical address width outside 32..52 bits";
    if (why) {
        kprintf("VM %s: APIC bus not set up: %s\n", name, why);
        return false;
    }
    b->env = (struct apic_env){
        .vm_name = name,
        .clock = cfg->clock,
        .tsc_hz = cfg->tsc_hz,
        .tsc_at_zero = cfg->tsc_at_zero,
        .timer_hz = cfg->timer_hz,
        .timer_min_period_ns = cfg->timer_min_period_ns ? cfg->timer_min_period_ns
                                                        : APIC_TIMER_MIN_PERIOD_NS_DEFAULT,
        .phys_bits = cfg->phys_bits,
        .kick = cfg->kick,
        .kick_ctx = cfg->kick_ctx,
        .send = env_send,
        .move_window = env_move_window,
        .level_eoi = env_level_eoi,
        .bus = b,
    };
    b->ram = (struct dev_ram){.size = cfg->ram_size, .high_size = cfg->ram_high_size};
    b->window_base = XAPIC_DEFAULT_BASE;
    return true;
}

bool apic_bus_add_vcpu(struct apic_bus *b, struct vlapic *l, uint32_t index)
{
    if (index >= MAX_VCPUS || b->lapic[index] || ((uintptr_t)l & 0xfff)) {
        kprintf("VM %s: LAPIC %u not added: %s\n", b->env.vm_name, index,
                index >= MAX_VCPUS ? "index beyond MAX_VCPUS"
                : b->lapic[index]  ? "index already taken"
                                   : "its register page is not 4 KiB aligned");
        return false;
    }
    vlapic_init(l, &b->env, index);
    b->lapic[index] = l;
    if (index >= b->env.vcpus)
        b->env.vcpus = index + 1;
    return true;
}

static void kick(struct apic_bus *b, uint32_t vcpu)
{
    if (b->env.kick)
        b->env.kick(b->env.kick_ctx, vcpu);
}

static bool is_broadcast(const struct apic_msg *m)
{
    return m->dest == (m->x2apic ? 0xffffffffu : 0xffu);
}

/* Whether the message, shorthand aside, names any vCPU index this VM has. */
static bool names_existing(const struct apic_bus *b, const struct apic_msg *m, const struct vlapic *src)
{
    if (m->shorthand != APIC_SH_NONE && src)
        return m->shorthand != APIC_SH_OTHERS || b->env.vcpus > 1;
    if (is_broadcast(m))
        return true;
    if (!m->logical)
        return m->dest < b->env.vcpus && b->lapic[m->dest];
    for (uint32_t i = 0; i < b->env.vcpus; i++)
        if (b->lapic[i] && vlapic_matches(b->lapic[i], m))
            return true;
    return false;
}

static bool in_set(const struct apic_msg *m, const struct vlapic *src, const struct vlapic *t)
{
    if (m->shorthand != APIC_SH_NONE && src) {
        switch (m->shorthand) {
        case APIC_SH_SELF: return t == src;
        case APIC_SH_ALL: return true;
        default: return t != src;
        }
    }
    return vlapic_matches(t, m);
}

int apic_bus_send(struct apic_bus *b, const struct apic_msg *m, const struct vlapic *src)
{
    if (!names_existing(b, m, src)) {
        __atomic_fetch_add(&b->dropped, 1, __ATOMIC_RELAXED);
        return APIC_SEND_NOBODY;
    }
    if (m->mode == APIC_DM_SMI) {
        if (first_time(&b->logged_smi))
            kprintf("VM %s: SMI message dropped: no SMM in a VM (logged once)\n", b->env.vm_name);
        return 0;
    }
    /* A physical message to one ID: the ID is the index. */
    if (!m->logical && !is_broadcast(m) && (m->shorthand == APIC_SH_NONE || !src)) {
        struct vlapic *t = b->lapic[m->dest];
        if (!vlapic_deliver(t, m))
            return 0;
        kick(b, t->index);
        return 1;
    }
    if (m->mode == APIC_DM_LOWEST) {
        struct vlapic *best = NULL;
        uint8_t best_apr = 0;
        for (uint32_t i = 0; i < b->env.vcpus; i++) {
            struct vlapic *t = b->lapic[i];
            if (!t || !in_set(m, src, t) || !vlapic_hw_enabled(t) || !(t->regs[APIC_SVR / 4] & APIC_SVR_ENABLE))
                continue;
            uint8_t apr = vlapic_arbitration_priority(t);
            if (!best || apr < best_apr) {
                best = t;
                best_apr = apr;
            }
        }
        if (!best || !vlapic_deliver(best, m))
            return 0;
        kick(b, best->index);
        return 1;
    }
    int n = 0;
    for (uint32_t i = 0; i < b->env.vcpus; i++) {
        struct vlapic *t = b->lapic[i];
        if (t && in_set(m, src, t) && vlapic_deliver(t, m)) {
            kick(b, t->index);
            n++;
        }
    }
    return n;
}

void apic_bus_set_eoi_listener(struct apic_bus *b, void (*eoi)(void *ctx, uint8_t vector), void *ctx)
{
    b->eoi_ctx = ctx;
    b->eoi = eoi;
}

/* ---- the xAPIC window on the device bus ---- */

/* The LAPIC the current vCPU sees in the window, or NULL (logged once). */
static struct vlapic *window_lapic(struct apic_bus *b)
{
    uint32_t i = b->current ? b->current(b->current_ctx) : 0;
    struct vlapic *l = i < b->env.vcpus ? b->lapic[i] : NULL;
    if (l && vlapic_xapic_at(l, b->window_base))
        return l;
    if (first_time(&b->logged_window))
        kprintf("VM %s: vCPU %u touched the xAPIC page at 0x%lx while its APIC is %s: reads all-ones, "
                "writes dropped (logged once)\n",
                b->env.vm_name, i, (unsigned long)b->window_base,
                !l                      ? "missing"
                : !vlapic_hw_enabled(l) ? "disabled"
                : vlapic_x2apic(l)      ? "in x2APIC mode"
                                        : "based elsewhere");
    return NULL;
}

static struct bus_result window_read(void *dev, uint64_t offset, unsigned width, uint64_t *value)
{
    struct vlapic *l = window_lapic(dev);
    *value = l ? vlapic_mmio_read(l, (uint32_t)offset, width) : 0xffffffffu;
    return BUS_OK;
}

static struct bus_result window_write(void *dev, uint64_t offset, unsigned width, uint64_t value)
{
    struct vlapic *l = window_lapic(dev);
    if (l)
        vlapic_mmio_write(l, (uint32_t)offset, width, (uint32_t)value);
    return BUS_OK;
}

static const struct bus_ops window_ops = {.read = window_read, .write = window_write};

int apic_bus_attach_mmio(struct apic_bus *b, struct vm_bus *vm_bus, uint32_t (*current)(void *ctx), void *ctx)
{
    b->current = current;
    b->current_ctx = ctx;
    int id = vm_bus_add(vm_bus, &(struct bus_region){.space = BUS_MMIO, .base = b->window_base,
                                                     .len = XAPIC_WINDOW_SIZE, .widths = BUS_WIDTH_4,
                                                     .ops = &window_ops, .dev = b, .owner = "local APIC"});
    if (id > 0) {
        b->vm_bus = vm_bus;
        b->window_id = id;
    }
    return id;
}

/* A LAPIC whose guest moved its xAPIC base: refuses a base on RAM or one the device bus
 * cannot place (overlapping another device), logging once per VM; otherwise the VM's
 * window moves there. */
static bool env_move_window(void *bus, const struct vlapic *l, uint64_t new_base)
{
    struct apic_bus *b = bus;
    if (new_base == b->window_base)
        return true;
    /* Only the sizes are kept: a range test, no host address. */
    if (new_base < b->ram.size ||
        (new_base >= GUEST_RAM_HIGH_BASE && new_base - GUEST_RAM_HIGH_BASE < b->ram.high_size)) {
        if (first_time(&b->logged_base_ram))
            kprintf("VM %s: vCPU %u moved its xAPIC base onto RAM at 0x%lx: refused, it stays at 0x%lx "
                    "(logged once)\n",
                    b->env.vm_name, l->index, (unsigned long)new_base, (unsigned long)vlapic_base(l));
        return false;
    }
    if (b->window_id > 0 && vm_bus_move(b->vm_bus, b->window_id, new_base) < 0) {
        if (first_time(&b->logged_base_taken))
            kprintf("VM %s: vCPU %u moved its xAPIC base to 0x%lx, where the device bus cannot put it: "
                    "refused, it stays at 0x%lx (logged once)\n",
                    b->env.vm_name, l->index, (unsigned long)new_base, (unsigned long)vlapic_base(l));
        return false;
    }
    /* One window per VM: vCPUs still at the old base lose theirs. */
    for (uint32_t i = 0; i < b->env.vcpus; i++) {
        const struct vlapic *o = b->lapic[i];
        if (o && o != l && vlapic_xapic_at(o, b->window_base) && first_time(&b->logged_base_split)) {
            kprintf("VM %s: vCPU %u moved the xAPIC page to 0x%lx while vCPU %u uses 0x%lx: a VM has one "
                    "xAPIC page, it follows the last move (logged once)\n",
                    b->env.vm_name, l->index, (unsigned long)new_base, i, (unsigned long)b->window_base);
            break;
        }
    }
    b->window_base = new_base;
    return true;
}
