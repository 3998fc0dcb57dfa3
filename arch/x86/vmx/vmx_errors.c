/* Reporting VMX instruction failures and VMCS misuse in words, so a dying Keel says
 * what went wrong instead of printing a bare number. */
#include "arch/x86/vmx/vmx_errors.h"
#include "arch/x86/vmx/vmcs_fields.h"
#include "arch/x86/vmx/vmx_insn.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

const char *vmx_instruction_error_name(uint32_t n)
{
    switch (n) {
#define VMX_INSTRUCTION_ERROR_CASE(num, name, text) \
    case (num):                                     \
        return text;
        VMX_INSTRUCTION_ERRORS(VMX_INSTRUCTION_ERROR_CASE)
#undef VMX_INSTRUCTION_ERROR_CASE
    }
    return "unknown VM-instruction error";
}

const char *vmx_status_name(enum vmx_status st)
{
    switch (st) {
    case VMX_OK:
        return "VMsucceed";
    case VMX_FAIL_INVALID:
        return "VMfailInvalid";
    case VMX_FAIL_VALID:
        return "VMfailValid";
    }
    return "invalid status";
}

static bool names_a_field(const char *insn)
{
    return strcmp(insn, "VMREAD") == 0 || strcmp(insn, "VMWRITE") == 0;
}

NORETURN void vmx_insn_failed(const char *insn, enum vmx_status st, uint64_t arg)
{
    if (!insn)
        insn = "VMX instruction";
    char field[64] = "";
    if (names_a_field(insn))
        ksnprintf(field, sizeof(field), " %s", vmcs_field_name((uint32_t)arg));

    if (st == VMX_FAIL_VALID) {
        /* Only VMfailValid leaves a current VMCS holding the error number; reading it
         * with the safe form cannot recurse into this function. */
        uint64_t err = 0;
        if (vmx_vmread_safe(VMCS_VM_INSTRUCTION_ERROR, &err) == VMX_OK)
            kprintf("VMX: %s(0x%llx%s) failed: VMfailValid, VM-instruction error %u (%s)\n", insn,
                    (unsigned long long)arg, field, (unsigned)err, vmx_instruction_error_name((uint32_t)err));
        else
            kprintf("VMX: %s(0x%llx%s) failed: VMfailValid, VM-instruction error unreadable\n", insn,
                    (unsigned long long)arg, field);
    } else {
        kprintf("VMX: %s(0x%llx%s) failed: %s%s\n", insn, (unsigned long long)arg, field, vmx_status_name(st),
                st == VMX_FAIL_INVALID ? " (no current VMCS, or an invalid operand)" : "");
    }
    panic("VMX instruction %s failed", insn);
}

NORETURN void vmcs_bad_access(uint32_t field, unsigned width, bool write)
{
    if (write && VMCS_ENC_TYPE(field) == VMCS_TYPE_READ_ONLY && VMCS_ACCESS_WIDTH(field) == width)
        panic("VMCS: write to read-only field %s (0x%x)", vmcs_field_name(field), (unsigned)field);
    panic("VMCS: %s %s of %s field %s (0x%x)", vmcs_width_name(width), write ? "write" : "read",
          vmcs_width_name(VMCS_ACCESS_WIDTH(field)), vmcs_field_name(field), (unsigned)field);
}
