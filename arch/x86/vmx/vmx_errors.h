/* How VMX instructions fail, and how Keel reports it.
 *
 * Every VMX instruction reports through RFLAGS (SDM vol. 3, "Conventions" in the VMX
 * instruction reference): CF=1 is VMfailInvalid (no current VMCS to hold an error
 * number), ZF=1 is VMfailValid (the number is in the VM-instruction error field). */
#ifndef KEEL_ARCH_X86_VMX_ERRORS_H
#define KEEL_ARCH_X86_VMX_ERRORS_H

#include "vmm/lib/types.h"

enum vmx_status {
    VMX_OK = 0,
    VMX_FAIL_INVALID, /* CF=1: no current VMCS, no error number */
    VMX_FAIL_VALID,   /* ZF=1: see VMCS_VM_INSTRUCTION_ERROR */
};

/* VM-instruction error numbers (SDM vol. 3, "VM-Instruction Error Numbers").
 * 14, 21 and 27 are not defined. */
#define VMX_INSTRUCTION_ERRORS(X)                                                                  \
    X(1, VMCALL_IN_ROOT, "VMCALL executed in VMX root operation")                                  \
    X(2, VMCLEAR_INVALID_ADDRESS, "VMCLEAR with invalid physical address")                         \
    X(3, VMCLEAR_VMXON_POINTER, "VMCLEAR with VMXON pointer")                                      \
    X(4, VMLAUNCH_NONCLEAR_VMCS, "VMLAUNCH with non-clear VMCS")                                   \
    X(5, VMRESUME_NONLAUNCHED_VMCS, "VMRESUME with non-launched VMCS")                              \
    X(6, VMRESUME_AFTER_VMXOFF, "VMRESUME after VMXOFF (VMXOFF and VMXON between VMLAUNCH and VMRESUME)") \
    X(7, ENTRY_INVALID_CONTROL, "VM entry with invalid control field(s)")                          \
    X(8, ENTRY_INVALID_HOST_STATE, "VM entry with invalid host-state field(s)")                    \
    X(9, VMPTRLD_INVALID_ADDRESS, "VMPTRLD with invalid physical address")                         \
    X(10, VMPTRLD_VMXON_POINTER, "VMPTRLD with VMXON pointer")                                     \
    X(11, VMPTRLD_BAD_REVISION, "VMPTRLD with incorrect VMCS revision identifier")                 \
    X(12, UNSUPPORTED_COMPONENT, "VMREAD/VMWRITE from/to unsupported VMCS component")              \
    X(13, VMWRITE_READ_ONLY, "VMWRITE to read-only VMCS component")                                \
    X(15, VMXON_IN_ROOT, "VMXON executed in VMX root operation")                                   \
    X(16, ENTRY_INVALID_EXECUTIVE_VMCS, "VM entry with invalid executive-VMCS pointer")            \
    X(17, ENTRY_NONLAUNCHED_EXECUTIVE_VMCS, "VM entry with non-launched executive VMCS")           \
    X(18, ENTRY_EXECUTIVE_VMCS_NOT_VMXON, "VM entry with executive-VMCS pointer not VMXON pointer (when attempting to deactivate the dual-monitor treatment of SMIs and SMM)") \
    X(19, VMCALL_NONCLEAR_VMCS, "VMCALL with non-clear VMCS (when attempting to activate the dual-monitor treatment of SMIs and SMM)") \
    X(20, VMCALL_INVALID_EXIT_CONTROLS, "VMCALL with invalid VM-exit control fields")              \
    X(22, VMCALL_BAD_MSEG_REVISION, "VMCALL with incorrect MSEG revision identifier (when attempting to activate the dual-monitor treatment of SMIs and SMM)") \
    X(23, VMXOFF_DUAL_MONITOR, "VMXOFF under dual-monitor treatment of SMIs and SMM")              \
    X(24, VMCALL_INVALID_SMM_FEATURES, "VMCALL with invalid SMM-monitor features (when attempting to activate the dual-monitor treatment of SMIs and SMM)") \
    X(25, ENTRY_INVALID_EXECUTIVE_CONTROLS, "VM entry with invalid VM-execution control fields in executive VMCS (when attempting to return from SMM)") \
    X(26, ENTRY_MOV_SS_BLOCKING, "VM entry with events blocked by MOV SS")                         \
    X(28, INVALID_INVEPT_INVVPID_OPERAND, "Invalid operand to INVEPT/INVVPID")

enum vmx_instruction_error {
#define VMX_INSTRUCTION_ERROR_ENUM(n, name, text) VMXERR_##name = (n),
    VMX_INSTRUCTION_ERRORS(VMX_INSTRUCTION_ERROR_ENUM)
#undef VMX_INSTRUCTION_ERROR_ENUM
};

/* The SDM's text for error `n`; "unknown VM-instruction error" for 0, the undefined
 * numbers and anything above 28 (never NULL). */
const char *vmx_instruction_error_name(uint32_t n);
/* "VMsucceed", "VMfailInvalid", "VMfailValid" or "invalid status". */
const char *vmx_status_name(enum vmx_status st);

/* The failure path of the plain (non-_safe) wrappers in vmx_insn.h: prints one line
 * naming the instruction, its operand `arg` (the field name too for VMREAD/VMWRITE)
 * and the status, with the VM-instruction error decoded for VMfailValid, then panics.
 * A VMX instruction failing there means Keel's own state is broken. */
NORETURN void vmx_insn_failed(const char *insn, enum vmx_status st, uint64_t arg);

/* Called by the accessors in vmcs.h when a field whose encoding is only known at run
 * time is accessed with the wrong width, or written although it is read-only. */
NORETURN void vmcs_bad_access(uint32_t field, unsigned width, bool write);

#endif
