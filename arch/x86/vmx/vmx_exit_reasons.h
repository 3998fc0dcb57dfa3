/* VM-exit basic reasons (Intel SDM vol. 3, appendix C), listed once with where each
 * one goes.
 *
 * X(number, NAME, "SDM description", kind, handler, needs_qualification)
 *
 * kind: the backend-neutral group (arch/x86/exit_kinds.h) the VM's report counts it in.
 * handler: GENERIC(X) goes straight to the generic handler VCPU_EXIT_X (the exit needs
 * no decoding: CPUID, RDMSR...); VMX(fn) goes to a function of arch/x86/vmx/vmx_exit.c
 * that decodes the exit (and may hand it on to a generic handler).
 * needs_qualification: the exit-qualification field carries information for that exit
 * (SDM "Exit Qualification for ..."), so the dispatcher reads it first.
 *
 * The list is dense: the numbers the SDM leaves undefined (35, 38, 42, 71) are listed
 * as UNUSED_n entries going to vmx_exit_unexpected, so a table built from it has a
 * handler in every slot from 0 to VMX_EXIT_REASON_MAX; any reason Keel does not expect
 * names vmx_exit_unexpected explicitly, which stops the VM with the reason. */
#ifndef KEEL_ARCH_X86_VMX_EXIT_REASONS_H
#define KEEL_ARCH_X86_VMX_EXIT_REASONS_H

#include "vmm/lib/types.h"
#include "arch/x86/exit_kinds.h"

