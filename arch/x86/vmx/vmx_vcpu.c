/* The VMX backend (arch/x86/vcpu_backend.h): global VMX set-up, a VM's EPT, a vCPU's
 * VMCS, moving a vCPU onto a CPU, and the run loop. The run loop is Keel's hot path:
 * per exit it costs the exit stub, one VMREAD of the exit reason, a table call (none for
 * a CPUID leaf the vCPU keeps, a direct call for a hypercall), two RDTSCs, the counters
 * and the exit's duration in the statistics, and nothing else unless a handler asks
 * for more. */
#include "arch/x86/vcpu_backend.h"
#include "arch/x86/vmx/vmx_exit.h"
#include "arch/x86/vmx/vmx_guest.h"
#include "arch/x86/vmx/vmx_cpu.h"
#include "arch/x86/vmx/vmx_errors.h"
#include "arch/x86/vmx/ept.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/paging.h"
#include "arch/x86/percpu.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "arch/x86/vmx/vmx_controls.h"
#include "arch/x86/vmx/vmx_insn.h"
#include "arch/x86/xsave.h"
#include "vmm/lib/console.h"
#include "vmm/lib/page_alloc.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/string.h"

extern char vmx_exit_stub[];

/* vmx_entry.asm. It is called from an asm statement because it keeps no register: the
 * compiler keeps across it just what the run loop still needs (mostly by reloading it),
 * rather than the assembly saving and restoring callee-saved registers on each exit.
 * RBX, where it takes the vCPU, comes back as it went in (the assembly finds the vCPU
 * from its stack pointer), so the compiler may keep the vCPU pointer there for the whole
 * loop, with no saving and no moving; the assembly reads and sets vmx.launched itself.
 * True after an exit, with *t_exit the low half of the TSC read right after it; false
 * if the entry failed, with *fail 1 (VMfailInvalid) or 2 (VMfailValid). The answer
 * comes in the flags, so the exit path spends no instruction making it. */
static inline __attribute__((always_inline)) bool vmx_enter(struct vcpu *v, uint32_t *t_exit, uint32_t *fail)
{
    bool exited;
    uint32_t tsc, rc;
    __asm__ volatile("call vmx_enter"
                     : "=@cca"(exited), "=d"(rc), "=a"(tsc)
                     : "b"(v)
                     : "rdi", "rcx", "rsi", "rbp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "memory");
    *t_exit = tsc;
    *fail = rc;
    return exited;
}

/* An entry of a VM-exit MSR-store area (SDM Vol. 3C 25.7.2): 16-byte aligned. */
struct vmx_msr_entry {
    uint32_t index;
    uint32_t reserved;
    uint64_t value;
} ALIGNED(16);

static struct vmx_controls controls;
static hpa_t io_bitmap_a, io_bitmap_b, msr_bitmap;
static uint16_t next_vpid = 1;
static uint32_t fpu_area_size; /* XSAVE area for all components, 0: FXSAVE only */
static uint64_t xcr0_supported; /* every XCR0 component: what swap_in saves and restores */
static spinlock_t vpid_lock = SPINLOCK_INIT;

#define AR_UNUSABLE BIT(16)
#define AR_CODE32 0xc09b  /* present, code exec/read accessed, D, G */
#define AR_CODE64 0xa09b  /* ... L instead of D */
#define AR_CODE16 0x009b
#define AR_DATA32 0xc093
#define AR_DATA16 0x0093
#define AR_TSS_BUSY 0x008b

static uint64_t fpu_alloc_size(void)
{
    return ALIGN_UP(MAX(fpu_area_size, 512u), PAGE_SIZE);
}

static bool vmx_paging_off_guests(void)
{
    return controls.unrestricted_guest;
}

static uint64_t vmx_xcr0_supported(void)
{
    return xcr0_supported;
}

static hpa_t alloc_page_filled(uint8_t fill)
{
    hpa_t pa = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    if (pa)
        memset(hpa_to_hva(pa), fill, PAGE_SIZE);
    return pa;
}

static void msr_bitmap_allow(uint32_t msr, bool read, bool write)
{
    uint8_t *bm = hpa_to_hva(msr_bitmap);
    uint32_t base = msr >= 0xc0000000u ? 0x400 : 0;
    uint32_t idx = msr & 0x1fff;
    if (read)
        bm[base + idx / 8] &= (uint8_t)~(1u << (idx % 8));
    if (write)
        bm[0x800 + base + idx / 8] &= (uint8_t)~(1u << (idx % 8));
}

static bool vmx_init(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT], const struct vcpu_hypercalls *hypercalls)
{
    const struct vmx_caps *caps = vmx_boot_caps();
    char err[200];
    if (!caps) {
        kprintf("VMM: VT-x is not available on the boot CPU; no guest can run\n");
        return false;
    }
    if (vmx_controls_compute(caps, &controls, err, sizeof(err))) {
        kprintf("VMM: cannot run guests: %s\n", err);
        return false;
    }
    if (cpuid(1, 0).ecx & BIT(26)) {
        struct cpuid_regs d = cpuid(0xd, 0);
        fpu_area_size = d.ecx;
        xcr0_supported = ((uint64_t)d.edx << 32) | d.eax;
    }
    /* Every port traps: each is either emulated or reads as all-ones. */
    io_bitmap_a = alloc_page_filled(0xff);
    io_bitmap_b = alloc_page_filled(0xff);
    msr_bitmap = alloc_page_filled(0xff);
    if (!io_bitmap_a || !io_bitmap_b || !msr_bitmap) {
        kprintf("VMM: no memory for the I/O and MSR bitmaps\n");
        return false;
    }
    /* Reads that reveal nothing about Keel or other guests go straight to hardware. The
     * microcode signature, MISC_ENABLE and the MTRRs are Keel's answers (vmm/exit_msr.c):
     * the hardware's disagree with what a guest may write, or name MSRs it cannot use. */
    static const uint32_t harmless_reads[] = {0x10, 0x17, 0xce};
    for (size_t i = 0; i < ARRAY_SIZE(harmless_reads); i++)
        msr_bitmap_allow(harmless_reads[i], true, false);
    vmx_fixed.cr0_fixed0 = caps->cr0_fixed0 & ~(controls.unrestricted_guest ? (CR0_PE | CR0_PG) : 0);
    vmx_fixed.cr0_fixed1 = caps->cr0_fixed1;
    vmx_fixed.cr4_fixed0 = caps->cr4_fixed0;
    vmx_fixed.cr4_fixed1 = caps->cr4_fixed1;
    vmx_nmi_window_ok = controls.nmi_window;
    vmx_unrestricted_ok = controls.unrestricted_guest;
    vmx_exit_init(handlers, hypercalls);
    kprintf("VMM: controls pin 0x%08x proc 0x%08x proc2 0x%08x exit 0x%08x entry 0x%08x%s, preemption timer rate "
            "2^%u\n", controls.pin, controls.proc, controls.proc2, controls.exit, controls.entry,
            controls.unrestricted_guest ? ", unrestricted guest" : "", vmx_preemption_timer_rate(caps));
    return true;
}

