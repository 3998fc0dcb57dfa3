/* What a VM's local APICs (vlapic.h), its APIC bus (apic_bus.h) and its IOAPIC
 * (vioapic.h) share: the message format on the bus, and the environment every LAPIC of
 * the VM lives in (its clock and rates, the kick callback, and its way onto the bus).
 * The bus fills the environment in, so a LAPIC needs nothing of the bus's own header. */
#ifndef KEEL_VMM_DEV_APIC_DEFS_H
#define KEEL_VMM_DEV_APIC_DEFS_H

#include "vmm/lib/types.h"
#include "vmm/dev/clock.h"

struct vlapic;

#define XAPIC_DEFAULT_BASE 0xfee00000ull
#define XAPIC_WINDOW_SIZE 0x1000ull

/* Delivery modes (ICR, LVT and redirection entries, bits 10:8). */
enum apic_delivery {
    APIC_DM_FIXED = 0,
    APIC_DM_LOWEST = 1,
    APIC_DM_SMI = 2,
    APIC_DM_NMI = 4,
    APIC_DM_INIT = 5,
    APIC_DM_SIPI = 6,
    APIC_DM_EXTINT = 7,
};

/* ICR destination shorthand (bits 19:18). */
enum apic_shorthand {
    APIC_SH_NONE = 0,
    APIC_SH_SELF = 1,
    APIC_SH_ALL = 2,    /* all including self */
    APIC_SH_OTHERS = 3, /* all excluding self */
};

/* One message on the bus. */
struct apic_msg {
    uint32_t dest;     /* APIC ID (physical) or message destination address (logical) */
    uint8_t vector;
    uint8_t mode;      /* enum apic_delivery */
    uint8_t shorthand; /* enum apic_shorthand; only a LAPIC's ICR uses one */
    bool logical;
    bool level;        /* level-triggered: the target sets its TMR bit, its EOI reaches the IOAPIC */
    bool deassert;     /* an INIT level de-assert, which delivers nothing */
    bool x2apic;       /* 32-bit destination, broadcast 0xFFFFFFFF; else 8-bit, broadcast 0xFF */
};

/* apic_bus_send's result when the message names no LAPIC of the VM. */
#define APIC_SEND_NOBODY (-1)

#define APIC_TIMER_MIN_PERIOD_NS_DEFAULT 100000ull

/* The LAPIC timer's input ("bus clock", apic_env.timer_hz) on Keel's virtual PC: the
 * core crystal, which CPUID leaf 0x15 reports at the TSC's rate. Linux takes its LAPIC
 * timer period from that crystal without calibrating, so the two must agree. */
#define VM_APIC_TIMER_HZ(tsc_hz) (tsc_hz)

/* What the VM's LAPICs share; part of the VM's APIC bus, which sets the operations. */
struct apic_env {
    const char *vm_name;           /* for messages; must outlive the bus */
    const struct dev_clock *clock; /* VM time for the LAPIC timers */
    uint64_t tsc_hz;               /* the guest TSC's rate */
    uint64_t tsc_at_zero;          /* guest TSC when the clock reads 0 (one timeline for all vCPUs) */
    uint64_t timer_hz;             /* APIC timer input before the divider (the "bus clock") */
    uint64_t timer_min_period_ns;  /* a periodic timer fires at most this often */
    uint32_t phys_bits;            /* the guest's MAXPHYADDR: IA32_APIC_BASE bits above are reserved */
    uint32_t vcpus;                /* highest vCPU index on the bus + 1 */
    void (*kick)(void *ctx, uint32_t vcpu);
    void *kick_ctx;

    /* The bus's side (apic_bus.c); ctx is the bus. */
    int (*send)(void *bus, const struct apic_msg *m, const struct vlapic *src);
    bool (*move_window)(void *bus, const struct vlapic *l, uint64_t new_base);
    void (*level_eoi)(void *bus, uint8_t vector);
    void *bus;

    bool logged_missing, logged_timer_rate; /* once per VM */
};

#endif