#define VMX_EXIT_REASONS(X)                                                                            \
    X(0, EXCEPTION_NMI, "Exception or non-maskable interrupt (NMI)", FAULT, VMX(vmx_exit_exception_nmi), true)                        \
    X(1, EXTERNAL_INTERRUPT, "External interrupt", INTERRUPT, VMX(vmx_exit_external_interrupt), false)                                \
    X(2, TRIPLE_FAULT, "Triple fault", FAULT, VMX(vmx_exit_triple_fault), false)                                                      \
    X(3, INIT_SIGNAL, "INIT signal", OTHER, VMX(vmx_exit_unexpected), false)                                                          \
    X(4, SIPI, "Start-up IPI (SIPI)", OTHER, VMX(vmx_exit_unexpected), true)                                                          \
    X(5, IO_SMI, "I/O system-management interrupt (SMI)", OTHER, VMX(vmx_exit_unexpected), true)                                      \
    X(6, OTHER_SMI, "Other SMI", OTHER, VMX(vmx_exit_unexpected), false)                                                              \
    X(7, INTERRUPT_WINDOW, "Interrupt window", INTERRUPT, VMX(vmx_exit_interrupt_window), false)                                                \
    X(8, NMI_WINDOW, "NMI window", INTERRUPT, VMX(vmx_exit_nmi_window), false)                                                       \
    X(9, TASK_SWITCH, "Task switch", OTHER, VMX(vmx_exit_unexpected), true)                                                           \
    X(10, CPUID, "CPUID", CPUID, GENERIC(CPUID), false)                                                                               \
    X(11, GETSEC, "GETSEC", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(12, HLT, "HLT", HLT, GENERIC(HLT), false)                                                                                       \
    X(13, INVD, "INVD", PRIVILEGED, GENERIC(WBINVD), false)                                                                           \
    X(14, INVLPG, "INVLPG", OTHER, VMX(vmx_exit_unexpected), true)                                                                    \
    X(15, RDPMC, "RDPMC", PRIVILEGED, GENERIC(RDPMC), false)                                                                          \
    X(16, RDTSC, "RDTSC", OTHER, VMX(vmx_exit_unexpected), false)                                                                     \
    X(17, RSM, "RSM", OTHER, VMX(vmx_exit_unexpected), false)                                                                         \
    X(18, VMCALL, "VMCALL", HYPERCALL, VMX(vmx_exit_vmcall), false)                                                                   \
    X(19, VMCLEAR, "VMCLEAR", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                   \
    X(20, VMLAUNCH, "VMLAUNCH", PRIVILEGED, GENERIC(UNDEFINED), false)                                                                \
    X(21, VMPTRLD, "VMPTRLD", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                   \
    X(22, VMPTRST, "VMPTRST", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                   \
    X(23, VMREAD, "VMREAD", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                     \
    X(24, VMRESUME, "VMRESUME", PRIVILEGED, GENERIC(UNDEFINED), false)                                                                \
    X(25, VMWRITE, "VMWRITE", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                   \
    X(26, VMXOFF, "VMXOFF", PRIVILEGED, GENERIC(UNDEFINED), false)                                                                    \
    X(27, VMXON, "VMXON", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                       \
    X(28, CR_ACCESS, "Control-register accesses", CR_ACCESS, VMX(vmx_exit_cr_access), true)                                           \
    X(29, DR_ACCESS, "MOV DR", OTHER, VMX(vmx_exit_unexpected), true)                                                                 \
    X(30, IO_INSTRUCTION, "I/O instruction", IO, VMX(vmx_exit_io), true)                                                              \
    X(31, RDMSR, "RDMSR", MSR_READ, GENERIC(RDMSR), false)                                                                            \
    X(32, WRMSR, "WRMSR", MSR_WRITE, GENERIC(WRMSR), false)                                                                           \
    X(33, ENTRY_INVALID_GUEST_STATE, "VM-entry failure due to invalid guest state", ENTRY_FAILURE, VMX(vmx_exit_entry_failure), true) \
    X(34, ENTRY_MSR_LOADING, "VM-entry failure due to MSR loading", ENTRY_FAILURE, VMX(vmx_exit_entry_failure), true)                 \
    X(35, UNUSED_35, "Undefined exit reason 35", OTHER, VMX(vmx_exit_unexpected), false)                                              \
    X(36, MWAIT, "MWAIT", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                       \
    X(37, MONITOR_TRAP_FLAG, "Monitor trap flag", OTHER, VMX(vmx_exit_unexpected), false)                                             \
    X(38, UNUSED_38, "Undefined exit reason 38", OTHER, VMX(vmx_exit_unexpected), false)                                              \
    X(39, MONITOR, "MONITOR", PRIVILEGED, GENERIC(UNDEFINED), false)                                                                  \
    X(40, PAUSE, "PAUSE", PAUSE, GENERIC(PAUSE), false)                                                                             \
    X(41, ENTRY_MACHINE_CHECK, "VM-entry failure due to machine-check event", ENTRY_FAILURE, VMX(vmx_exit_entry_failure), false)      \
    X(42, UNUSED_42, "Undefined exit reason 42", OTHER, VMX(vmx_exit_unexpected), false)                                              \
    X(43, TPR_BELOW_THRESHOLD, "TPR below threshold", OTHER, VMX(vmx_exit_unexpected), false)                                         \
    X(44, APIC_ACCESS, "APIC access", OTHER, VMX(vmx_exit_unexpected), true)                                                          \
    X(45, VIRTUALIZED_EOI, "Virtualized EOI", OTHER, VMX(vmx_exit_unexpected), true)                                                  \
    X(46, GDTR_IDTR_ACCESS, "Access to GDTR or IDTR", OTHER, VMX(vmx_exit_unexpected), true)                                          \
    X(47, LDTR_TR_ACCESS, "Access to LDTR or TR", OTHER, VMX(vmx_exit_unexpected), true)                                              \
    X(48, EPT_VIOLATION, "EPT violation", MEMORY, VMX(vmx_exit_ept_violation), true)                                                  \
    X(49, EPT_MISCONFIG, "EPT misconfiguration", MEMORY, VMX(vmx_exit_ept_misconfig), false)                                          \
    X(50, INVEPT, "INVEPT", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                     \
    X(51, RDTSCP, "RDTSCP", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(52, PREEMPTION_TIMER, "VMX-preemption timer expired", TIMER, GENERIC(TIMER), false)                                         \
    X(53, INVVPID, "INVVPID", PRIVILEGED, GENERIC(UNDEFINED), true)                                                                   \
    X(54, WBINVD, "WBINVD or WBNOINVD", PRIVILEGED, GENERIC(WBINVD), false)                                                           \
    X(55, XSETBV, "XSETBV", XSETBV, GENERIC(XSETBV), false)                                                                           \
    X(56, APIC_WRITE, "APIC write", OTHER, VMX(vmx_exit_unexpected), true)                                                            \
    X(57, RDRAND, "RDRAND", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(58, INVPCID, "INVPCID", OTHER, VMX(vmx_exit_unexpected), true)                                                                  \
    X(59, VMFUNC, "VMFUNC", PRIVILEGED, GENERIC(UNDEFINED), false)                                                                    \
    X(60, ENCLS, "ENCLS", OTHER, VMX(vmx_exit_unexpected), false)                                                                     \
    X(61, RDSEED, "RDSEED", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(62, PML_FULL, "Page-modification log full", OTHER, VMX(vmx_exit_unexpected), true)                                              \
    X(63, XSAVES, "XSAVES", OTHER, VMX(vmx_exit_unexpected), true)                                                                    \
    X(64, XRSTORS, "XRSTORS", OTHER, VMX(vmx_exit_unexpected), true)                                                                  \
    X(65, PCONFIG, "PCONFIG", OTHER, VMX(vmx_exit_unexpected), false)                                                                 \
    X(66, SPP_EVENT, "SPP-related event", OTHER, VMX(vmx_exit_unexpected), true)                                                      \
    X(67, UMWAIT, "UMWAIT", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(68, TPAUSE, "TPAUSE", OTHER, VMX(vmx_exit_unexpected), false)                                                                   \
    X(69, LOADIWKEY, "LOADIWKEY", OTHER, VMX(vmx_exit_unexpected), false)                                                             \
    X(70, ENCLV, "ENCLV", OTHER, VMX(vmx_exit_unexpected), false)                                                                     \
    X(71, UNUSED_71, "Undefined exit reason 71", OTHER, VMX(vmx_exit_unexpected), false)                                              \
    X(72, ENQCMD_PASID_FAILURE, "ENQCMD PASID translation failure", OTHER, VMX(vmx_exit_unexpected), true)                            \
    X(73, ENQCMDS_PASID_FAILURE, "ENQCMDS PASID translation failure", OTHER, VMX(vmx_exit_unexpected), true)                          \
    X(74, BUS_LOCK, "Bus lock", OTHER, VMX(vmx_exit_unexpected), false)                                                               \
    X(75, INSTRUCTION_TIMEOUT, "Instruction timeout", OTHER, VMX(vmx_exit_unexpected), true)                                          \
    X(76, SEAMCALL, "SEAMCALL", OTHER, VMX(vmx_exit_unexpected), false)                                                               \
    X(77, TDCALL, "TDCALL", OTHER, VMX(vmx_exit_unexpected), false)

enum vmx_exit_reason {
#define VMX_EXIT_REASON_ENUM(num, name, desc, kind, handler, needs_qual) EXIT_REASON_##name = (num),
    VMX_EXIT_REASONS(VMX_EXIT_REASON_ENUM)
#undef VMX_EXIT_REASON_ENUM
};

#define VMX_EXIT_REASON_MAX 77u
#define VMX_EXIT_REASON_COUNT (VMX_EXIT_REASON_MAX + 1)

/* The exit-reason VMCS field: basic reason in bits 15:0, flags above (SDM "Basic VM-Exit
 * Information"). Bit 16 is always 0. */
#define EXIT_REASON_BASIC(r) ((uint32_t)(r) & 0xffffu)
#define EXIT_REASON_BUS_LOCK_DETECTED BIT(26)
#define EXIT_REASON_ENCLAVE_MODE BIT(27)
#define EXIT_REASON_PENDING_MTF BIT(28)
#define EXIT_REASON_FROM_VMX_ROOT BIT(29)
#define EXIT_REASON_ENTRY_FAILURE BIT(31)
#define EXIT_REASON_FLAGS                                                                          \
    (EXIT_REASON_BUS_LOCK_DETECTED | EXIT_REASON_ENCLAVE_MODE | EXIT_REASON_PENDING_MTF |          \
     EXIT_REASON_FROM_VMX_ROOT | EXIT_REASON_ENTRY_FAILURE)

/* Both accept the raw exit-reason field: the flag bits above are ignored, the basic
 * reason decides. "EPT_VIOLATION" / "EPT violation"; "UNKNOWN" / "Unknown exit reason"
 * for a number past the list or a field with undefined bits set (never NULL). */
const char *exit_reason_name(uint32_t reason);
/* The backend-neutral kind (arch/x86/exit_kinds.h) of a raw exit-reason field. */
enum exit_kind exit_reason_kind(uint32_t reason);
const char *exit_reason_description(uint32_t reason);

#endif
