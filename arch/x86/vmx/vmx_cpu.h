/* Entering and leaving VMX operation on the calling CPU. */
#ifndef KEEL_ARCH_X86_VMX_CPU_H
#define KEEL_ARCH_X86_VMX_CPU_H

#include "arch/x86/percpu.h"

/* CR0/CR4 to the fixed bits, then VMXON with a fresh VMXON region. false (with the
 * reason printed) when this CPU cannot enter VMX operation. */
bool vmx_cpu_on(struct percpu *p);
/* VMCLEAR of whatever is loaded is the caller's job; this only leaves VMX operation. */
void vmx_cpu_off(struct percpu *p);
/* Flushes every guest mapping this CPU may cache (EPT- and VPID-tagged). */
void vmx_flush_all_guest_tlbs(void);

#endif
