/* RDMSR/WRMSR that the MSR bitmap sends to Keel. Every MSR the guest may use is listed
 * here with where its value lives; anything else raises #GP in the guest, as an
 * unimplemented MSR does on hardware. */
#include "vmm/exit_handlers.h"
#include "arch/x86/cpu.h"
#include "arch/x86/extable.h"
#include "arch/x86/msr.h"

#ifdef KEEL_HOST_TEST
/* WRMSR faults in a host process: host tests record the write-through instead. */
bool host_test_wrmsr(uint32_t msr, uint64_t val);
#define wrmsr_safe host_test_wrmsr
#endif

#define MSR_TSC 0x10
#define MSR_BIOS_SIGN_ID 0x8b /* the loaded microcode's revision */
#define MSR_SYSENTER_CS 0x174
#define MSR_SYSENTER_ESP 0x175
#define MSR_SYSENTER_EIP 0x176
#define MSR_MCG_CAP 0x179
#define MSR_MCG_STATUS 0x17a
#define MSR_MISC_ENABLE 0x1a0
/* Fast strings on (Linux turns off its REP MOVS/STOS string functions without it); no
 * branch trace store, no PEBS. MONITOR/MWAIT stays off, as CPUID says. */
#define MISC_ENABLE_VALUE (BIT(0) | BIT(11) | BIT(12))
#define MSR_MTRR_CAP 0xfe
#define MSR_MTRR_DEF_TYPE 0x2ff
/* MTRRdefType: the default memory type (UC 0 or WB 6), FE (bit 10), E (bit 11). */
#define MTRR_DEF_TYPE_WRITABLE (0xffull | BIT(10) | BIT(11))
#define MTRR_TYPE_UC 0
#define MTRR_TYPE_WB 6

#define EFER_ALLOWED (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)

