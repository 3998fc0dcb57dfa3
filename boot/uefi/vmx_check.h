/* Can the boot CPU run VMX? Asked before ExitBootServices, while a clear message
 * can still reach the screen. */
#ifndef KEEL_BOOT_UEFI_VMX_CHECK_H
#define KEEL_BOOT_UEFI_VMX_CHECK_H

#include "vmm/lib/types.h"

enum vmx_state {
    VMX_USABLE,              /* supported; enabled, or unlocked for the core to enable */
    VMX_NOT_SUPPORTED,       /* CPUID.1:ECX.VMX[bit 5] = 0 */
    VMX_DISABLED_BY_FIRMWARE /* IA32_FEATURE_CONTROL locked with VMX-outside-SMX clear */
};

struct vmx_check {
    enum vmx_state state;
    bool feature_control_read;
    uint64_t feature_control; /* valid if feature_control_read */
    char vendor[13];          /* CPUID.0 vendor string */
};

void vmx_check_boot_cpu(struct vmx_check *out);

/* The decision alone, from the CPUID bit and the MSR value (host-testable). */
enum vmx_state vmx_state_from(bool cpuid_vmx, uint64_t feature_control);

#endif
