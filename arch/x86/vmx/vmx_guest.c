/* Guest state as the generic handlers see it, read from and written to the current
 * VMCS, and exception injection: the register half of the VMX backend's interface.
 * Apart from vmx_vcpu.c (VMCS set-up and the run loop) so host tests can link it with
 * a fake VMCS. */
#include "arch/x86/vmx/vmx_guest.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_controls.h"
#include "vmm/lib/string.h"

/* Guest activity states (SDM vol. 3, 25.4.2). */
#define VMX_ACTIVITY_ACTIVE 0
#define VMX_ACTIVITY_HLT 1

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
    [VCPU_REG_CS_BASE] = VMCS_GUEST_CS_BASE,
    [VCPU_REG_INTERRUPTIBILITY] = VMCS_GUEST_INTERRUPTIBILITY,
};

uint64_t vmx_get_reg(struct vcpu *v, enum vcpu_reg r)
{
    (void)v;
    switch (r) {
    case VCPU_REG_CR0: return guest_view(VMCS_GUEST_CR0, VMCS_CR0_GUEST_HOST_MASK, VMCS_CR0_READ_SHADOW);
    case VCPU_REG_CR4: return guest_view(VMCS_GUEST_CR4, VMCS_CR4_GUEST_HOST_MASK, VMCS_CR4_READ_SHADOW);
    case VCPU_REG_EFER: return vmcs_read64(VMCS_GUEST_IA32_EFER);
    case VCPU_REG_CPL: return (vmcs_read32(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3;
    case VCPU_REG_CS_DB: return (vmcs_read32(VMCS_GUEST_CS_ACCESS_RIGHTS) >> 14) & 1;
    /* The VMCS does not hold CR2: while the vCPU is loaded it is the CPU's own. */
    case VCPU_REG_CR2: return read_cr2();
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
    case VCPU_REG_CR2: write_cr2(val); return;
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

#define RFLAGS_IF BIT(9)
#define ENTRY_TYPE_EXT_INTR (0u << 8)
#define ENTRY_TYPE_NMI (2u << 8)
#define BLOCKING_STI BIT(0)
#define BLOCKING_MOV_SS BIT(1)
#define BLOCKING_NMI BIT(3)

bool vmx_can_inject(struct vcpu *v)
{
    (void)v;
    return (vmcs_readnat(VMCS_GUEST_RFLAGS) & RFLAGS_IF) &&
           !(vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) & (BLOCKING_STI | BLOCKING_MOV_SS)) &&
           !(vmcs_read32(VMCS_ENTRY_INTR_INFO) & ENTRY_INFO_VALID);
}

void vmx_inject_interrupt(struct vcpu *v, uint8_t vector)
{
    (void)v;
    vmcs_write32(VMCS_ENTRY_INTR_INFO, ENTRY_INFO_VALID | ENTRY_TYPE_EXT_INTR | vector);
    /* A halted guest resumes with the interrupt (SDM vol. 3, 26.6.2). */
    if (vmcs_read32(VMCS_GUEST_ACTIVITY_STATE) == VMX_ACTIVITY_HLT)
        vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
}

bool vmx_inject_nmi(struct vcpu *v)
{
    (void)v;
    if ((vmcs_read32(VMCS_GUEST_INTERRUPTIBILITY) & (BLOCKING_NMI | BLOCKING_MOV_SS)) ||
        (vmcs_read32(VMCS_ENTRY_INTR_INFO) & ENTRY_INFO_VALID))
        return false;
    vmcs_write32(VMCS_ENTRY_INTR_INFO, ENTRY_INFO_VALID | ENTRY_TYPE_NMI | 2);
    return true;
}

void vmx_interrupt_window(struct vcpu *v, bool on)
{
    (void)v;
    uint32_t proc = vmcs_read32(VMCS_PROC_BASED_CONTROLS);
    uint32_t want = on ? proc | VMX_PROC_CTL_INTERRUPT_WINDOW_EXITING : proc & ~VMX_PROC_CTL_INTERRUPT_WINDOW_EXITING;
    if (want != proc)
        vmcs_write32(VMCS_PROC_BASED_CONTROLS, want);
}

bool vmx_nmi_window_ok;
bool vmx_unrestricted_ok;

bool vmx_nmi_window(struct vcpu *v, bool on)
{
    (void)v;
    if (!vmx_nmi_window_ok)
        return false;
    uint32_t proc = vmcs_read32(VMCS_PROC_BASED_CONTROLS);
    uint32_t want = on ? proc | VMX_PROC_CTL_NMI_WINDOW_EXITING : proc & ~VMX_PROC_CTL_NMI_WINDOW_EXITING;
    if (want != proc)
        vmcs_write32(VMCS_PROC_BASED_CONTROLS, want);
    return true;
}

static void set_real_segment(uint32_t sel_f, uint32_t base_f, uint32_t limit_f, uint32_t ar_f, uint16_t sel,
                             uint32_t ar)
{
    vmcs_write16(sel_f, sel);
    vmcs_writenat(base_f, (uint64_t)sel << 4);
    vmcs_write32(limit_f, 0xffff);
    vmcs_write32(ar_f, ar);
}
#define REAL_SEG(name, sel, ar)                                                                           \
    set_real_segment(VMCS_GUEST_##name##_SELECTOR, VMCS_GUEST_##name##_BASE, VMCS_GUEST_##name##_LIMIT, \
                     VMCS_GUEST_##name##_ACCESS_RIGHTS, sel, ar)

/* The state INIT leaves (SDM vol. 3, table 10-1), except CS:IP, which the SIPI sets:
 * real mode, paging and caches as at reset, the general registers cleared (EDX would
 * hold the processor signature; 0 here). */
void vmx_init_vcpu(struct vcpu *v)
{
    struct vcpu_arch *a = vcpu_arch(v);
    memset(&a->regs, 0, sizeof(a->regs));
    REAL_SEG(CS, 0xf000, 0x9b);
    vmcs_writenat(VMCS_GUEST_CS_BASE, 0xffff0000ull);
    REAL_SEG(SS, 0, 0x93);
    REAL_SEG(DS, 0, 0x93);
    REAL_SEG(ES, 0, 0x93);
    REAL_SEG(FS, 0, 0x93);
    REAL_SEG(GS, 0, 0x93);
    vmcs_write16(VMCS_GUEST_LDTR_SELECTOR, 0);
    vmcs_writenat(VMCS_GUEST_LDTR_BASE, 0);
    vmcs_write32(VMCS_GUEST_LDTR_LIMIT, 0xffff);
    vmcs_write32(VMCS_GUEST_LDTR_ACCESS_RIGHTS, 0x82);
    vmcs_write16(VMCS_GUEST_TR_SELECTOR, 0);
    vmcs_writenat(VMCS_GUEST_TR_BASE, 0);
    vmcs_write32(VMCS_GUEST_TR_LIMIT, 0xffff);
    vmcs_write32(VMCS_GUEST_TR_ACCESS_RIGHTS, 0x8b);
    vmcs_writenat(VMCS_GUEST_GDTR_BASE, 0);
    vmcs_write32(VMCS_GUEST_GDTR_LIMIT, 0xffff);
    vmcs_writenat(VMCS_GUEST_IDTR_BASE, 0);
    vmcs_write32(VMCS_GUEST_IDTR_LIMIT, 0xffff);
    vmx_set_reg(v, VCPU_REG_EFER, 0);
    vmx_set_reg(v, VCPU_REG_CR0, 0x60000010ull); /* CD, NW, ET */
    vmx_set_reg(v, VCPU_REG_CR4, 0);
    vmcs_writenat(VMCS_GUEST_CR3, 0);
    vmcs_writenat(VMCS_GUEST_RIP, 0xfff0);
    vmcs_writenat(VMCS_GUEST_RSP, 0);
    vmcs_writenat(VMCS_GUEST_RFLAGS, 0x2);
    vmcs_writenat(VMCS_GUEST_DR7, 0x400);
    vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmcs_write32(VMCS_ENTRY_INTR_INFO, 0);
    /* Not the CPU's wait-for-SIPI activity state, which not every CPU offers: the
     * generic side keeps the vCPU off every CPU until its SIPI. */
    vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
    /* Real mode needs unrestricted guest, which a 64-bit VM's vCPUs start without. */
    uint32_t proc2 = vmcs_read32(VMCS_PROC_BASED_CONTROLS2);
    if (vmx_unrestricted_ok && !(proc2 & VMX_PROC2_CTL_UNRESTRICTED_GUEST))
        vmcs_write32(VMCS_PROC_BASED_CONTROLS2, proc2 | VMX_PROC2_CTL_UNRESTRICTED_GUEST);
    a->cr2 = 0;
    a->dr6 = 0xffff0ff0ull;
}

void vmx_start_at_sipi(struct vcpu *v, uint8_t vector)
{
    (void)v;
    REAL_SEG(CS, (uint16_t)vector << 8, 0x9b);
    vmcs_writenat(VMCS_GUEST_RIP, 0);
    vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, VMX_ACTIVITY_ACTIVE);
}
