/* Table-driven VM-exit dispatch of the VMX backend. arch/x86/vmx/vmx_exit_reasons.h
 * lists every basic exit reason once, with the handler it goes to: a generic one
 * (arch/x86/vcpu_backend.h) or a VMX decoder below. vmx_exit_init fills the table once,
 * taking the generic handlers from the generic side. */
#ifndef KEEL_ARCH_X86_VMX_EXIT_H
#define KEEL_ARCH_X86_VMX_EXIT_H

#include "arch/x86/vcpu_backend.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_exit_reasons.h"

/* Two arrays rather than one of pairs: each is indexed by the reason as it is, with no
 * scaling instruction on the hot path. */
struct vmx_exit_table {
    vcpu_exit_fn fn[VMX_EXIT_REASON_COUNT];
    bool needs_qualification[VMX_EXIT_REASON_COUNT];
};

extern struct vmx_exit_table vmx_exit_table;
/* The generic handlers, for the decoders that hand an exit on. */
extern vcpu_exit_fn vmx_generic[VCPU_EXIT_COUNT];

void vmx_exit_init(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT]);

/* Steps over the instruction that exited. Stepping over an instruction ends STI/MOV-SS
 * blocking, as the CPU would. */
static inline __attribute__((always_inline)) void vmx_skip_instruction(void)
{
    uint64_t rip = vmcs_readnat_on_exit(VMCS_GUEST_RIP);
    vmcs_writenat_on_exit(VMCS_GUEST_RIP, rip + vmcs_read32_wide_on_exit(VMCS_EXIT_INSTRUCTION_LENGTH));
    uint32_t intr = vmcs_read32_on_exit(VMCS_GUEST_INTERRUPTIBILITY);
    if (__builtin_expect(intr & 3, 0))
        vmcs_write32_on_exit(VMCS_GUEST_INTERRUPTIBILITY, intr & ~3u);
}

/* An exit reason with flags in its upper bits (a failed entry) or beyond the table. */
__attribute__((cold, noinline)) enum exit_action vmx_exit_flagged(struct vcpu *v, uint32_t raw,
                                                                   struct latency **spent_on);

/* One exit of the vCPU whose VMCS is current, from the exit reason to the state the
 * guest resumes in: EXIT_RESUME, EXIT_YIELD or EXIT_STOPPED; *spent_on is where the
 * exit's duration goes (vcpu_latency), known before the handler runs so that it needs
 * no saving across the call. Inlined into the run loop: on Keel's hottest path a call
 * frame is a measurable cost. Only the exit reason is read here; a decoder that needs
 * the exit qualification reads it itself. */
static inline __attribute__((always_inline)) enum exit_action vmx_handle_exit_timed(struct vcpu *v,
                                                                                    struct latency **spent_on)
{
    uint64_t raw = vmcs_read32_wide_on_exit(VMCS_EXIT_REASON);
    enum exit_action a;
    /* The basic reason is the low 16 bits; with no flag above them, raw is the reason. */
    if (__builtin_expect(raw < VMX_EXIT_REASON_COUNT, 1)) {
        *spent_on = &vcpu_arch(v)->latency.exit[raw];
        vcpu_arch(v)->stats.exits[raw]++;
        struct exit_info e;
        e.raw = (uint32_t)raw;
        a = vmx_exit_table.fn[raw](v, &e);
    } else {
        a = vmx_exit_flagged(v, (uint32_t)raw, spent_on);
    }
    if (__builtin_expect(a == EXIT_NEXT, 1)) {
        vmx_skip_instruction();
        return EXIT_RESUME;
    }
    if (a == EXIT_NEXT_YIELD) {
        vmx_skip_instruction();
        return EXIT_YIELD;
    }
    return a;
}

static inline __attribute__((always_inline)) enum exit_action vmx_handle_exit(struct vcpu *v)
{
    struct latency *spent_on;
    return vmx_handle_exit_timed(v, &spent_on);
}

/* The VMX decoders named in vmx_exit_reasons.h. */
#define DECLARE_VMX_EXIT(h) enum exit_action h(struct vcpu *v, struct exit_info *e);
DECLARE_VMX_EXIT(vmx_exit_exception_nmi)
DECLARE_VMX_EXIT(vmx_exit_external_interrupt)
DECLARE_VMX_EXIT(vmx_exit_triple_fault)
DECLARE_VMX_EXIT(vmx_exit_vmcall)
DECLARE_VMX_EXIT(vmx_exit_cr_access)
DECLARE_VMX_EXIT(vmx_exit_io)
DECLARE_VMX_EXIT(vmx_exit_entry_failure)
DECLARE_VMX_EXIT(vmx_exit_ept_violation)
DECLARE_VMX_EXIT(vmx_exit_ept_misconfig)
DECLARE_VMX_EXIT(vmx_exit_unexpected)
DECLARE_VMX_EXIT(vmx_exit_interrupt_window)
DECLARE_VMX_EXIT(vmx_exit_nmi_window)
#undef DECLARE_VMX_EXIT

#endif
