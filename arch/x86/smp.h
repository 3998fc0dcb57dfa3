/* Starting the application processors (APs) the MADT lists, and stopping them again. */
#ifndef KEEL_ARCH_X86_SMP_H
#define KEEL_ARCH_X86_SMP_H

#include "vmm/lib/types.h"

struct acpi_info;

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
void smp_start_aps(const struct acpi_info *acpi, uint32_t timeout_ms, hpa_t trampoline_page,
                   bool firmware_gone);

/* Sends INIT to every AP smp_start_aps started, leaving them in wait-for-SIPI as
 * firmware had them (before returning to live firmware). */
void smp_park_aps(void);

#endif
