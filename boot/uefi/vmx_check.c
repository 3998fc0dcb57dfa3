/* VMX availability on the boot CPU (Intel SDM vol. 3C, section 24.7: "Enabling and
 * entering VMX operation"). */
#include "boot/uefi/vmx_check.h"
#include "arch/x86/msr.h"
#include "vmm/lib/string.h"

#ifndef KEEL_HOST_TEST
#include "arch/x86/cpu.h"
#endif

#define CPUID1_ECX_VMX BIT(5)

enum vmx_state vmx_state_from(bool cpuid_vmx, uint64_t feature_control)
{
    if (!cpuid_vmx)
        return VMX_NOT_SUPPORTED;
    /* Unlocked: the core sets the enable bit and the lock itself. */
    if ((feature_control & FEATURE_CONTROL_LOCK) &&
        !(feature_control & FEATURE_CONTROL_VMX_OUTSIDE_SMX))
        return VMX_DISABLED_BY_FIRMWARE;
    return VMX_USABLE;
}

#ifndef KEEL_HOST_TEST
void vmx_check_boot_cpu(struct vmx_check *out)
{
    struct cpuid_regs r = cpuid(0, 0);
    memset(out, 0, sizeof(*out));
    memcpy(out->vendor + 0, &r.ebx, 4);
    memcpy(out->vendor + 4, &r.edx, 4);
    memcpy(out->vendor + 8, &r.ecx, 4);

    bool vmx = r.eax >= 1 && (cpuid(1, 0).ecx & CPUID1_ECX_VMX);
    /* The MSR exists only when VMX (or SMX) is reported: reading it otherwise #GPs. */
    if (vmx) {
        out->feature_control = rdmsr(MSR_IA32_FEATURE_CONTROL);
        out->feature_control_read = true;
    }
    out->state = vmx_state_from(vmx, out->feature_control);
}
#endif
