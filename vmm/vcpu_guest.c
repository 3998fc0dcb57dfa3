/* The guest's view of its own state, read from the current VMCS, and exception
 * injection: the vCPU helpers exit handlers use. Apart from vcpu.c (VMCS set-up and the
 * run loop) so host tests can link them with a fake VMCS. */
#include "vmm/vcpu.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_controls.h"

/* VM-entry interruption-information field (SDM vol. 3, "VM-Entry Controls for Event
 * Injection"). */
#define ENTRY_INFO_VALID BIT(31)
#define ENTRY_TYPE_HW_EXCEPTION (3u << 8)
#define ENTRY_DELIVER_ERROR BIT(11)

void vcpu_inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
    (void)v;
    uint32_t info = ENTRY_INFO_VALID | ENTRY_TYPE_HW_EXCEPTION | vector;
    if (has_error) {
        info |= ENTRY_DELIVER_ERROR;
        vmcs_write32(VMCS_ENTRY_EXCEPTION_ERROR_CODE, error);
    }
    vmcs_write32(VMCS_ENTRY_INTR_INFO, info);
}

uint64_t vcpu_guest_cr0(const struct vcpu *v)
{
    (void)v;
    uint64_t mask = vmcs_readnat(VMCS_CR0_GUEST_HOST_MASK);
    return (vmcs_readnat(VMCS_GUEST_CR0) & ~mask) | (vmcs_readnat(VMCS_CR0_READ_SHADOW) & mask);
}

uint64_t vcpu_guest_cr4(const struct vcpu *v)
{
    (void)v;
    uint64_t mask = vmcs_readnat(VMCS_CR4_GUEST_HOST_MASK);
    return (vmcs_readnat(VMCS_GUEST_CR4) & ~mask) | (vmcs_readnat(VMCS_CR4_READ_SHADOW) & mask);
}

bool vcpu_guest_64bit(const struct vcpu *v)
{
    (void)v;
    return (vmcs_read32(VMCS_ENTRY_CONTROLS) & VMX_ENTRY_CTL_IA32E_MODE_GUEST) &&
           (vmcs_read32(VMCS_GUEST_CS_ACCESS_RIGHTS) & BIT(13));
}

unsigned vcpu_guest_cpl(const struct vcpu *v)
{
    (void)v;
    return (vmcs_read32(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3;
}
