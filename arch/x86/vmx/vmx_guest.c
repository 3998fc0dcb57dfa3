/* Guest state as the generic handlers see it, read from and written to the current
 * VMCS, and exception injection: the register half of the VMX backend's interface.
 * Apart from vmx_vcpu.c (VMCS set-up and the run loop) so host tests can link it with
 * a fake VMCS. */
#include "arch/x86/vmx/vmx_guest.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_controls.h"

/* VM-entry interruption-information field (SDM vol. 3, "VM-Entry Controls for Event
 * Injection"). */
#define ENTRY_INFO_VALID BIT(31)
#define ENTRY_TYPE_HW_EXCEPTION (3u << 8)
#define ENTRY_DELIVER_ERROR BIT(11)
#define AR_CS_L BIT(13)

struct vmx_fixed_bits vmx_fixed;

void vmx_inject_exception(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error)
{
    (void)v; /* its VMCS is the current one */
    uint32_t info = ENTRY_INFO_VALID | ENTRY_TYPE_HW_EXCEPTION | vector;
    if (has_error) {
        info |= ENTRY_DELIVER_ERROR;
        vmcs_write32(VMCS_ENTRY_EXCEPTION_ERROR_CODE, error);
    }
    vmcs_write32(VMCS_ENTRY_INTR_INFO, info);
}

/* Guest-visible CR0/CR4 values become real ones with VMX's fixed bits applied. */
uint64_t vmx_real_cr0(uint64_t guest_view)
{
    return (guest_view | vmx_fixed.cr0_fixed0) & vmx_fixed.cr0_fixed1;
}

uint64_t vmx_real_cr4(uint64_t guest_view)
{
    return (guest_view | vmx_fixed.cr4_fixed0 | CR4_VMXE) & vmx_fixed.cr4_fixed1;
}

uint64_t vmx_cr4_guest_allowed(void)
{
    return vmx_fixed.cr4_fixed1 & 0xffffffffull & ~(uint64_t)(CR4_VMXE | CR4_SMXE);
}

/* The guest's view: bits the guest/host mask owns come from the read shadow. */
static uint64_t guest_view(uint32_t real, uint32_t mask, uint32_t shadow)
{
    uint64_t m = vmcs_readnat(mask);
    return (vmcs_readnat(real) & ~m) | (vmcs_readnat(shadow) & m);
}

/* Fields that hold a register as it is, by enum vcpu_reg; 0 for the others. */
static const uint32_t plain_field[VCPU_REG_COUNT] = {
    [VCPU_REG_RIP] = VMCS_GUEST_RIP,
    [VCPU_REG_RSP] = VMCS_GUEST_RSP,
    [VCPU_REG_RFLAGS] = VMCS_GUEST_RFLAGS,
    [VCPU_REG_CR3] = VMCS_GUEST_CR3,
    [VCPU_REG_PAT] = VMCS_GUEST_IA32_PAT,
    [VCPU_REG_SYSENTER_CS] = VMCS_GUEST_IA32_SYSENTER_CS,
    [VCPU_REG_SYSENTER_ESP] = VMCS_GUEST_IA32_SYSENTER_ESP,
    [VCPU_REG_SYSENTER_EIP] = VMCS_GUEST_IA32_SYSENTER_EIP,
    [VCPU_REG_FS_BASE] = VMCS_GUEST_FS_BASE,
    [VCPU_REG_GS_BASE] = VMCS_GUEST_GS_BASE,
};

uint64_t vmx_get_reg(struct vcpu *v, enum vcpu_reg r)
{
    (void)v;
    switch (r) {
    case VCPU_REG_CR0: return guest_view(VMCS_GUEST_CR0, VMCS_CR0_GUEST_HOST_MASK, VMCS_CR0_READ_SHADOW);
    case VCPU_REG_CR4: return guest_view(VMCS_GUEST_CR4, VMCS_CR4_GUEST_HOST_MASK, VMCS_CR4_READ_SHADOW);
    case VCPU_REG_EFER: return vmcs_read64(VMCS_GUEST_IA32_EFER);
    case VCPU_REG_CPL: return (vmcs_read32(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3;
    case VCPU_REG_CODE64:
        return (vmcs_read32(VMCS_ENTRY_CONTROLS) & VMX_ENTRY_CTL_IA32E_MODE_GUEST) &&
               (vmcs_read32(VMCS_GUEST_CS_ACCESS_RIGHTS) & AR_CS_L);
    default: break;
    }
    uint32_t f = (unsigned)r < VCPU_REG_COUNT ? plain_field[r] : 0;
    if (!f)
        return 0;
    switch (VMCS_ACCESS_WIDTH(f)) {
    case VMCS_WIDTH_32: return vmcs_read32(f);
    case VMCS_WIDTH_64: return vmcs_read64(f);
    default: return vmcs_readnat(f);
    }
}

void vmx_set_reg(struct vcpu *v, enum vcpu_reg r, uint64_t val)
{
    (void)v;
    switch (r) {
    case VCPU_REG_CR0:
        vmcs_writenat(VMCS_CR0_READ_SHADOW, val);
        vmcs_writenat(VMCS_GUEST_CR0, vmx_real_cr0(val));
        return;
    case VCPU_REG_CR4:
        vmcs_writenat(VMCS_CR4_READ_SHADOW, val);
        vmcs_writenat(VMCS_GUEST_CR4, vmx_real_cr4(val));
        return;
    case VCPU_REG_EFER: {
        /* Under VMX the "IA-32e mode guest" entry control is what makes EFER.LMA true
         * at the next entry, so the two change together. */
        uint32_t entry = vmcs_read32(VMCS_ENTRY_CONTROLS);
        uint32_t want = (val & EFER_LMA) ? entry | VMX_ENTRY_CTL_IA32E_MODE_GUEST
                                         : entry & ~VMX_ENTRY_CTL_IA32E_MODE_GUEST;
        if (want != entry)
            vmcs_write32(VMCS_ENTRY_CONTROLS, want);
        vmcs_write64(VMCS_GUEST_IA32_EFER, val);
        return;
    }
    default: break;
    }
    uint32_t f = (unsigned)r < VCPU_REG_COUNT ? plain_field[r] : 0;
    if (!f)
        return; /* CPL and CODE64 follow from segment state, never written alone */
    switch (VMCS_ACCESS_WIDTH(f)) {
    case VMCS_WIDTH_32: vmcs_write32(f, (uint32_t)val); return;
    case VMCS_WIDTH_64: vmcs_write64(f, val); return;
    default: vmcs_writenat(f, val); return;
    }
}
