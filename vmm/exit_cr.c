/* MOV to/from CR0, CR4 and CR8. The guest/host masks trap every bit VMX pins or the CPU
 * lacks; the read shadows make the guest see what it wrote. CR8 always exits: it is
 * the vCPU's own TPR, never the host APIC's. */
#include "vmm/exit_dispatch.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_controls.h"

#define CRQ_NUM(q) ((q) & 15)
#define CRQ_TYPE(q) (((q) >> 4) & 3)
#define CRQ_REG(q) (((q) >> 8) & 15)
#define CRQ_LMSW_SRC(q) ((q) >> 16 & 0xffff)
#define CR_TYPE_MOV_TO 0
#define CR_TYPE_MOV_FROM 1
#define CR_TYPE_CLTS 2
#define CR_TYPE_LMSW 3

/* CR0 bits the architecture defines (PE MP EM TS ET NE WP AM NW CD PG); setting any
 * other is #GP. */
#define CR0_DEFINED 0xe005003full

static uint64_t *gpr(struct vcpu *v, unsigned n)
{
    uint64_t *regs[16] = {&v->regs.rax, &v->regs.rcx, &v->regs.rdx, &v->regs.rbx, NULL, &v->regs.rbp,
                          &v->regs.rsi, &v->regs.rdi, &v->regs.r8, &v->regs.r9, &v->regs.r10, &v->regs.r11,
                          &v->regs.r12, &v->regs.r13, &v->regs.r14, &v->regs.r15};
    return regs[n];
}

static uint64_t read_reg(struct vcpu *v, unsigned n)
{
    return n == 4 ? vmcs_readnat(VMCS_GUEST_RSP) : *gpr(v, n);
}

static void write_reg(struct vcpu *v, unsigned n, uint64_t val)
{
    if (n == 4)
        vmcs_writenat(VMCS_GUEST_RSP, val);
    else
        *gpr(v, n) = val;
}

/* Paging on with EFER.LME set is how a guest enters long mode; under VMX Keel must
 * flip EFER.LMA and the "IA-32e mode guest" entry control itself. */
static bool set_cr0(struct vcpu *v, uint64_t val)
{
    if ((val & ~CR0_DEFINED) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)))
        return false;
    uint64_t old = vcpu_guest_cr0(v);
    uint64_t efer = vmcs_read64(VMCS_GUEST_IA32_EFER);
    uint32_t entry = vmcs_read32(VMCS_ENTRY_CONTROLS);
    if ((val & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME)) {
        if (!(vcpu_guest_cr4(v) & CR4_PAE))
            return false;
        vmcs_write64(VMCS_GUEST_IA32_EFER, efer | EFER_LMA);
        vmcs_write32(VMCS_ENTRY_CONTROLS, entry | VMX_ENTRY_CTL_IA32E_MODE_GUEST);
    } else if (!(val & CR0_PG) && (old & CR0_PG) && (efer & EFER_LMA)) {
        vmcs_write64(VMCS_GUEST_IA32_EFER, efer & ~(uint64_t)EFER_LMA);
        vmcs_write32(VMCS_ENTRY_CONTROLS, entry & ~VMX_ENTRY_CTL_IA32E_MODE_GUEST);
    }
    vmcs_writenat(VMCS_CR0_READ_SHADOW, val);
    vmcs_writenat(VMCS_GUEST_CR0, vcpu_real_cr0(val));
    return true;
}

static bool set_cr4(uint64_t val)
{
    /* Reserved bits, features this CPU lacks (UMIP, LA57, PKE...) and VMX/SMX, which
     * CPUID hides, are #GP as on a CPU without them: never a bit the guest only
     * believes it has. */
    if (val & ~vcpu_cr4_guest_allowed())
        return false;
    if ((vmcs_read64(VMCS_GUEST_IA32_EFER) & EFER_LMA) && !(val & CR4_PAE))
        return false;
    vmcs_writenat(VMCS_CR4_READ_SHADOW, val);
    vmcs_writenat(VMCS_GUEST_CR4, vcpu_real_cr4(val));
    return true;
}

enum exit_action handle_cr_access(struct vcpu *v, const struct vmexit *e)
{
    uint64_t q = e->qualification;
    unsigned cr = CRQ_NUM(q), reg = CRQ_REG(q);
    bool ok = true;
    switch (CRQ_TYPE(q)) {
    case CR_TYPE_MOV_TO:
        if (cr == 0)
            ok = set_cr0(v, read_reg(v, reg));
        else if (cr == 4)
            ok = set_cr4(read_reg(v, reg));
        else if (cr == 8 && read_reg(v, reg) <= 15)
            v->tpr = (uint8_t)read_reg(v, reg);
        else
            ok = false;
        break;
    case CR_TYPE_MOV_FROM:
        if (cr == 8)
            write_reg(v, reg, v->tpr);
        else
            ok = false; /* CR0/CR4 reads never exit; CR3 exiting is off */
        break;
    case CR_TYPE_CLTS:
        ok = set_cr0(v, vcpu_guest_cr0(v) & ~(uint64_t)BIT(3));
        break;
    case CR_TYPE_LMSW: {
        /* LMSW writes CR0 bits 3:0 but can never clear PE. */
        uint64_t cur = vcpu_guest_cr0(v);
        uint64_t src = CRQ_LMSW_SRC(q) & 0xf;
        ok = set_cr0(v, (cur & ~0xeull) | src | (cur & CR0_PE));
        break;
    }
    }
    if (!ok) {
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    vcpu_skip_instruction(v);
    return EXIT_RESUME;
}
