/* The virtual local APIC of one vCPU: xAPIC (the 4 KiB register page at IA32_APIC_BASE,
 * 0xFEE00000 after reset) and x2APIC (MSRs 0x800-0x8FF), the timer in one-shot,
 * periodic and TSC-deadline modes, IPIs through the VM's APIC bus (apic_bus.h, reached
 * through the shared struct apic_env so this unit needs nothing of the bus), and what
 * the vCPU's entry path needs to inject: the highest deliverable vector, its acceptance,
 * and the NMI/INIT/SIPI/ExtINT flags.
 *
 * The registers live in regs[], laid out as the xAPIC page (register at offset o is
 * regs[o / 4]), which is also the layout of VMX's virtual-APIC page: the page can serve
 * as one (TPR shadow writes VTPR at 0x80; vlapic_tpr and the PPR follow it).
 *
 * Ownership: every function here except the delivery entry points used by apic_bus.c is
 * called by the vCPU's owner: the CPU running it, or, while it runs nowhere, whoever
 * holds it (the scheduler polling the timer of a halted vCPU). vlapic_timer_deadline and
 * vlapic_has_event are plain reads that any CPU may make to decide whom to wake;
 * vlapic_set_lint may come from any CPU, one caller at a time per LAPIC (the PIC's lock).
 *
 * Emulated: ID (read-only), version 0x14 with 7 LVT entries, TPR/PPR/APR, EOI (level
 * EOIs reach the IOAPIC), LDR/DFR (flat and cluster; x2APIC LDR derived from the ID),
 * SVR (software enable, spurious vector, focus bit stored), ISR/TMR/IRR, ESR (write
 * latches, illegal vectors, illegal register address), ICR (fixed, lowest priority, NMI,
 * INIT, SIPI; physical, logical, shorthands), SELF IPI, the LVT entries with masks, LINT0
 * and LINT1 inputs (fixed, NMI, ExtINT), the timer and divide register, CR8.
 * Left out: EOI-broadcast suppression (version bit 24 clear), remote read (RRD reads 0),
 * SMI (dropped, logged once), the thermal, performance and CMCI sources (their LVTs are
 * registers only), focus-processor checks, the LINT remote-IRR bit. */
#ifndef KEEL_VMM_DEV_VLAPIC_H
#define KEEL_VMM_DEV_VLAPIC_H

#include "vmm/lib/types.h"
#include "vmm/dev/apic_defs.h"
#include "arch/x86/msr.h" /* MSR_IA32_APIC_BASE, MSR_IA32_TSC_DEADLINE */

/* xAPIC register offsets; the x2APIC MSR of each is 0x800 + offset / 16. */
#define APIC_ID 0x020
#define APIC_VERSION 0x030
#define APIC_TPR 0x080
#define APIC_APR 0x090
#define APIC_PPR 0x0a0
#define APIC_EOI 0x0b0
#define APIC_RRD 0x0c0
#define APIC_LDR 0x0d0
#define APIC_DFR 0x0e0
#define APIC_SVR 0x0f0
#define APIC_ISR 0x100 /* 8 registers, 0x10 apart, vectors 32*i .. 32*i+31 */
#define APIC_TMR 0x180
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_LVT_CMCI 0x2f0
#define APIC_ICR_LO 0x300
#define APIC_ICR_HI 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_THERMAL 0x330
#define APIC_LVT_PERF 0x340
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_LVT_ERROR 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3e0
#define APIC_SELF_IPI 0x3f0 /* x2APIC only */

#define MSR_X2APIC_FIRST 0x800
#define MSR_X2APIC_LAST 0x8ff

#define APIC_BASE_BSP BIT(8)
#define APIC_BASE_EXTD BIT(10) /* x2APIC mode */
#define APIC_BASE_EN BIT(11)

#define APIC_VERSION_VALUE 0x00060014u /* integrated APIC, 7 LVT entries (max index 6) */

#define APIC_SVR_ENABLE BIT(8)
#define APIC_LVT_MASKED BIT(16)
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_TIMER_TSC_DEADLINE (2u << 17)
#define APIC_TIMER_MODE_MASK (3u << 17)

