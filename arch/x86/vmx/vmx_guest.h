/* The VMX backend's guest-register operations (arch/x86/vcpu_backend.h), on the vCPU
 * whose VMCS is current on the calling CPU. */
#ifndef KEEL_ARCH_X86_VMX_GUEST_H
#define KEEL_ARCH_X86_VMX_GUEST_H

#include "arch/x86/vcpu_backend.h"

/* CR0/CR4 bits VMX operation pins (IA32_VMX_CR0/CR4_FIXED0/1), with PE and PG free
 * under unrestricted guest: set once by the backend's init. */
struct vmx_fixed_bits {
    uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};
extern struct vmx_fixed_bits vmx_fixed;

uint64_t vmx_get_reg(struct vcpu *v, enum vcpu_reg r);
void vmx_set_reg(struct vcpu *v, enum vcpu_reg r, uint64_t value);
void vmx_inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error);
/* Guest-visible CR0/CR4 turned into the values the CPU runs with (VMX fixed bits). */
uint64_t vmx_real_cr0(uint64_t guest_view);
uint64_t vmx_real_cr4(uint64_t guest_view);
/* CR4 bits a guest may set: what the CPU allows in VMX operation, less VMX and SMX,
 * which CPUID hides. */
uint64_t vmx_cr4_guest_allowed(void);

bool vmx_can_inject(struct vcpu *v);
void vmx_inject_interrupt(struct vcpu *v, uint8_t vector);
bool vmx_inject_nmi(struct vcpu *v);
void vmx_interrupt_window(struct vcpu *v, bool on);
/* NMI-window exiting can be turned on (the CPU allows it, with virtual NMIs): set once
 * by the backend's init. Without it vmx_nmi_window answers false. */
extern bool vmx_nmi_window_ok;
/* Unrestricted guest is offered: an INIT-ed vCPU of a 64-bit VM (which runs without
 * it) turns it on for its real-mode start. Set once by the backend's init. */
extern bool vmx_unrestricted_ok;
bool vmx_nmi_window(struct vcpu *v, bool on);
void vmx_init_vcpu(struct vcpu *v);
void vmx_start_at_sipi(struct vcpu *v, uint8_t vector);

#endif
