/* VM-exit basic reasons (Intel SDM vol. 3, appendix C), listed once with the handler
 * each one goes to.
 *
 * X(number, NAME, "SDM description", handler, needs_qualification)
 *
 * The list is dense: the numbers the SDM leaves undefined (35, 38, 42, 71) are listed
 * as UNUSED_n entries going to handle_unexpected_exit, so a table built from it has a
 * real handler in every slot from 0 to VMX_EXIT_REASON_MAX. needs_qualification says
 * the exit-qualification field carries information for that exit (SDM "Exit
 * Qualification for ..."), so the dispatcher reads it before calling the handler.
 * Any reason without a specific handler names handle_unexpected_exit explicitly.
 *
 * The dispatcher builds its table with
 *     static const struct exit_handler exit_table[] = { VMX_EXIT_REASONS(VMX_EXIT_HANDLER_ENTRY) };
 * where struct exit_handler's first two members are the handler and the bool. A
 * number listed twice is an error under -Wextra -Werror (-Woverride-init). */
#ifndef KEEL_VMM_EXIT_REASONS_H
#define KEEL_VMM_EXIT_REASONS_H

#include "vmm/lib/types.h"
#include "vmm/exit_kinds.h"

#define VMX_EXIT_REASONS(X)                                                                            \
    X(0, EXCEPTION_NMI, "Exception or non-maskable interrupt (NMI)", handle_exception_nmi, true)       \
    X(1, EXTERNAL_INTERRUPT, "External interrupt", handle_external_interrupt, false)                   \
    X(2, TRIPLE_FAULT, "Triple fault", handle_triple_fault, false)                                     \
    X(3, INIT_SIGNAL, "INIT signal", handle_unexpected_exit, false)                                    \
    X(4, SIPI, "Start-up IPI (SIPI)", handle_unexpected_exit, true)                                    \
    X(5, IO_SMI, "I/O system-management interrupt (SMI)", handle_unexpected_exit, true)                \
    X(6, OTHER_SMI, "Other SMI", handle_unexpected_exit, false)                                        \
    X(7, INTERRUPT_WINDOW, "Interrupt window", handle_unexpected_exit, false)                          \
    X(8, NMI_WINDOW, "NMI window", handle_unexpected_exit, false)                                      \
    X(9, TASK_SWITCH, "Task switch", handle_unexpected_exit, true)                                     \
    X(10, CPUID, "CPUID", handle_cpuid, false)                                                         \
    X(11, GETSEC, "GETSEC", handle_unexpected_exit, false)                                             \
    X(12, HLT, "HLT", handle_hlt, false)                                                               \
    X(13, INVD, "INVD", handle_invd, false)                                                            \
    X(14, INVLPG, "INVLPG", handle_unexpected_exit, true)                                              \
    X(15, RDPMC, "RDPMC", handle_rdpmc, false)                                               \
    X(16, RDTSC, "RDTSC", handle_unexpected_exit, false)                                               \
    X(17, RSM, "RSM", handle_unexpected_exit, false)                                                   \
    X(18, VMCALL, "VMCALL", handle_vmcall, false)                                                      \
    X(19, VMCLEAR, "VMCLEAR", handle_vmx_instruction, true)                                            \
    X(20, VMLAUNCH, "VMLAUNCH", handle_vmx_instruction, false)                                         \
    X(21, VMPTRLD, "VMPTRLD", handle_vmx_instruction, true)                                            \
    X(22, VMPTRST, "VMPTRST", handle_vmx_instruction, true)                                            \
    X(23, VMREAD, "VMREAD", handle_vmx_instruction, true)                                              \
    X(24, VMRESUME, "VMRESUME", handle_vmx_instruction, false)                                         \
    X(25, VMWRITE, "VMWRITE", handle_vmx_instruction, true)                                            \
    X(26, VMXOFF, "VMXOFF", handle_vmx_instruction, false)                                             \
    X(27, VMXON, "VMXON", handle_vmx_instruction, true)                                                \
    X(28, CR_ACCESS, "Control-register accesses", handle_cr_access, true)                              \
    X(29, DR_ACCESS, "MOV DR", handle_unexpected_exit, true)                                           \
    X(30, IO_INSTRUCTION, "I/O instruction", handle_io, true)                                          \
    X(31, RDMSR, "RDMSR", handle_rdmsr, false)                                                         \
    X(32, WRMSR, "WRMSR", handle_wrmsr, false)                                                         \
    X(33, ENTRY_INVALID_GUEST_STATE, "VM-entry failure due to invalid guest state", handle_entry_failure, true) \
    X(34, ENTRY_MSR_LOADING, "VM-entry failure due to MSR loading", handle_entry_failure, true)        \
    X(35, UNUSED_35, "Undefined exit reason 35", handle_unexpected_exit, false)                        \
    X(36, MWAIT, "MWAIT", handle_monitor_mwait, true)                                                   \
    X(37, MONITOR_TRAP_FLAG, "Monitor trap flag", handle_unexpected_exit, false)                       \
    X(38, UNUSED_38, "Undefined exit reason 38", handle_unexpected_exit, false)                        \
    X(39, MONITOR, "MONITOR", handle_monitor_mwait, false)                                              \
    X(40, PAUSE, "PAUSE", handle_unexpected_exit, false)                                               \
    X(41, ENTRY_MACHINE_CHECK, "VM-entry failure due to machine-check event", handle_entry_failure, false) \
    X(42, UNUSED_42, "Undefined exit reason 42", handle_unexpected_exit, false)                        \
    X(43, TPR_BELOW_THRESHOLD, "TPR below threshold", handle_unexpected_exit, false)                   \
    X(44, APIC_ACCESS, "APIC access", handle_unexpected_exit, true)                                    \
    X(45, VIRTUALIZED_EOI, "Virtualized EOI", handle_unexpected_exit, true)                            \
    X(46, GDTR_IDTR_ACCESS, "Access to GDTR or IDTR", handle_unexpected_exit, true)                    \
    X(47, LDTR_TR_ACCESS, "Access to LDTR or TR", handle_unexpected_exit, true)                        \
    X(48, EPT_VIOLATION, "EPT violation", handle_ept_violation, true)                                  \
    X(49, EPT_MISCONFIG, "EPT misconfiguration", handle_ept_misconfig, false)                          \
    X(50, INVEPT, "INVEPT", handle_vmx_instruction, true)                                              \
    X(51, RDTSCP, "RDTSCP", handle_unexpected_exit, false)                                             \
    X(52, PREEMPTION_TIMER, "VMX-preemption timer expired", handle_preemption_timer, false)            \
    X(53, INVVPID, "INVVPID", handle_vmx_instruction, true)                                            \
    X(54, WBINVD, "WBINVD or WBNOINVD", handle_wbinvd, false)                                          \
    X(55, XSETBV, "XSETBV", handle_xsetbv, false)                                                      \
    X(56, APIC_WRITE, "APIC write", handle_unexpected_exit, true)                                      \
    X(57, RDRAND, "RDRAND", handle_unexpected_exit, false)                                             \
    X(58, INVPCID, "INVPCID", handle_unexpected_exit, true)                                            \
    X(59, VMFUNC, "VMFUNC", handle_vmx_instruction, false)                                             \
    X(60, ENCLS, "ENCLS", handle_unexpected_exit, false)                                               \
    X(61, RDSEED, "RDSEED", handle_unexpected_exit, false)                                             \
    X(62, PML_FULL, "Page-modification log full", handle_unexpected_exit, true)                        \
    X(63, XSAVES, "XSAVES", handle_unexpected_exit, true)                                              \
    X(64, XRSTORS, "XRSTORS", handle_unexpected_exit, true)                                            \
    X(65, PCONFIG, "PCONFIG", handle_unexpected_exit, false)                                           \
    X(66, SPP_EVENT, "SPP-related event", handle_unexpected_exit, true)                                \
    X(67, UMWAIT, "UMWAIT", handle_unexpected_exit, false)                                             \
    X(68, TPAUSE, "TPAUSE", handle_unexpected_exit, false)                                             \
    X(69, LOADIWKEY, "LOADIWKEY", handle_unexpected_exit, false)                                       \
    X(70, ENCLV, "ENCLV", handle_unexpected_exit, false)                                               \
    X(71, UNUSED_71, "Undefined exit reason 71", handle_unexpected_exit, false)                        \
    X(72, ENQCMD_PASID_FAILURE, "ENQCMD PASID translation failure", handle_unexpected_exit, true)      \
    X(73, ENQCMDS_PASID_FAILURE, "ENQCMDS PASID translation failure", handle_unexpected_exit, true)    \
    X(74, BUS_LOCK, "Bus lock", handle_unexpected_exit, false)                                         \
    X(75, INSTRUCTION_TIMEOUT, "Instruction timeout", handle_unexpected_exit, true)                    \
    X(76, SEAMCALL, "SEAMCALL", handle_unexpected_exit, false)                                         \
    X(77, TDCALL, "TDCALL", handle_unexpected_exit, false)

enum vmx_exit_reason {
#define VMX_EXIT_REASON_ENUM(num, name, desc, handler, needs_qual) EXIT_REASON_##name = (num),
    VMX_EXIT_REASONS(VMX_EXIT_REASON_ENUM)
#undef VMX_EXIT_REASON_ENUM
};

#define VMX_EXIT_REASON_MAX 77u
#define VMX_EXIT_REASON_COUNT (VMX_EXIT_REASON_MAX + 1)

/* Table entry for the dispatcher's handler table (see the top of this file). */
#define VMX_EXIT_HANDLER_ENTRY(num, name, desc, handler, needs_qual) [num] = {handler, needs_qual},

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
/* The backend-neutral kind (vmm/exit_kinds.h) of a raw exit-reason field. */
enum exit_kind exit_reason_kind(uint32_t reason);
const char *exit_reason_description(uint32_t reason);

#endif
