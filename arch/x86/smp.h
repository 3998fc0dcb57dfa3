/* Starting the application processors (APs) the MADT lists, and stopping them again. */
#ifndef KEEL_ARCH_X86_SMP_H
#define KEEL_ARCH_X86_SMP_H

#include "vmm/lib/types.h"

/* The CPUs the firmware lists (from the ACPI MADT, gathered by the caller), as
 * smp_start_aps needs them: the SMP layer reads no firmware tables itself. */
struct smp_cpu_list {
    bool listed;              /* false: no table lists the CPUs (no MADT) */
    uint32_t enabled;         /* usable entries, the unrecorded ones included */
    uint32_t dropped;         /* usable entries the table parser had no room for */
    uint32_t count;           /* entries in apic_ids */
    const uint32_t *apic_ids; /* the usable entries' APIC IDs, in table order */
};

/* Starts every enabled MADT CPU other than this one, one at a time (INIT, SIPI,
 * SIPI), giving each timeout_ms to reach ap_main and set its `online` flag. A CPU that
 * does not is reported, sent back to INIT, and left out; the others still start.
 * trampoline_page is a free page below 1 MiB (bootinfo.ap_trampoline), or 0 to
 * allocate one. With firmware_gone (boot services ended) every AP first gets an INIT
 * at once: firmware leaves them in loops of its own, which may spin (OVMF's MWAIT loop
 * does under QEMU TCG, slowing a 128-CPU boot to a crawl) until each one's turn comes;
 * each AP then needs only its SIPIs.
 * Needs lapic_init and timer_calibrate first. Sets cpu_count_online and prints
 * "SMP: N of M CPUs online". */
void smp_start_aps(const struct smp_cpu_list *cpus, uint32_t timeout_ms, hpa_t trampoline_page,
                   bool firmware_gone);

/* Sends INIT to every AP smp_start_aps started, leaving them in wait-for-SIPI as
 * firmware had them (before returning to live firmware). */
void smp_park_aps(void);

#endif
