/* The local APIC, in xAPIC (MMIO) or x2APIC (MSR) mode behind one API. The mode is
 * chosen once on the boot CPU and every AP follows it. */
#ifndef KEEL_ARCH_X86_LAPIC_H
#define KEEL_ARCH_X86_LAPIC_H

#include "vmm/lib/types.h"

enum lapic_mode {
    LAPIC_MODE_NONE = 0,
    LAPIC_MODE_XAPIC,
    LAPIC_MODE_X2APIC,
};

#define LAPIC_SPURIOUS_VECTOR 0xff

/* Boot CPU. Uses x2APIC when firmware already enabled it, or when the CPU has it and
 * allow_x2apic is set (pass false while firmware is alive: it expects its xAPIC
 * back, and x2APIC cannot be turned off without disabling the APIC). Software-enables
 * the APIC if needed. Call after paging_init. Prints one line; false if no APIC. */
bool lapic_init(bool allow_x2apic);
/* Each AP, before any other lapic_* call on it: switches it to the boot CPU's mode. */
void lapic_init_ap(void);
enum lapic_mode lapic_mode(void);
/* Largest APIC ID an IPI can address in the current mode. */
uint32_t lapic_max_apic_id(void);

/* The ICR's destination by mode (SDM vol. 3A, 10.6.1 and 10.12.9): xAPIC has 8 bits in
 * the top byte of the high register, 0xFF meaning broadcast; x2APIC has all 32 bits of
 * the upper half of one 64-bit MSR, 0xFFFFFFFF meaning broadcast. Pure, for host tests. */
static inline uint32_t lapic_max_apic_id_in(enum lapic_mode m)
{
    return m == LAPIC_MODE_X2APIC ? 0xfffffffeu : m == LAPIC_MODE_XAPIC ? 0xfeu : 0;
}
static inline uint64_t lapic_x2apic_icr(uint32_t dest, uint32_t icr_low)
{
    return ((uint64_t)dest << 32) | icr_low;
}
static inline uint32_t lapic_xapic_icr_high(uint32_t dest)
{
    return (dest & 0xffu) << 24;
}

uint32_t lapic_id(void);
void lapic_eoi(void);

/* IPIs to one CPU by APIC ID. False if the ID cannot be addressed in this mode or
 * (xAPIC) the ICR never reports the IPI delivered. */
bool lapic_send_init(uint32_t apic_id);
bool lapic_send_sipi(uint32_t apic_id, uint8_t vector);
/* INIT to every CPU but this one (destination shorthand): all of them to wait-for-SIPI. */
bool lapic_send_init_others(void);
bool lapic_send_fixed(uint32_t apic_id, uint8_t vector);

/* Timer. Counts are in timer clocks after the divider. */
enum lapic_timer_mode {
    LAPIC_TIMER_ONESHOT = 0,
    LAPIC_TIMER_PERIODIC = 1,
};
/* divisor: 1, 2, 4, ... 128; false for anything else. */
bool lapic_timer_set_divide(uint32_t divisor);
/* Programs the LVT and starts counting down from initial_count (0 stops it). */
void lapic_timer_start(uint8_t vector, enum lapic_timer_mode mode, uint32_t initial_count,
                       bool masked);
void lapic_timer_stop(void);
void lapic_timer_mask(bool masked);
uint32_t lapic_timer_current(void);

/* Everything firmware may have programmed into this CPU's timer, so Keel can borrow
 * it (calibration) and hand it back to live firmware. */
struct lapic_timer_state {
    uint32_t lvt;
    uint32_t divide;
    uint32_t initial;
    uint32_t current;
    uint64_t tsc_deadline; /* only meaningful in TSC-deadline mode */
};
void lapic_timer_save(struct lapic_timer_state *s);
/* A periodic timer restarts its period; a one-shot resumes with the count it had
 * left (one that had already fired stays stopped); a TSC deadline is re-armed. */
void lapic_timer_restore(const struct lapic_timer_state *s);
/* lapic_timer_restore, unless the timer is still programmed as in *s: calibration
 * already handed it back once, and re-arming an untouched one-shot would give
 * firmware its interrupt twice. */
void lapic_timer_restore_if_changed(const struct lapic_timer_state *s);

/* Boot CPU, before returning to live firmware: undoes what lapic_init changed (the
 * software enable, the global enable). A switch to x2APIC cannot be undone, which is
 * why lapic_init must not be allowed to make it then. */
void lapic_restore_firmware_state(void);

#endif
