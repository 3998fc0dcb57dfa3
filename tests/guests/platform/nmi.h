/* NMIs through the local APIC: one sent to itself arrives at vector 2; one sent from
 * inside the NMI handler waits until the handler's IRET, then arrives. */
#ifndef PLATFORM_NMI_H
#define PLATFORM_NMI_H

#include <stdint.h>

void nmi_check(uint32_t bsp_id);

#endif
