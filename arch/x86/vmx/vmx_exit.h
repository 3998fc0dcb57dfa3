/* Table-driven VM-exit dispatch of the VMX backend. arch/x86/vmx/vmx_exit_reasons.h
 * lists every basic exit reason once, with the handler it goes to: a generic one
 * (arch/x86/vcpu_backend.h) or a VMX decoder below. vmx_exit_init fills the table once,
 * taking the generic handlers from the generic side. */
#ifndef KEEL_ARCH_X86_VMX_EXIT_H
#define KEEL_ARCH_X86_VMX_EXIT_H

#include "arch/x86/vcpu_backend.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_controls.h"
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
/* The hypercalls the run loop calls itself (struct vcpu_hypercalls). */
extern struct vcpu_hypercalls vmx_hypercalls;

/* hypercalls may be NULL: every VMCALL then goes to the HYPERCALL handler. */
void vmx_exit_init(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT], const struct vcpu_hypercalls *hypercalls);

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
__attribute__((cold, noinline)) enum exit_action vmx_exit_flagged(struct vcpu *v, uint32_t raw);

/* CPUID of a leaf whose answer the vCPU keeps (struct vcpu_cpuid_cache): answered
 * here, before the table. False: the generic handler works it out. */
static inline __attribute__((always_inline)) bool vmx_cpuid_cached(struct vcpu_arch *a)
{
    /* EAX alone, loaded as 32 bits (x86 is little-endian): the upper half is not part
     * of the leaf, and the load zero-extends for the indexing below. */
    uint32_t leaf;
    __builtin_memcpy(&leaf, &a->regs.rax, sizeof(leaf));
    if (leaf >= VCPU_CPUID_CACHED || !((a->cpuid.known >> leaf) & 1))
        return false;
    a->regs.rax = a->cpuid.a[leaf];
    a->regs.rbx = a->cpuid.b[leaf];
    a->regs.rcx = a->cpuid.c[leaf];
    a->regs.rdx = a->cpuid.d[leaf];
    return true;
}

/* CS access rights: DPL (bits 6:5) and, for code, the conforming bit (2). A
 * non-conforming CS has DPL = CPL: far transfers load it only so, and VM entry checks it
 * (SDM 26.3.1.2). The run loop's test of CPL 0 therefore needs CS alone, which it reads
 * anyway for the width; a conforming CS (DPL may be below CPL) goes to the table, whose
 * handler reads SS.DPL. Real mode's CS (type 3) has neither bit and DPL 0. */
#define VMX_AR_DPL_OR_CONFORMING 0x64u
#define VMX_AR_L BIT(13)

/* Whether code with these CS access rights is 64-bit: CS.L in IA-32e mode (outside it
 * CS.L means nothing). CS.L is tested first: outside 64-bit code it is almost always
 * clear, and the entry controls need no read. */
static inline __attribute__((always_inline)) bool vmx_code64(uint32_t cs_ar)
{
    return (cs_ar & VMX_AR_L) && (vmcs_read32_on_exit(VMCS_ENTRY_CONTROLS) & VMX_ENTRY_CTL_IA32E_MODE_GUEST);
}

/* A VMCALL from CPL 0 with a number that has a slot: counted, then the hypercall called
 * here, before the table (counted first: the EXIT hypercall's report includes itself).
 * False: the HYPERCALL handler takes it, to refuse it (or, from a conforming segment at
 * CPL 0, to call it). */
static inline __attribute__((always_inline)) bool vmx_hypercall(struct vcpu *v, struct latency **spent_on,
                                                                enum exit_action *act)
{
    struct vcpu_arch *a = vcpu_arch(v);
    uint32_t cs = vmcs_read32_on_exit(VMCS_GUEST_CS_ACCESS_RIGHTS);
    if (cs & VMX_AR_DPL_OR_CONFORMING)
        return false;
    const vcpu_hypercall_fn *table;
    uint64_t fn;
    if (__builtin_expect(vmx_code64(cs), 0)) {
        /* The whole of RAX is the number: 0x100000004 is not EXIT. */
        fn = a->regs.rax;
        table = vmx_hypercalls.wide;
    } else {
        /* EAX alone, loaded as 32 bits, as for CPUID's leaf. */
        uint32_t eax;
        __builtin_memcpy(&eax, &a->regs.rax, sizeof(eax));
        fn = eax;
        table = vmx_hypercalls.narrow;
    }
    if (fn >= VCPU_HYPERCALL_SLOTS)
        return false;
    *spent_on = &a->latency.exit[EXIT_REASON_VMCALL];
    a->stats.exits[EXIT_REASON_VMCALL]++;
    *act = table[fn](v);
    return true;
}

/* One exit of the vCPU whose VMCS is current, up to the handler's answer (enum
 * exit_action; vmx_finish_exit acts on it); *spent_on is where the exit's duration goes
 * (vcpu_latency), known before the handler runs so that it needs no saving across the
 * call. Inlined into the run loop: on Keel's hottest path a call frame is a measurable
 * cost, and so is every store: spent_on never leaves a register (nothing takes its
 * address), and the handlers that word the reason in a report read it from the VMCS
 * again. A decoder that needs the exit qualification reads it itself. */
static inline __attribute__((always_inline)) enum exit_action vmx_dispatch_exit(struct vcpu *v,
                                                                                struct latency **spent_on)
{
    uint64_t raw = vmcs_read32_wide_on_exit(VMCS_EXIT_REASON);
    struct vcpu_arch *a = vcpu_arch(v);
    /* The two exits that exist only to ask Keel something, looked for first and with
     * constant offsets. */
    if (raw == EXIT_REASON_CPUID && vmx_cpuid_cached(a)) {
        *spent_on = &a->latency.exit[EXIT_REASON_CPUID];
        a->stats.exits[EXIT_REASON_CPUID]++;
        return EXIT_NEXT;
    }
    enum exit_action act;
    if (raw == EXIT_REASON_VMCALL && vmx_hypercall(v, spent_on, &act))
        return act;
    /* The basic reason is the low 16 bits; with no flag above them, raw is the reason. */
    if (__builtin_expect(raw < VMX_EXIT_REASON_COUNT, 1)) {
        *spent_on = &a->latency.exit[raw];
        a->stats.exits[raw]++;
        struct exit_info e;
        return vmx_exit_table.fn[raw](v, &e);
    }
    /* A reason too new for the table counts in the last slot, which no VMX reason uses. */
    uint32_t basic = EXIT_REASON_BASIC(raw);
    *spent_on = &a->latency.exit[basic < VMX_EXIT_REASON_COUNT ? basic : VCPU_EXIT_REASON_SLOTS - 1];
    return vmx_exit_flagged(v, (uint32_t)raw);
}

/* The handler's answer carried out: the instruction stepped over where it asks, and the
 * state the guest goes on in (EXIT_RESUME, EXIT_YIELD or EXIT_STOPPED). */
static inline __attribute__((always_inline)) enum exit_action vmx_finish_exit(enum exit_action a)
{
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
    return vmx_finish_exit(vmx_dispatch_exit(v, &spent_on));
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