/* ESR bits (SDM vol. 3 10.5.3). */
#define APIC_ESR_SEND_ILLEGAL BIT(5)
#define APIC_ESR_RECV_ILLEGAL BIT(6)
#define APIC_ESR_ILLEGAL_REG BIT(7)

/* vlapic_take_events: what a vCPU must act on besides vectors in the IRR. */
#define VLAPIC_EV_NMI BIT(0)
#define VLAPIC_EV_INIT BIT(1)   /* the LAPIC has done its INIT reset; the vCPU waits for SIPI */
#define VLAPIC_EV_SIPI BIT(2)   /* start vector in bits 15:8 of the result */
#define VLAPIC_EV_EXTINT BIT(3) /* an ExtINT message: the vector comes from the PIC's INTA */
#define VLAPIC_EV_SIPI_VECTOR(ev) ((uint8_t)((ev) >> 8))

/* Results of MSR and CR8 accesses: the caller injects #GP(0) on VLAPIC_GP. */
enum vlapic_status {
    VLAPIC_OK = 0,
    VLAPIC_GP = 1,
};

enum vlapic_timer_mode {
    VLAPIC_TIMER_ONESHOT = 0,
    VLAPIC_TIMER_PERIODIC = 1,
    VLAPIC_TIMER_TSC_DEADLINE = 2,
};

struct vlapic {
    uint32_t regs[1024]; /* the register page (see above); first, so the page is aligned */
    struct apic_env *env; /* the VM's: clock, rates, the way onto its APIC bus */
    uint32_t index;      /* vCPU index in the VM, which is also the APIC ID */
    uint64_t base_msr;   /* IA32_APIC_BASE */

    /* Set by any CPU (apic_bus.c), taken by the owner. */
    uint32_t events;      /* VLAPIC_EV_*, SIPI vector in bits 15:8 */
    uint32_t esr_pending; /* errors since the last ESR write */

    /* Timer (owner only). In one-shot and periodic mode the count was start_count at
     * start_ns and falls one per divide/timer_hz; periodic reloads the initial count. */
    uint64_t timer_start_ns;
    uint64_t timer_deadline_ns; /* next expiry, CLOCK_NEVER when disarmed */
    uint64_t tsc_deadline;      /* IA32_TSC_DEADLINE as armed; 0 when disarmed */
    uint32_t timer_start_count;
    uint32_t timer_divide;      /* 1..128 */

    bool lint_level[2];
} ALIGNED(4096);

STATIC_ASSERT(offsetof(struct vlapic, regs) == 0, "the register page must start the struct");

/* Power-up state: xAPIC mode, base 0xFEE00000, BSP flag for index 0. Called by
 * apic_bus_add_vcpu, which is what an integrator calls. */
void vlapic_init(struct vlapic *l, struct apic_env *env, uint32_t index);

/* RESET (not INIT): back to the power-up state, xAPIC mode at the default base. */
void vlapic_reset(struct vlapic *l);

/* xAPIC register access at offset (0..0xFFF) of the page: 32-bit, 16-byte aligned.
 * Anything else reads 0, drops the write and records an illegal-register-address error,
 * as do the reserved offsets. Also what an APIC-access VM exit calls. The caller checks
 * vlapic_xapic_at first; the bus window (apic_bus_attach_mmio) does. */
uint32_t vlapic_mmio_read(struct vlapic *l, uint32_t offset, unsigned width);
void vlapic_mmio_write(struct vlapic *l, uint32_t offset, unsigned width, uint32_t value);

/* The MSRs the LAPIC owns: IA32_APIC_BASE, IA32_TSC_DEADLINE, 0x800-0x8FF. */
static inline bool vlapic_msr_ours(uint32_t msr)
{
    return msr == MSR_IA32_APIC_BASE || msr == MSR_IA32_TSC_DEADLINE ||
           (msr >= MSR_X2APIC_FIRST && msr <= MSR_X2APIC_LAST);
}

/* RDMSR/WRMSR of an MSR vlapic_msr_ours accepts. VLAPIC_GP for x2APIC MSRs outside
 * x2APIC mode, reserved ones, reads of write-only and writes of read-only registers,
 * reserved bits, and illegal IA32_APIC_BASE transitions. A base moved onto RAM or onto
 * another device is not taken (the old one stays, logged once per VM). */
