/* A VM's APIC bus: the wire between its local APICs (one per vCPU, vmm/dev/vlapic.h) and
 * its IOAPIC. It holds the LAPICs by vCPU index, turns a message (an IPI from an ICR, a
 * redirection from the IOAPIC, a LAPIC's own LVT) into the set of LAPICs it reaches, and
 * tells the integrator which vCPU gained something to do (the kick callback), so it can
 * send the host IPI or wake a halted vCPU. Nothing on this bus ever leaves the VM: a
 * destination is resolved against this VM's LAPICs only, and one it does not have
 * reaches nobody (counted, logged once per VM).
 *
 * APIC IDs are vCPU indices (xAPIC and x2APIC alike), so a physical destination is an
 * array index and IDs never collide. The LAPIC ID register is read-only (the SDM calls
 * writing it model specific and tells software not to).
 *
 * Lowest-priority delivery goes to the destination LAPIC with the lowest arbitration
 * priority (SDM's APR: TPR, ISR and IRR classes), ties to the lowest vCPU index; no focus
 * processor. A documented simplification of the chipset's arbitration.
 *
 * Concurrency: apic_bus_send may run on any CPU at once (vCPUs sending IPIs, the IOAPIC,
 * a timer). It only sets IRR/TMR bits and event flags of the targets with atomic
 * operations, and reads their ID/LDR/DFR/priority without locks (a racing change of
 * those is seen before or after, as on a real bus). Everything else of a LAPIC belongs
 * to its vCPU: see vlapic.h. */
#ifndef KEEL_VMM_DEV_APIC_BUS_H
#define KEEL_VMM_DEV_APIC_BUS_H

#include "vmm/lib/types.h"
#include "vmm/dev/dev_ram.h"
#include "vmm/lib/config.h" /* MAX_VCPUS */
#include "vmm/dev/apic_defs.h"
#include "vmm/dev/bus.h"
#include "vmm/dev/vlapic.h"

struct apic_bus_config {
    const char *vm_name;          /* for messages; must outlive the bus */
    const struct dev_clock *clock; /* VM time for the LAPIC timers */
    uint64_t tsc_hz;              /* the guest TSC's rate */
    uint64_t tsc_at_zero;         /* guest TSC when the clock reads 0 (one timeline for all vCPUs) */
    uint64_t timer_hz;            /* APIC timer input before the divider (the "bus clock") */
    uint64_t timer_min_period_ns; /* a periodic timer fires at most this often (0: 100 us) */
    uint64_t ram_size;            /* guest RAM is [0, ram_size) and ram_high_size bytes at 4 GiB */
    uint64_t ram_high_size;       /* (vmm/dev/dev_ram.h): the xAPIC page may not move onto either */
    uint32_t phys_bits;           /* the guest's MAXPHYADDR: IA32_APIC_BASE bits above are reserved */
    /* A vCPU gained a pending interrupt, NMI, INIT, SIPI or ExtINT. Called from whatever
     * CPU delivered it, the target's own included; must not call back into the bus. */
    void (*kick)(void *ctx, uint32_t vcpu);
    void *kick_ctx;
};

struct apic_bus {
    struct apic_env env;             /* what its LAPICs share; env.vcpus: highest index added + 1 */
    struct dev_ram ram;              /* only its sizes: where RAM is */
    struct vlapic *lapic[MAX_VCPUS]; /* by vCPU index = APIC ID */

    /* EOI of a level-triggered vector: the IOAPIC (vioapic_init sets it). */
    void (*eoi)(void *ctx, uint8_t vector);
    void *eoi_ctx;

    /* The VM's xAPIC window on its device bus (apic_bus_attach_mmio). */
    struct vm_bus *vm_bus;
    int window_id;          /* 0: not attached */
    uint64_t window_base;
    uint32_t (*current)(void *ctx); /* index of the vCPU whose exit is being handled */
    void *current_ctx;

    uint64_t dropped;       /* messages that named no LAPIC of the VM */
    bool logged_base_ram, logged_base_taken, logged_base_split, logged_window, logged_smi;
};

/* Checks the configuration (clock, non-zero rates, phys_bits 32..52) and empties the bus.
 * False, with the reason logged, when it is unusable. */
bool apic_bus_init(struct apic_bus *b, const struct apic_bus_config *cfg);

/* Puts vCPU index's LAPIC on the bus in its power-up state (vlapic_init). index <
 * MAX_VCPUS and unused; l must be 4 KiB aligned. False (logged) otherwise. */
bool apic_bus_add_vcpu(struct apic_bus *b, struct vlapic *l, uint32_t index);

/* Puts the xAPIC window on the VM's device bus at 0xFEE00000. Accesses there go to the
 * LAPIC of the vCPU current() names; one whose APIC is disabled, in x2APIC mode or
 * based elsewhere reads all-ones there and its writes are dropped (logged once).
 * Returns the range id or a negative bus error. */
int apic_bus_attach_mmio(struct apic_bus *b, struct vm_bus *vm_bus, uint32_t (*current)(void *ctx), void *ctx);

/* The IOAPIC's EOI entry point (one listener; the IOAPIC registers itself). */
void apic_bus_set_eoi_listener(struct apic_bus *b, void (*eoi)(void *ctx, uint8_t vector), void *ctx);

/* Delivers m from src (NULL: the IOAPIC or another non-LAPIC source; shorthands then
 * mean nothing). Returns how many LAPICs accepted it (0 when all it names cannot take
 * it: hardware-disabled, or software-disabled for fixed/lowest), or APIC_SEND_NOBODY
 * when it names no LAPIC of this VM: counted in dropped; the caller logs it once with
 * its own context (the sending vCPU, the IOAPIC pin). */
int apic_bus_send(struct apic_bus *b, const struct apic_msg *m, const struct vlapic *src);

#endif