static uint16_t alloc_vpid(void)
{
    spin_lock(&vpid_lock);
    uint16_t v = next_vpid ? next_vpid++ : 0;
    spin_unlock(&vpid_lock);
    return v;
}

static uint64_t cr0_mask(void)
{
    const struct vmx_caps *c = vmx_boot_caps();
    uint64_t fixed = c->cr0_fixed0 & ~(controls.unrestricted_guest ? (CR0_PE | CR0_PG) : 0);
    return (fixed | ~c->cr0_fixed1) & 0xffffffffull;
}

static uint64_t cr4_mask(void)
{
    const struct vmx_caps *c = vmx_boot_caps();
    return (c->cr4_fixed0 | ~c->cr4_fixed1 | CR4_VMXE) & 0xffffffffull;
}

static void set_segment(uint32_t sel_f, uint32_t base_f, uint32_t limit_f, uint32_t ar_f, uint16_t sel,
                        uint64_t base, uint32_t limit, uint32_t ar)
{
    vmcs_write16(sel_f, sel);
    vmcs_writenat(base_f, base);
    vmcs_write32(limit_f, limit);
    vmcs_write32(ar_f, ar);
}
#define SEG(name, sel, base, limit, ar)                                                              \
    set_segment(VMCS_GUEST_##name##_SELECTOR, VMCS_GUEST_##name##_BASE, VMCS_GUEST_##name##_LIMIT, \
                VMCS_GUEST_##name##_ACCESS_RIGHTS, sel, base, limit, ar)

static void write_guest_state(struct vcpu_arch *a, const struct vcpu_boot *b)
{
    uint32_t entry = controls.entry;
    uint32_t code_ar = AR_CODE32, data_ar = AR_DATA32, limit = 0xffffffff;
    uint64_t seg_base = 0;
    if (b->mode == GUEST_MODE_REAL16) {
        code_ar = AR_CODE16;
        data_ar = AR_DATA16;
        limit = 0xffff;
    } else if (b->mode == GUEST_MODE_LONG64) {
        code_ar = AR_CODE64;
        entry |= VMX_ENTRY_CTL_IA32E_MODE_GUEST;
    }
    /* Real mode: base = selector * 16, the way the CPU would have loaded it. */
    set_segment(VMCS_GUEST_CS_SELECTOR, VMCS_GUEST_CS_BASE, VMCS_GUEST_CS_LIMIT, VMCS_GUEST_CS_ACCESS_RIGHTS,
                b->cs, b->mode == GUEST_MODE_REAL16 ? (uint64_t)b->cs << 4 : 0, limit, code_ar);
    seg_base = b->mode == GUEST_MODE_REAL16 ? (uint64_t)b->ds << 4 : 0;
    SEG(SS, b->ds, seg_base, limit, data_ar);
    SEG(DS, b->ds, seg_base, limit, data_ar);
    SEG(ES, b->ds, seg_base, limit, data_ar);
    SEG(FS, b->ds, seg_base, limit, data_ar);
    SEG(GS, b->ds, seg_base, limit, data_ar);
    SEG(LDTR, 0, 0, 0, AR_UNUSABLE);
    SEG(TR, 0, 0, 0xffff, AR_TSS_BUSY);
    vmcs_writenat(VMCS_GUEST_GDTR_BASE, b->gdt_base);
    vmcs_write32(VMCS_GUEST_GDTR_LIMIT, b->gdt_base ? b->gdt_limit : 0xffff);
    vmcs_writenat(VMCS_GUEST_IDTR_BASE, 0);
    vmcs_write32(VMCS_GUEST_IDTR_LIMIT, 0xffff);

    vmcs_writenat(VMCS_CR0_GUEST_HOST_MASK, cr0_mask());
    vmcs_writenat(VMCS_CR4_GUEST_HOST_MASK, cr4_mask());
    vmcs_writenat(VMCS_CR0_READ_SHADOW, b->cr0);
    vmcs_writenat(VMCS_CR4_READ_SHADOW, b->cr4);
    vmcs_writenat(VMCS_GUEST_CR0, vmx_real_cr0(b->cr0));
    vmcs_writenat(VMCS_GUEST_CR4, vmx_real_cr4(b->cr4));
    vmcs_writenat(VMCS_GUEST_CR3, b->cr3);
    vmcs_write64(VMCS_GUEST_IA32_EFER, b->efer);
    vmcs_write64(VMCS_GUEST_IA32_PAT, 0x0007040600070406ull); /* the power-on PAT */
    vmcs_writenat(VMCS_GUEST_DR7, DR7_POWER_ON);
    vmcs_write64(VMCS_GUEST_IA32_DEBUGCTL, 0);
    vmcs_writenat(VMCS_GUEST_RSP, b->rsp);
    vmcs_writenat(VMCS_GUEST_RIP, b->rip);
    vmcs_writenat(VMCS_GUEST_RFLAGS, 0x2);
    vmcs_write32(VMCS_GUEST_INTERRUPTIBILITY, 0);
    vmcs_write32(VMCS_GUEST_ACTIVITY_STATE, 0);
    vmcs_writenat(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, 0);
    vmcs_write32(VMCS_GUEST_IA32_SYSENTER_CS, 0);
    vmcs_writenat(VMCS_GUEST_IA32_SYSENTER_ESP, 0);
    vmcs_writenat(VMCS_GUEST_IA32_SYSENTER_EIP, 0);
    vmcs_write64(VMCS_LINK_POINTER, ~0ull);
    vmcs_write32(VMCS_ENTRY_CONTROLS, entry);

    a->regs.rax = b->rax;
    a->regs.rbx = b->rbx;
    a->regs.rdx = b->rdx;
    a->regs.rsi = b->rsi;
    a->regs.rdi = b->rdi;
}

static void write_controls(struct vcpu_arch *a, const struct vcpu_boot *b)
{
    vmcs_write32(VMCS_PIN_BASED_CONTROLS, controls.pin);
    vmcs_write32(VMCS_PROC_BASED_CONTROLS, controls.proc);
    uint32_t proc2 = controls.proc2;
    /* Real mode and paging-off protected mode need unrestricted guest; 64-bit guests
     * are better off without it (fewer relaxed checks to reason about). */
    if (b->mode == GUEST_MODE_LONG64 && !b->paging_off_later)
        proc2 &= ~VMX_PROC2_CTL_UNRESTRICTED_GUEST;
    vmcs_write32(VMCS_PROC_BASED_CONTROLS2, proc2);
    vmcs_write32(VMCS_EXIT_CONTROLS, controls.exit);
    vmcs_write32(VMCS_EXCEPTION_BITMAP, 0);
    vmcs_write32(VMCS_PF_ERROR_CODE_MASK, 0);
    vmcs_write32(VMCS_PF_ERROR_CODE_MATCH, 0);
    vmcs_write32(VMCS_CR3_TARGET_COUNT, 0);
    /* exit_split: the CPU stores the TSC as it exits (the host's TSC: Keel does not
     * offset the guest's). */
    vmcs_write32(VMCS_EXIT_MSR_STORE_COUNT, a->vmx.msr_store ? 1 : 0);
    if (a->vmx.msr_store)
        vmcs_write64(VMCS_EXIT_MSR_STORE_ADDR, hva_to_hpa(a->vmx.msr_store));
    vmcs_write32(VMCS_EXIT_MSR_LOAD_COUNT, 0);
    vmcs_write32(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
    vmcs_write32(VMCS_ENTRY_INTR_INFO, 0);
    vmcs_write64(VMCS_IO_BITMAP_A, io_bitmap_a);
    vmcs_write64(VMCS_IO_BITMAP_B, io_bitmap_b);
    vmcs_write64(VMCS_MSR_BITMAP, msr_bitmap);
    vmcs_write64(VMCS_EPT_POINTER, a->vm->vmx.eptp);
    /* Fields of enabled features must be written: a fresh VMCS holds undefined values. */
    if (controls.xsaves)
        vmcs_write64(VMCS_XSS_EXITING_BITMAP, 0);
    /* PAUSE-loop exiting: PAUSEs at most PLE_GAP ticks apart for more than PLE_WINDOW
     * ticks are a spin-wait, likely on a lock whose holder waits for a CPU; the spinner
     * then yields (exit_pause). The values are the ones Linux's KVM starts from. */
    if (controls.proc2 & VMX_PROC2_CTL_PAUSE_LOOP_EXITING) {
        vmcs_write32(VMCS_PLE_GAP, 128);
        vmcs_write32(VMCS_PLE_WINDOW, 4096);
    }
    vmcs_write16(VMCS_VPID, a->vmx.vpid);
}

/* Host state differs per CPU (GS base, TSS, GDT), so it is rewritten whenever the vCPU
 * lands on a CPU other than the one it last ran on. */
static void write_host_state(struct vcpu_arch *a)
{
    struct percpu *p = this_cpu();
    struct {
        uint16_t limit;
        uint64_t base;
    } PACKED idtr;
    __asm__ volatile("sidt %0" : "=m"(idtr));
    vmcs_writenat(VMCS_HOST_CR0, read_cr0());
    vmcs_writenat(VMCS_HOST_CR3, read_cr3());
    vmcs_writenat(VMCS_HOST_CR4, read_cr4());
    vmcs_write16(VMCS_HOST_CS_SELECTOR, GDT_KCODE);
    vmcs_write16(VMCS_HOST_SS_SELECTOR, GDT_KDATA);
    vmcs_write16(VMCS_HOST_DS_SELECTOR, GDT_KDATA);
    vmcs_write16(VMCS_HOST_ES_SELECTOR, GDT_KDATA);
    vmcs_write16(VMCS_HOST_FS_SELECTOR, 0);
    vmcs_write16(VMCS_HOST_GS_SELECTOR, 0);
    vmcs_write16(VMCS_HOST_TR_SELECTOR, GDT_TSS);
    vmcs_writenat(VMCS_HOST_FS_BASE, 0);
    vmcs_writenat(VMCS_HOST_GS_BASE, (uint64_t)(uintptr_t)p);
    vmcs_writenat(VMCS_HOST_TR_BASE, (uint64_t)(uintptr_t)&p->tss);
    vmcs_writenat(VMCS_HOST_GDTR_BASE, (uint64_t)(uintptr_t)p->gdt);
    vmcs_writenat(VMCS_HOST_IDTR_BASE, idtr.base);
    vmcs_write32(VMCS_HOST_IA32_SYSENTER_CS, 0);
    vmcs_writenat(VMCS_HOST_IA32_SYSENTER_ESP, 0);
    vmcs_writenat(VMCS_HOST_IA32_SYSENTER_EIP, 0);
    vmcs_write64(VMCS_HOST_IA32_EFER, rdmsr(MSR_IA32_EFER));
    vmcs_write64(VMCS_HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
    vmcs_writenat(VMCS_HOST_RIP, (uint64_t)(uintptr_t)vmx_exit_stub);
    /* The exit stub pushes the guest registers into the vCPU (vmx_entry.asm). */
    vmcs_writenat(VMCS_HOST_RSP, (uint64_t)(uintptr_t)&a->host_rsp);
}

/* RAM only: no device MMIO is mapped, so any other guest-physical access is an EPT
 * violation, which the generic side turns into an MMIO access or a stop. */
static bool vmx_vm_create(struct vm_arch *vm, const char *name, const struct vm_ram_range *ram, unsigned ranges)
{
    struct vm_vmx *x = &vm->vmx;
    int rc = ept_init(&x->ept, &ept_palloc_ops, NULL);
    if (!rc)
        ept_apply_caps(&x->ept, vmx_boot_caps()->ept_vpid);
    for (unsigned i = 0; !rc && i < ranges; i++)
        rc = ept_map(&x->ept, ram[i].gpa, ram[i].hpa, ram[i].size, EPT_RWX, EPT_MT_WB);
    if (rc) {
        kprintf("VM %s: not started: building its EPT failed (%d)\n", name, rc);
        return false;
    }
    x->eptp = ept_pointer(&x->ept, false);
    return true;
}

static void vmx_vm_destroy(struct vm_arch *vm)
{
    if (vm->vmx.ept.pml4)
        ept_destroy(&vm->vmx.ept);
    vm->vmx.eptp = 0;
}

static void vmx_describe(const struct vm_arch *vm, struct vcpu *v, char *buf, size_t size)
{
    const struct ept *e = &vm->vmx.ept;
    ksnprintf(buf, size, "EPT %lu/%lu/%lu 4K/2M/1G pages, VPID %u", e->leaves[EPT_LEAF_4K], e->leaves[EPT_LEAF_2M],
              e->leaves[EPT_LEAF_1G], vcpu_arch(v)->vmx.vpid);
}

/* The swapped state a vCPU powers on with (vmm/guest-state.md): FCW and MXCSR at their
 * power-on values, a zero XSAVE header (every other component in its initial state). */
static void power_on_swapped_state(struct vcpu_arch *a)
{
    a->msr_star = a->msr_lstar = a->msr_cstar = a->msr_fmask = a->msr_kernel_gs_base = a->msr_tsc_aux = 0;
    a->xcr0 = XCR0_X87;
    a->cr2 = 0;
    memset(a->dr, 0, sizeof(a->dr));
    a->dr6 = DR6_POWER_ON;
    memset(a->fpu, 0, fpu_alloc_size());
    *(uint16_t *)((uint8_t *)a->fpu + XSAVE_FCW_OFFSET) = FCW_POWER_ON;
    *(uint32_t *)((uint8_t *)a->fpu + XSAVE_MXCSR_OFFSET) = MXCSR_POWER_ON;
}

static bool vmx_vcpu_create(struct vcpu *v, struct vm_arch *vm, const char *name, const struct vcpu_boot *b)
{
    const struct vmx_caps *caps = vmx_boot_caps();
    struct vcpu_arch *a = vcpu_arch(v);
    a->vm = vm;
    a->loaded_cpu = -1;
    a->vmx.launched = false;
    a->wake_tsc = UINT64_MAX;
    a->recheck = 1;
    vcpu_latency_clear(&a->latency);
    a->vmx.vpid = alloc_vpid();
    if (!a->vmx.vpid) {
        kprintf("VM %s: no VPID left\n", name);
        return false;
    }
    a->vmx.vmcs = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
    if (!a->vmx.vmcs) {
        kprintf("VM %s: no memory for the VMCS\n", name);
        return false;
    }
    memset(hpa_to_hva(a->vmx.vmcs), 0, PAGE_SIZE);
    *(uint32_t *)hpa_to_hva(a->vmx.vmcs) = vmx_vmcs_revision(caps);
    hpa_t fpu = palloc(fpu_alloc_size(), PAGE_SIZE, PALLOC_NO_LIMIT);
    if (!fpu) {
        kprintf("VM %s: no memory for the vCPU's FPU state\n", name);
        return false;
    }
    a->fpu = hpa_to_hva(fpu);
    if (a->split) {
        hpa_t area = palloc(PAGE_SIZE, PAGE_SIZE, PALLOC_NO_LIMIT);
        if (!area) {
            kprintf("VM %s: no memory for the vCPU's exit_split MSR-store area\n", name);
            return false;
        }
        a->vmx.msr_store = hpa_to_hva(area);
        memset(a->vmx.msr_store, 0, PAGE_SIZE);
        a->vmx.msr_store->index = MSR_IA32_TSC;
    }
    power_on_swapped_state(a);

    vmx_vmclear(a->vmx.vmcs);
    vmx_vmptrld(a->vmx.vmcs);
    write_controls(a, b);
    write_guest_state(a, b);
    write_host_state(a);
    vmx_vmclear(a->vmx.vmcs); /* not yet bound to any CPU: the scheduler loads it */
    this_cpu()->current_vmcs = 0;
    return true;
}

static void vmx_vcpu_destroy(struct vcpu *v)
{
    struct vcpu_arch *a = vcpu_arch(v);
    if (a->vmx.vmcs)
        pfree(a->vmx.vmcs, PAGE_SIZE);
    if (a->fpu)
        pfree((hpa_t)(uintptr_t)a->fpu, fpu_alloc_size());
    if (a->vmx.msr_store)
        pfree(hva_to_hpa(a->vmx.msr_store), PAGE_SIZE);
    a->vmx.vmcs = 0;
    a->fpu = NULL;
    a->vmx.msr_store = NULL;
}

static inline void xsetbv(uint32_t idx, uint64_t v)
{
    __asm__ volatile("xsetbv" ::"c"(idx), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* Saves the per-CPU state that belongs to a guest but lives outside the VMCS
 * (vmm/guest-state.md) from this CPU's registers into its vCPU. XSAVE moves only the
 * components XCR0 enables, so it runs with every component enabled: a guest that never
 * ran XSETBV (XCR0 = 1) must not lose its XMM registers and MXCSR, nor pass them on. */
static void save_guest_state(struct vcpu_arch *prev)
{
    if (fpu_area_size)
        xsetbv(0, xcr0_supported);
    /* STAR, LSTAR, CSTAR, FMASK and TSC_AUX change only by WRMSR, which exits and
     * updates the vCPU's copy; SWAPGS changes KERNEL_GS_BASE without an exit. */
    prev->msr_kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
    prev->cr2 = read_cr2();
    prev->dr[0] = read_dr0();
    prev->dr[1] = read_dr1();
    prev->dr[2] = read_dr2();
    prev->dr[3] = read_dr3();
    prev->dr6 = read_dr6();
    if (fpu_area_size)
        __asm__ volatile("xsave64 (%0)" ::"r"(prev->fpu), "a"(~0u), "d"(~0u) : "memory");
    else
        __asm__ volatile("fxsave64 (%0)" ::"r"(prev->fpu) : "memory");
}

/* Switches that state to the vCPU about to run: the last one's is saved (lazily: only
 * when another vCPU comes, so a vCPU running alone pays nothing), then its own loaded,
 * XRSTOR with every component enabled and the guest's own XCR0 last. */
static void swap_in(struct vcpu_arch *v)
{
    struct percpu *p = this_cpu();
    struct vcpu_arch *prev = p->current_vcpu;
    if (prev == v)
        return;
    if (prev)
        save_guest_state(prev);
    else if (fpu_area_size)
        xsetbv(0, xcr0_supported);
    wrmsr(MSR_STAR, v->msr_star);
    wrmsr(MSR_LSTAR, v->msr_lstar);
    wrmsr(MSR_CSTAR, v->msr_cstar);
    wrmsr(MSR_FMASK, v->msr_fmask);
    wrmsr(MSR_KERNEL_GS_BASE, v->msr_kernel_gs_base);
    if (controls.rdtscp)
        wrmsr(MSR_TSC_AUX, v->msr_tsc_aux);
    write_cr2(v->cr2);
    write_dr0(v->dr[0]);
    write_dr1(v->dr[1]);
    write_dr2(v->dr[2]);
    write_dr3(v->dr[3]);
    write_dr6(v->dr6);
    if (fpu_area_size) {
        __asm__ volatile("xrstor64 (%0)" ::"r"(v->fpu), "a"(~0u), "d"(~0u) : "memory");
        xsetbv(0, v->xcr0);
    } else {
        __asm__ volatile("fxrstor64 (%0)" ::"r"(v->fpu) : "memory");
    }
    p->current_vcpu = v;
}

/* A VMCS is active on one CPU at a time: the scheduler VMCLEARs it where it last ran
 * (vmx_unload) before another CPU gets here, so VMPTRLD never meets a VMCS that is
 * still current elsewhere (SDM vol. 3, 25.11.1). */
static void load_on_this_cpu(struct vcpu_arch *v)
{
    struct percpu *p = this_cpu();
    if (p->current_vmcs != v->vmx.vmcs) {
        vmx_vmptrld(v->vmx.vmcs);
        p->current_vmcs = v->vmx.vmcs;
    }
    if (v->loaded_cpu != (int32_t)p->cpu_id) {
        /* Host state differs per CPU: GS base, TR and GDT bases (write_host_state). */
        write_host_state(v);
        /* Translations this CPU cached for the vCPU on an earlier visit may be stale:
         * the guest changed its page tables elsewhere since, and its INVLPGs there did
         * not reach this CPU (SDM vol. 3, "Guidelines for Use of the INVVPID/INVEPT
         * Instructions"). A CPU it never ran on holds none: VPIDs are never reused. */
        if (cpumask_test(&v->ran_on_mask, p->cpu_id)) {
            vmx_invvpid_single_safe(v->vmx.vpid);
            vmx_invept_single_safe(v->vm->vmx.eptp);
            v->tlb_flushes++;
        }
        cpumask_set(&v->ran_on_mask, p->cpu_id);
        __atomic_store_n(&v->loaded_cpu, (int32_t)p->cpu_id, __ATOMIC_RELEASE);
    }
    swap_in(v);
}

static void vmx_load(struct vcpu *vcpu)
{
    load_on_this_cpu(vcpu_arch(vcpu));
}

/* VMCLEAR writes the VMCS back to memory and leaves it clear (the next entry is a
 * VMLAUNCH). The guest's swapped state still in this CPU's registers goes into the
 * vCPU first: the CPU it runs on next restores it from there. */
static void vmx_unload(struct vcpu *vcpu)
{
    struct vcpu_arch *v = vcpu_arch(vcpu);
    struct percpu *p = this_cpu();
    if (v->loaded_cpu != (int32_t)p->cpu_id)
        return;
    if (p->current_vcpu == v) {
        save_guest_state(v);
        p->current_vcpu = NULL;
    }
    vmx_vmclear(v->vmx.vmcs);
    if (p->current_vmcs == v->vmx.vmcs)
        p->current_vmcs = 0;
    __atomic_store_n(&v->loaded_cpu, -1, __ATOMIC_RELEASE);
    v->vmx.launched = false;
}

static void vmx_reset_vcpu(struct vcpu *v, const struct vcpu_boot *b)
{
    struct vcpu_arch *a = vcpu_arch(v);
    struct percpu *p = this_cpu();
    memset(&a->regs, 0, sizeof(a->regs));
    power_on_swapped_state(a);
    if (b) {
        write_controls(a, b);
        write_guest_state(a, b);
    } else {
        /* Real-mode controls: the SIPI starts it in real mode whatever the boot vCPU's mode. */
        write_controls(a, &(struct vcpu_boot){.mode = GUEST_MODE_REAL16});
        vmx_init_vcpu(v);
        /* What RESET clears and INIT keeps. */
        vmcs_write64(VMCS_GUEST_IA32_PAT, 0x0007040600070406ull);
        vmcs_write64(VMCS_GUEST_IA32_DEBUGCTL, 0);
        vmcs_write32(VMCS_GUEST_IA32_SYSENTER_CS, 0);
        vmcs_writenat(VMCS_GUEST_IA32_SYSENTER_ESP, 0);
        vmcs_writenat(VMCS_GUEST_IA32_SYSENTER_EIP, 0);
    }
    /* The CPU holds the old guest's registers live: drop them unsaved and load the
     * power-on ones. */
    if (p->current_vcpu == a)
        p->current_vcpu = NULL;
    swap_in(a);
    vmx_invvpid_single_safe(a->vmx.vpid);
}

static __attribute__((cold, noinline)) enum exit_action entry_failed(struct vcpu *v, int rc)
{
    struct vcpu_arch *a = vcpu_arch(v);
    a->stats.entries_failed++;
    if (rc == 1) {
        ksnprintf(a->fault, sizeof(a->fault), "VM entry failed: VMfailInvalid (no current VMCS); Keel bug");
    } else {
        uint32_t err = vmcs_read32(VMCS_VM_INSTRUCTION_ERROR);
        ksnprintf(a->fault, sizeof(a->fault), "VM entry failed: VM-instruction error %u (%s)", err,
                  vmx_instruction_error_name(err));
    }
    struct exit_info e = {.why = a->fault};
    return vmx_generic[VCPU_EXIT_FATAL](v, &e);
}

/* The low 32 bits of the TSC are enough for one exit's worth of time (seconds even at
 * several GHz, far beyond a slice) and skip the shift-and-or of a full read. */
static inline uint32_t rdtsc32(void)
{
    uint32_t lo;
    __asm__ volatile("rdtsc" : "=a"(lo)::"rdx");
    return lo;
}

/* The guest runs until the slice ends or the generic side's wake-up time comes,
 * whichever is first. */
static void arm_preemption_timer(const struct vcpu_arch *a, uint64_t slice_end, unsigned rate)
{
    uint64_t now = rdtsc();
    uint64_t until = MIN(slice_end, a->wake_tsc);
    uint64_t ticks = until > now ? until - now : 0;
    /* Rounded up: a timer that fires early finds its guest timer not yet due and
     * would fire again at once, until the clock caught up. */
    uint64_t units = (ticks + (1ull << rate) - 1) >> rate;
    vmcs_write32(VMCS_PREEMPTION_TIMER_VALUE, (uint32_t)MIN(units, 0xffffffffull));
}

/* Interrupts, IPIs, timers: the generic side decides what to inject before the entry,
 * and may find that the vCPU has nothing to run (halted, waiting for SIPI). A reset of
 * the statistics asked for from elsewhere comes this way too. Cold. */
static __attribute__((noinline)) enum exit_action take_events(struct vcpu *v, uint64_t slice_end, unsigned rate)
{
    struct vcpu_arch *a = vcpu_arch(v);
    /* Cleared with a full barrier before anything is looked at: an event given from
     * another CPU after this sets the flag again, never between a plain store still in
     * the store buffer and the loads below. */
    __atomic_store_n(&a->recheck, 0, __ATOMIC_SEQ_CST);
    if (a->latency.reset_requested)
        vcpu_stats_clear_counts(a);
    struct exit_info e = {0};
    enum exit_action act = vmx_generic[VCPU_EXIT_EVENTS](v, &e);
    arm_preemption_timer(a, slice_end, rate);
    return act;
}

/* An exit whose handler did more than ask for the next instruction, or after which the
 * vCPU has events to look at: out of the loop's straight line. */
static __attribute__((noinline)) enum exit_action after_exit(struct vcpu *v, enum exit_action act,
                                                             uint64_t slice_end, unsigned rate)
{
    act = vmx_finish_exit(act);
    if (act == EXIT_RESUME && __atomic_load_n(&vcpu_arch(v)->recheck, __ATOMIC_ACQUIRE))
        act = take_events(v, slice_end, rate);
    return act;
}

/* exit_split: the last exit's round trip apart from the handler's time, from the TSC
 * the CPU stored as it exited (still in the MSR-store area: no exit since). Called
 * once the handler's time is taken, just before the next entry (or after the run), so
 * that the recording is in neither part; spent_on is that exit's reason slot, t_guest
 * the time of the entry before it, and the exit came back to Keel `handler` ticks
 * before `now`. */
static inline __attribute__((always_inline)) void record_split(struct vcpu *v, const struct latency *spent_on,
                                                               uint32_t t_guest, uint32_t now, uint32_t handler)
{
    struct vcpu_arch *a = vcpu_arch(v);
    /* The exit's time worked out again, not kept: a copy kept would be made as the
     * exit comes back, inside the handler's time. The empty asm keeps the compiler
     * from folding the subtraction back into that copy. */
    __asm__("" : "+r"(handler));
    uint32_t t_exit = now - handler;
    /* The slot's byte offset, the same in the split's arrays: no division by the
     * struct's size. */
    size_t at = (size_t)((const char *)spent_on - (const char *)a->latency.exit);
    uint32_t stored = (uint32_t)((volatile struct vmx_msr_entry *)a->vmx.msr_store)->value;
    vcpu_latency_record((struct latency *)((char *)a->split->guest + at), stored - t_guest);
    vcpu_latency_record((struct latency *)((char *)a->split->hw_exit + at), t_exit - stored);
}

/* The end of a run: the last stretch of Keel's time goes to what it was spent on, and
 * the guest's time is the rest of the run's. With exit_split the last exit's split
 * comes after that: once the run's time is taken, it is in no one's. */
static inline __attribute__((always_inline)) enum exit_action end_run(struct vcpu *v, struct latency *spent_on,
                                                                      uint32_t t_host, uint64_t start,
                                                                      uint64_t host_at_start, enum exit_action act,
                                                                      const bool split, uint32_t t_guest)
{
    struct vcpu_arch *a = vcpu_arch(v);
    uint64_t now = rdtsc();
    uint32_t ticks = (uint32_t)now - t_host;
    vcpu_latency_record(spent_on, ticks);
    a->stats.host_tsc += ticks;
    a->stats.guest_tsc += (now - start) - (a->stats.host_tsc - host_at_start);
    if (split && spent_on != &a->latency.load)
        record_split(v, spent_on, t_guest, (uint32_t)now, ticks);
    return act;
}

/* The run loop, built twice: as is, and with exit_split's recording (split, a constant
 * in each), so that the common build carries none of it. */
static inline __attribute__((always_inline)) enum exit_action run_loop(struct vcpu *v, uint64_t slice_tsc,
                                                                       const bool split)
{
    struct vcpu_arch *a = vcpu_arch(v);
    const unsigned rate = vmx_preemption_timer_rate(vmx_boot_caps());
    uint64_t start = rdtsc();
    const uint64_t host_at_start = a->stats.host_tsc;
    load_on_this_cpu(a);
    /* Two limits end a slice. The preemption timer bounds the guest's own run: with
     * its value saved on exit it keeps counting down across exits, so it is set once
     * (and again when a guest timer moves the vCPU's wake-up time). And time Keel
     * spends on the VM's exits is the VM's too: a guest whose exits are slow (console
     * output, a port sweep) or frequent must not hold the CPU for many slices of wall
     * time while its guest time stays small, so each entry checks the slice's
     * wall-clock end, on the low 32 bits of the TSC with a signed difference (one
     * compare; slices longer than 2^31 ticks end there). On a CPU that cannot save the
     * timer value it restarts at every entry, and the wall-clock check alone ends the
     * slice: at the first exit after its end. */
    uint64_t slice_end64 = start + slice_tsc;
    arm_preemption_timer(a, slice_end64, rate);
    const uint32_t slice_end = (uint32_t)start + (uint32_t)MIN(slice_tsc, 0x7fffffffull);
    /* Time in Keel goes to what it is spent on: loading the vCPU, then each exit from
     * the exit to the next entry (or to the end of the run, for an exit that ends it).
     * Per exit the loop adds only Keel's time; the guest's is worked out per run. */
    struct latency *spent_on = &a->latency.load;
    uint32_t t_host = (uint32_t)start;
    /* exit_split: the time of the last entry. An exit since (spent_on is its reason's
     * slot, not the load's) awaits its split. */
    uint32_t t_guest = 0;
    /* Events are looked at before the first entry and after every exit (whoever gives
     * the vCPU one from another CPU kicks that CPU out of the guest too), where the
     * common case tests them together with the handler's answer. */
    enum exit_action act = __atomic_load_n(&a->recheck, __ATOMIC_ACQUIRE) ? take_events(v, slice_end64, rate)
                                                                          : EXIT_RESUME;
    /* One way out, so that the values the end needs live in one place each. From here
     * the vCPU is reached through v alone, the register the entry path gives back. */
    while (act == EXIT_RESUME) {
        uint32_t t_entry = rdtsc32();
        if (__builtin_expect((int32_t)(t_entry - slice_end) >= 0, 0)) {
            act = EXIT_YIELD;
            break;
        }
        uint32_t ticks = t_entry - t_host;
        vcpu_arch(v)->stats.host_tsc += ticks;
        vcpu_latency_record(spent_on, ticks);
        if (split && spent_on != &vcpu_arch(v)->latency.load) {
            /* The recording (the handler's and this) is Keel's time on the vCPU, and
             * its own: the next entry's part starts after it. */
            record_split(v, spent_on, t_guest, t_entry, ticks);
            /* Its stores done before the clock is read, not sunk into the guest's part. */
            __asm__ volatile("" ::: "memory");
            uint32_t now = rdtsc32();
            vcpu_arch(v)->stats.host_tsc += now - t_entry;
            vcpu_arch(v)->split->recording_tsc += now - t_entry;
            t_entry = now;
        }
        t_guest = t_entry;
        uint32_t rc;
        bool exited = vmx_enter(v, &t_host, &rc);
        if (__builtin_expect(!exited, 0)) {
            act = entry_failed(v, (int)rc);
            /* Nothing ran: the failure's report is Keel's time, counted as loading.
             * Set afresh here, spent_on is dead across the entry and can stay in a
             * register on the exit path. */
            spent_on = &vcpu_arch(v)->latency.load;
            t_host = rdtsc32();
            break;
        }
        act = vmx_dispatch_exit(v, &spent_on);
        if (__builtin_expect(act == EXIT_NEXT, 1) && __builtin_expect(!vcpu_arch(v)->recheck, 1)) {
            vmx_skip_instruction();
            act = EXIT_RESUME;
        } else {
            act = after_exit(v, act, slice_end64, rate);
        }
    }
    return end_run(v, spent_on, t_host, start, host_at_start, act, split, t_guest);
}

static __attribute__((noinline)) enum exit_action run_plain(struct vcpu *v, uint64_t slice_tsc)
{
    return run_loop(v, slice_tsc, false);
}

static __attribute__((noinline)) enum exit_action run_split(struct vcpu *v, uint64_t slice_tsc)
{
    return run_loop(v, slice_tsc, true);
}

static enum exit_action vmx_run(struct vcpu *v, uint64_t slice_tsc)
{
    return vcpu_arch(v)->vmx.msr_store ? run_split(v, slice_tsc) : run_plain(v, slice_tsc);
}

const struct vcpu_backend vmx_backend = {
    .name = "VMX",
    .init = vmx_init,
    .cpu_on = vmx_cpu_on,
    .cpu_off = vmx_cpu_off,
    .vm_create = vmx_vm_create,
    .vm_destroy = vmx_vm_destroy,
    .describe = vmx_describe,
    .vcpu_create = vmx_vcpu_create,
    .vcpu_destroy = vmx_vcpu_destroy,
    .run = vmx_run,
    .load = vmx_load,
    .unload = vmx_unload,
    .get_reg = vmx_get_reg,
    .set_reg = vmx_set_reg,
    .inject_exception = vmx_inject_exception,
    .can_inject = vmx_can_inject,
    .inject_interrupt = vmx_inject_interrupt,
    .inject_nmi = vmx_inject_nmi,
    .interrupt_window = vmx_interrupt_window,
    .nmi_window = vmx_nmi_window,
    .init_vcpu = vmx_init_vcpu,
    .start_at_sipi = vmx_start_at_sipi,
    .reset_vcpu = vmx_reset_vcpu,
    .cr4_allowed = vmx_cr4_guest_allowed,
    .xcr0_supported = vmx_xcr0_supported,
    .paging_off_guests = vmx_paging_off_guests,
    .exit_reason_name = exit_reason_name,
    .exit_reason_kind = exit_reason_kind,
};