enum vlapic_status vlapic_rdmsr(struct vlapic *l, uint32_t msr, uint64_t *value);
enum vlapic_status vlapic_wrmsr(struct vlapic *l, uint32_t msr, uint64_t value);

/* CR8 is TPR[7:4]. A write with bits 63:4 set is VLAPIC_GP. */
uint64_t vlapic_get_cr8(const struct vlapic *l);
enum vlapic_status vlapic_set_cr8(struct vlapic *l, uint64_t cr8);

/* Injection, at VM entry: the vector to inject now (IRR's highest, in a priority class
 * above the PPR's), or -1. The caller injects it once the guest can take it (RFLAGS.IF,
 * interrupt shadow) and then calls vlapic_accept_intr, which moves it from IRR to ISR. */
int vlapic_pending_intr(const struct vlapic *l);
void vlapic_accept_intr(struct vlapic *l, uint8_t vector);

/* The highest vector in the IRR, deliverable or not (-1: none): what a VMX TPR threshold
 * is set from, so a guest lowering its TPR (CR8 under TPR shadow) below it exits. */
int vlapic_highest_irr(const struct vlapic *l);

/* Exchanges the event flags for 0 (VLAPIC_EV_*). On INIT the LAPIC has been reset
 * (ID and base kept, SDM 10.4.7.3) before this returns; INIT clears an earlier SIPI. */
uint32_t vlapic_take_events(struct vlapic *l);

/* True when an ExtINT is asserted: LINT0 high with its LVT unmasked in ExtINT mode (the
 * PIC's virtual wire, level-sensitive; also with the APIC hardware- or software-disabled,
 * when LINT0 is the CPU's INTR pin), or an ExtINT message not yet taken. The vCPU then
 * gets the vector from the PIC's interrupt acknowledge. */
bool vlapic_extint_pending(const struct vlapic *l);

/* Whether something would wake a halted vCPU: an event flag or a deliverable vector. */
bool vlapic_has_event(const struct vlapic *l);

/* The timer's next expiry in clock ns (CLOCK_NEVER when disarmed or masked), and the
 * poll to call at or after it: fires the LVT timer vector, reloads a periodic timer. */
uint64_t vlapic_timer_deadline(const struct vlapic *l);
void vlapic_timer_poll(struct vlapic *l);

/* LINT0/LINT1 input levels (pin 0 or 1): a rising edge delivers per the LVT entry. */
void vlapic_set_lint(struct vlapic *l, unsigned pin, bool high);

static inline uint8_t vlapic_tpr(const struct vlapic *l)
{
    return (uint8_t)l->regs[APIC_TPR / 4];
}

static inline bool vlapic_hw_enabled(const struct vlapic *l)
{
    return l->base_msr & APIC_BASE_EN;
}

static inline bool vlapic_x2apic(const struct vlapic *l)
{
    return (l->base_msr & (APIC_BASE_EN | APIC_BASE_EXTD)) == (APIC_BASE_EN | APIC_BASE_EXTD);
}

static inline uint64_t vlapic_base(const struct vlapic *l)
{
    return l->base_msr & ~0xfffull;
}

/* True when this vCPU's xAPIC page is at gpa (enabled, not x2APIC). */
static inline bool vlapic_xapic_at(const struct vlapic *l, uint64_t gpa)
{
    return (l->base_msr & (APIC_BASE_EN | APIC_BASE_EXTD)) == APIC_BASE_EN && (gpa & ~0xfffull) == vlapic_base(l);
}

/* ---- for the APIC bus (apic_bus.c) ---- */

/* Whether the LAPIC is a destination of m (physical ID, broadcast, logical match). */
bool vlapic_matches(const struct vlapic *l, const struct apic_msg *m);
/* Arbitration priority for lowest-priority delivery (SDM's APR). */
uint8_t vlapic_arbitration_priority(const struct vlapic *l);
/* Takes m (already resolved to this LAPIC): IRR/TMR for fixed and lowest priority, the
 * event flags for the others. False when this LAPIC cannot take it. Any CPU. */
bool vlapic_deliver(struct vlapic *l, const struct apic_msg *m);

#endif