static bool canonical(uint64_t a)
{
    return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

/* A PAT entry may hold UC, WC, WT, WP, WB or UC- (0, 1, 4, 5, 6, 7). */
static bool pat_valid(uint64_t pat)
{
    for (int i = 0; i < 8; i++) {
        uint8_t t = (pat >> (i * 8)) & 0xff;
        if (t == 2 || t == 3 || t > 7)
            return false;
    }
    return true;
}

static bool read_msr(struct vcpu *v, uint32_t msr, uint64_t *val)
{
    switch (msr) {
    case MSR_IA32_EFER: *val = vcpu_get(v, VCPU_REG_EFER); return true;
    case MSR_IA32_PAT: *val = vcpu_get(v, VCPU_REG_PAT); return true;
    case MSR_SYSENTER_CS: *val = vcpu_get(v, VCPU_REG_SYSENTER_CS); return true;
    case MSR_SYSENTER_ESP: *val = vcpu_get(v, VCPU_REG_SYSENTER_ESP); return true;
    case MSR_SYSENTER_EIP: *val = vcpu_get(v, VCPU_REG_SYSENTER_EIP); return true;
    case MSR_FS_BASE: *val = vcpu_get(v, VCPU_REG_FS_BASE); return true;
    case MSR_GS_BASE: *val = vcpu_get(v, VCPU_REG_GS_BASE); return true;
    case MSR_KERNEL_GS_BASE: *val = v->arch.msr_kernel_gs_base; return true;
    case MSR_STAR: *val = v->arch.msr_star; return true;
    case MSR_LSTAR: *val = v->arch.msr_lstar; return true;
    case MSR_CSTAR: *val = v->arch.msr_cstar; return true;
    case MSR_FMASK: *val = v->arch.msr_fmask; return true;
    /* Locked with VMX off: what a guest on a machine without VT-x sees. */
    case MSR_IA32_FEATURE_CONTROL: *val = FEATURE_CONTROL_LOCK; return true;
    case MSR_TSC_AUX: *val = v->arch.msr_tsc_aux; return true;
    case MSR_MCG_CAP:
    case MSR_MCG_STATUS: *val = 0; return true;
    /* No microcode update was loaded: revision 0, as the writes below leave it. */
    case MSR_BIOS_SIGN_ID: *val = 0; return true;
    case MSR_MISC_ENABLE: *val = MISC_ENABLE_VALUE; return true;
    /* MTRRs with no variable and no fixed ranges: only the default type, which the VM's
     * EPT (write-back RAM) makes the truth whatever the guest writes there. */
    case MSR_MTRR_CAP: *val = 0; return true;
    case MSR_MTRR_DEF_TYPE: *val = v->mtrr_def_type; return true;
    default:
        /* IA32_APIC_BASE, TSC_DEADLINE and the x2APIC registers: the vCPU's LAPIC. */
        return vlapic_msr_ours(msr) && vlapic_rdmsr(&v->lapic, msr, val) == VLAPIC_OK;
    }
}

/* MSRs that only this CPU's hardware holds are written through at once (the vCPU is
 * loaded here) and swapped on vCPU switches; see swap_in in arch/x86/vmx/vmx_vcpu.c. The values are
 * checked first; the _safe write makes a check that misses a CPU rule the guest's #GP. */
static bool write_through(uint64_t *copy, uint32_t msr, uint64_t val)
{
    if (!wrmsr_safe(msr, val))
        return false;
    *copy = val;
    return true;
}

static bool write_msr(struct vcpu *v, uint32_t msr, uint64_t val)
{
    switch (msr) {
    case MSR_IA32_EFER: {
        if (val & ~(uint64_t)EFER_ALLOWED)
            return false;
        /* LMA is the CPU's to set; keep it as the current mode says. */
        uint64_t cur = vcpu_get(v, VCPU_REG_EFER);
        val = (val & ~(uint64_t)EFER_LMA) | (cur & EFER_LMA);
        if ((vcpu_guest_cr0(v) & CR0_PG) && ((val ^ cur) & EFER_LME))
            return false; /* changing LME with paging on is #GP on hardware */
        vcpu_set(v, VCPU_REG_EFER, val);
        return true;
    }
    case MSR_IA32_PAT:
        if (!pat_valid(val))
            return false;
        vcpu_set(v, VCPU_REG_PAT, val);
        return true;
    case MSR_SYSENTER_CS: vcpu_set(v, VCPU_REG_SYSENTER_CS, (uint32_t)val); return true;
    case MSR_SYSENTER_ESP:
        if (!canonical(val))
            return false;
        vcpu_set(v, VCPU_REG_SYSENTER_ESP, val);
        return true;
    case MSR_SYSENTER_EIP:
        if (!canonical(val))
            return false;
        vcpu_set(v, VCPU_REG_SYSENTER_EIP, val);
        return true;
    case MSR_FS_BASE:
        if (!canonical(val))
            return false;
        vcpu_set(v, VCPU_REG_FS_BASE, val);
        return true;
    case MSR_GS_BASE:
        if (!canonical(val))
            return false;
        vcpu_set(v, VCPU_REG_GS_BASE, val);
        return true;
    case MSR_KERNEL_GS_BASE: return canonical(val) && write_through(&v->arch.msr_kernel_gs_base, msr, val);
    case MSR_LSTAR: return canonical(val) && write_through(&v->arch.msr_lstar, msr, val);
    case MSR_CSTAR: return canonical(val) && write_through(&v->arch.msr_cstar, msr, val);
    case MSR_STAR: return write_through(&v->arch.msr_star, msr, val);
    case MSR_FMASK: return write_through(&v->arch.msr_fmask, msr, val & 0xffffffffull);
    /* RDTSCP reads it without an exit, so it lives in the CPU while the vCPU runs. */
    case MSR_TSC_AUX: return !(val >> 32) && write_through(&v->arch.msr_tsc_aux, msr, val);
    /* Kernels write 0 and run CPUID(1) to have the revision reported: there is none to
     * report, so the write changes nothing. */
    case MSR_BIOS_SIGN_ID: return true;
    /* Its bits are the platform's, not the guest's: a write may only keep them. */
    case MSR_MISC_ENABLE: return val == MISC_ENABLE_VALUE;
    case MSR_MTRR_DEF_TYPE: {
        uint8_t type = val & 0xff;
        if ((val & ~MTRR_DEF_TYPE_WRITABLE) || (type != MTRR_TYPE_UC && type != MTRR_TYPE_WB))
            return false;
        v->mtrr_def_type = val;
        return true;
    }
    default:
        if (vlapic_msr_ours(msr)) {
            /* An EOI, a TPR, an IPI or a timer may change what the vCPU gets next. */
            v->arch.recheck = 1;
            return vlapic_wrmsr(&v->lapic, msr, val) == VLAPIC_OK;
        }
        /* FEATURE_CONTROL is locked; the TSC and the rest belong to Keel. */
        return false;
    }
}

/* A guest's #GP on an MSR is its own business, but a kernel that trips over one should
 * be diagnosable from Keel's log: the first few MSRs per VM are named once (a bad value
 * for a known MSR is #GP too and named the same way). Several vCPUs may get here at
 * once; at worst an MSR is named twice. */
static void log_refused(struct vcpu *v, uint32_t msr, bool write, uint64_t val)
{
    struct vm *vm = v->vm;
    uint32_t n = __atomic_load_n(&vm->msrs_logged_count, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < n && i < VM_MSRS_LOGGED; i++)
        if (vm->msrs_logged[i] == msr)
            return;
    if (n >= VM_MSRS_LOGGED) {
        __atomic_add_fetch(&vm->msrs_unlogged, 1, __ATOMIC_RELAXED);
        return;
    }
    vm->msrs_logged[n] = msr;
    __atomic_store_n(&vm->msrs_logged_count, n + 1, __ATOMIC_RELAXED);
    if (write)
        kprintf("VM %s: vCPU %u: WRMSR 0x%x value 0x%lx refused: #GP (logged once)\n", vm->name, v->id, msr, val);
    else
        kprintf("VM %s: vCPU %u: RDMSR 0x%x of an MSR Keel does not offer: #GP (logged once)\n", vm->name, v->id, msr);
}

enum exit_action exit_rdmsr(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    uint64_t val;
    if (!read_msr(v, (uint32_t)v->arch.regs.rcx, &val)) {
        log_refused(v, (uint32_t)v->arch.regs.rcx, false, 0);
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    v->arch.regs.rax = (uint32_t)val;
    v->arch.regs.rdx = val >> 32;
    return EXIT_NEXT;
}

enum exit_action exit_wrmsr(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    uint64_t val = ((uint64_t)(uint32_t)v->arch.regs.rdx << 32) | (uint32_t)v->arch.regs.rax;
    if (!write_msr(v, (uint32_t)v->arch.regs.rcx, val)) {
        log_refused(v, (uint32_t)v->arch.regs.rcx, true, val);
        vcpu_inject_gp(v);
        return EXIT_RESUME;
    }
    return EXIT_NEXT;
}
