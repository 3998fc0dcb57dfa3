/* vCPU life cycle on a CPU and the helpers exit handlers use. */
#ifndef KEEL_VMM_VCPU_H
#define KEEL_VMM_VCPU_H

#include "vmm/vm.h"
#include "vmm/loaders/guest_image.h"
#include "arch/x86/vmx/vmcs.h"

enum exit_action {
    EXIT_RESUME = 0, /* re-enter the guest */
    EXIT_YIELD,      /* let the next vCPU on this CPU run */
    EXIT_STOPPED,    /* the VM was stopped; never enter it again */
};

struct vmexit {
    uint32_t reason; /* basic exit reason (bits 15:0) */
    uint32_t raw_reason;
    uint64_t qualification; /* read only for reasons whose table entry asks for it */
};

/* Global VMX set-up shared by all VMs: controls and the MSR/I/O bitmaps. Returns false
 * (and says why) when guests cannot run on this machine. */
bool vmm_global_init(void);
bool vmm_unrestricted_guest(void);
/* XCR0 components this CPU supports (CPUID.(EAX=0DH,ECX=0):EDX:EAX), 0 without XSAVE. */
uint64_t vmm_xcr0_supported(void);

/* Allocates and fills the VMCS for a vCPU whose VM has been loaded. */
bool vcpu_create(struct vm *vm, struct vcpu *v, const struct guest_boot *boot);
/* Frees what vcpu_create allocated (for a VM that never ran). */
void vcpu_release(struct vcpu *v);
/* Runs the vCPU on the calling CPU until its slice ends, it yields, or its VM stops. */
enum exit_action vcpu_run_slice(struct vcpu *v, uint64_t slice_tsc);
/* Releases the VMCS from the calling CPU (VMCLEAR): needed before another CPU may load it. */
void vcpu_unload(struct vcpu *v);

/* Helpers for exit handlers. */
/* Each acts on `v`, which must be the vCPU loaded on the calling CPU (its VMCS is the
 * current one): exit handlers run there. */
static inline void vcpu_skip_instruction(struct vcpu *v)
{
    (void)v;
    uint64_t rip = vmcs_readnat(VMCS_GUEST_RIP);
    vmcs_writenat(VMCS_GUEST_RIP, rip + vmcs_read32(VMCS_EXIT_INSTRUCTION_LENGTH));
    /* Stepping over an instruction ends STI/MOV-SS blocking, as the CPU would. */
    uint32_t intr = vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY);
    if (__builtin_expect(intr & 3, 0))
        vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, intr & ~3u);
}
void vcpu_inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error);
static inline void vcpu_inject_gp(struct vcpu *v) { vcpu_inject_exception(v, 13, true, 0); }
static inline void vcpu_inject_ud(struct vcpu *v) { vcpu_inject_exception(v, 6, false, 0); }
uint64_t vcpu_guest_cr0(const struct vcpu *v);
uint64_t vcpu_guest_cr4(const struct vcpu *v);
/* CR4 bits a guest may set: what the CPU allows in VMX operation, less VMX and SMX,
 * which CPUID hides. */
uint64_t vcpu_cr4_guest_allowed(void);
/* Guest-visible CR0/CR4 turned into the values the CPU runs with (VMX fixed bits). */
uint64_t vcpu_real_cr0(uint64_t guest_view);
uint64_t vcpu_real_cr4(uint64_t guest_view); /* the guest's view (read shadow merged) */
/* True when the guest runs 64-bit code (IA-32e mode and CS.L). */
bool vcpu_guest_64bit(const struct vcpu *v);
/* CPL of the guest (from SS access rights DPL). */
unsigned vcpu_guest_cpl(const struct vcpu *v);

#endif
