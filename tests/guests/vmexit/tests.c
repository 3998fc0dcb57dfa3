/* The benchmarks, in the order and with the names of kvm-unit-tests' x86/vmexit.c where
 * it has them, plus the ones Keel's issue 11 asks for (rdmsr_efer, wrmsr_efer, wbinvd,
 * lapic_mmio_read, hlt_wakeup, ept_first_touch). One list: VMEXIT_TESTS. The x2apic_
 * tests come last: they switch the BSP's APIC to x2APIC mode, which has no way back. */
#include "vmexit.h"

#define MSR_EFER_ 0xC0000080u
#define ELCR_PORT 0x4D0     /* the PIC's edge/level register: KVM and Keel handle it in-kernel */
#define QEMU_NOP_PORT 0x1234 /* nobody's port: QEMU's userspace, Keel's unclaimed path */
#define DEADLINE_AHEAD 3000 /* TSC ticks, as in x86/vmexit.c */
#define HALT_SPIN 2000
#define PAGE 4096u

uint64_t extra[EXTRA_COUNT];
static uint32_t hypercall_fn;
static uint64_t efer;

static inline void write_cr8(uint64_t v)
{
    __asm__ volatile("mov %0, %%cr8" ::"r"(v) : "memory");
}

static inline uint64_t read_cr8(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr8, %0" : "=r"(v));
    return v;
}

static void self_ipi(void)
{
    uint64_t t0 = rdtsc();
    lapic_send(0, ICR_SELF | VEC_SELF_IPI);
    extra[EXTRA_IPI] += rdtsc() - t0;
}

/* x2APIC's SELF IPI register: one MSR write. */
static void x2apic_self_ipi(void)
{
    uint64_t t0 = rdtsc();
    wrmsr(MSR_X2APIC_SELF_IPI, VEC_SELF_IPI);
    extra[EXTRA_IPI] += rdtsc() - t0;
}

static void t_cpuid(void)
{
    uint32_t a = 0, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
}

/* Keel: VM_INFO with size 0, rejected before any guest memory is touched (the bench
 * guest's VMCALL); another hypervisor: function 0, as x86/vmexit.c does. */
static void t_vmcall(void) { (void)keel_hypercall(hypercall_fn, 0, 0, 0); }
static void t_mov_from_cr8(void) { (void)read_cr8(); }
static void t_mov_to_cr8(void) { write_cr8(0); }
static void t_inl_from_pmtimer(void) { (void)inl(env.pm_timer_port); }
static void t_inl_from_qemu(void) { (void)inl(QEMU_NOP_PORT); }
static void t_inl_from_kernel(void) { (void)inb(ELCR_PORT); }
static void t_outl_to_kernel(void) { outb(ELCR_PORT, 0); }
static void t_rdmsr_efer(void) { (void)rdmsr(MSR_EFER_); }
static void t_wrmsr_efer(void) { wrmsr(MSR_EFER_, efer); }
static void t_wr_kernel_gs_base(void) { wrmsr(MSR_KERNEL_GS_BASE, 0); }
static void t_mov_dr(void) { __asm__ volatile("mov %0, %%dr7" ::"r"(0x400ul)); }
static void t_wbinvd(void) { __asm__ volatile("wbinvd" ::: "memory"); }
static void t_lapic_mmio_read(void) { (void)lapic_read(LAPIC_VERSION); }

static void t_tscdeadline_immed(void)
{
    wrmsr(MSR_TSC_DEADLINE, rdtsc());
    __asm__ volatile("nop");
}

/* Busy-waits for the interrupt; `latency` is the deadline to the handler's RDTSC. */
static void t_tscdeadline(void)
{
    uint32_t before = counts.timer;
    uint64_t deadline = rdtsc() + DEADLINE_AHEAD;
    wrmsr(MSR_TSC_DEADLINE, deadline);
    while (counts.timer == before)
        __asm__ volatile("" ::: "memory");
    extra[EXTRA_LATENCY] += counts.timer_tsc - deadline;
}

static void t_self_ipi_sti_nop(void)
{
    __asm__ volatile("cli" ::: "memory");
    self_ipi();
    __asm__ volatile("sti; nop" ::: "memory");
}

static void t_self_ipi_sti_hlt(void)
{
    __asm__ volatile("cli" ::: "memory");
    self_ipi();
    __asm__ volatile("sti; hlt" ::: "memory");
}

/* CR8 = 15 holds the IPI pending until it drops to 0. */
static void t_self_ipi_tpr(void)
{
    write_cr8(0xF);
    self_ipi();
    write_cr8(0);
    __asm__ volatile("nop");
}

static void t_self_ipi_tpr_sti_nop(void)
{
    __asm__ volatile("cli" ::: "memory");
    write_cr8(0xF);
    self_ipi();
    write_cr8(0);
    __asm__ volatile("sti; nop" ::: "memory");
}

static void t_self_ipi_tpr_sti_hlt(void)
{
    __asm__ volatile("cli" ::: "memory");
    write_cr8(0xF);
    self_ipi();
    write_cr8(0);
    __asm__ volatile("sti; hlt" ::: "memory");
}

static void t_x2apic_self_ipi_sti_nop(void)
{
    __asm__ volatile("cli" ::: "memory");
    x2apic_self_ipi();
    __asm__ volatile("sti; nop" ::: "memory");
}

static void t_x2apic_self_ipi_sti_hlt(void)
{
    __asm__ volatile("cli" ::: "memory");
    x2apic_self_ipi();
    __asm__ volatile("sti; hlt" ::: "memory");
}

static void t_x2apic_self_ipi_tpr(void)
{
    write_cr8(0xF);
    x2apic_self_ipi();
    write_cr8(0);
    __asm__ volatile("nop");
}

static void t_x2apic_self_ipi_tpr_sti_nop(void)
{
    __asm__ volatile("cli" ::: "memory");
    write_cr8(0xF);
    x2apic_self_ipi();
    write_cr8(0);
    __asm__ volatile("sti; nop" ::: "memory");
}

static void t_x2apic_self_ipi_tpr_sti_hlt(void)
{
    __asm__ volatile("cli" ::: "memory");
    write_cr8(0xF);
    x2apic_self_ipi();
    write_cr8(0);
    __asm__ volatile("sti; hlt" ::: "memory");
}

/* The AP halts between IPIs; the round trip ends when its handler has sent its EOI. */
static void t_ipi(void)
{
    uint32_t before = __atomic_load_n(&ap_ipis_done, __ATOMIC_ACQUIRE);
    uint64_t t0 = rdtsc();
    lapic_send((uint32_t)env.ap_id, VEC_IPI);
    extra[EXTRA_IPI] += rdtsc() - t0;
    while (__atomic_load_n(&ap_ipis_done, __ATOMIC_ACQUIRE) == before)
        __asm__ volatile("pause");
}

/* As ipi, then long enough for the AP to be back in HLT when the next one comes. */
static void t_ipi_halt(void)
{
    t_ipi();
    uint64_t until = rdtsc() + HALT_SPIN;
    while (rdtsc() < until)
        ;
}

/* A timer DEADLINE_AHEAD ticks out, then HLT until it fires: the vCPU blocks and is
 * woken by its own timer. With TSC-deadline `latency` is the deadline to the handler;
 * without it the one-shot LAPIC timer (divide by 1) stands in. */
static void t_hlt_wakeup(void)
{
    __asm__ volatile("cli" ::: "memory");
    uint32_t before = counts.timer;
    uint64_t deadline = rdtsc() + DEADLINE_AHEAD;
    if (env.tsc_deadline)
        wrmsr(MSR_TSC_DEADLINE, deadline);
    else
        lapic_write(LAPIC_TIMER_INIT, DEADLINE_AHEAD);
    while (counts.timer == before)
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    __asm__ volatile("sti" ::: "memory");
    if (env.tsc_deadline)
        extra[EXTRA_LATENCY] += counts.timer_tsc - deadline;
}

/* One write to each page of RAM nothing has touched since boot. */
static void t_ept_first_touch(void)
{
    *(volatile uint8_t *)(uintptr_t)env.fresh_start = 1;
    env.fresh_start += PAGE;
}

static void timer_deadline_mode(void)
{
    lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_TSC_DEADLINE | VEC_TIMER);
}

static void timer_for_hlt(void)
{
    if (env.tsc_deadline) {
        timer_deadline_mode();
        return;
    }
    lapic_write(LAPIC_TIMER_DIV, TIMER_DIVIDE_BY_1);
    lapic_write(LAPIC_LVT_TIMER, VEC_TIMER); /* one-shot */
}

static void read_efer(void) { efer = rdmsr(MSR_EFER_); }
static void pick_hypercall(void) { hypercall_fn = env.keel ? KEEL_HC_VM_INFO : 0; }

static const char *need_hypervisor(void)
{
    return env.hypervisor ? NULL : "VMCALL needs Keel or KVM (#UD on bare metal and under TCG)";
}
static const char *need_pm_timer(void) { return env.pm_timer_port ? NULL : "no PM timer in the FADT"; }
static const char *need_deadline(void)
{
    return env.tsc_deadline ? NULL : "no TSC-deadline timer (CPUID.1:ECX[24] clear)";
}
static const char *need_second_cpu(void)
{
    return env.ap_id >= 0 ? NULL : "needs a second CPU (vcpus = 2, -smp 2)";
}
static const char *need_x2apic(void)
{
    return env.x2apic ? NULL : "no x2APIC (CPUID.1:ECX[21] clear)";
}
static const char *need_fresh_ram(void)
{
    return env.fresh_end > env.fresh_start ? NULL : "no untouched RAM above the image";
}

/* X(name, unavailable, setup, one_batch, interrupt counted once per iteration) */
#define VMEXIT_TESTS(X)                                              \
    X(cpuid, NULL, NULL, false, NULL)                                       \
    X(vmcall, need_hypervisor, pick_hypercall, false, NULL)                 \
    X(mov_from_cr8, NULL, NULL, false, NULL)                                \
    X(mov_to_cr8, NULL, NULL, false, NULL)                                  \
    X(inl_from_pmtimer, need_pm_timer, NULL, false, NULL)                   \
    X(inl_from_qemu, NULL, NULL, false, NULL)                               \
    X(inl_from_kernel, NULL, NULL, false, NULL)                             \
    X(outl_to_kernel, NULL, NULL, false, NULL)                              \
    X(rdmsr_efer, NULL, NULL, false, NULL)                                  \
    X(wrmsr_efer, NULL, read_efer, false, NULL)                             \
    X(wr_kernel_gs_base, NULL, NULL, false, NULL)                           \
    X(mov_dr, NULL, NULL, false, NULL)                                      \
    X(wbinvd, NULL, NULL, false, NULL)                                      \
    X(lapic_mmio_read, NULL, NULL, false, NULL)                             \
    X(tscdeadline_immed, need_deadline, timer_deadline_mode, false, &counts.timer) \
    X(tscdeadline, need_deadline, timer_deadline_mode, false, &counts.timer) \
    X(self_ipi_sti_nop, NULL, NULL, false, &counts.self_ipi)                \
    X(self_ipi_sti_hlt, NULL, NULL, false, &counts.self_ipi)                \
    X(self_ipi_tpr, NULL, NULL, false, &counts.self_ipi)                    \
    X(self_ipi_tpr_sti_nop, NULL, NULL, false, &counts.self_ipi)            \
    X(self_ipi_tpr_sti_hlt, NULL, NULL, false, &counts.self_ipi)            \
    X(ipi, need_second_cpu, NULL, false, &counts.ipi)                       \
    X(ipi_halt, need_second_cpu, NULL, false, &counts.ipi)                  \
    X(hlt_wakeup, NULL, timer_for_hlt, false, &counts.timer)                \
    X(ept_first_touch, need_fresh_ram, NULL, true, NULL)                    \
    X(x2apic_self_ipi_sti_nop, need_x2apic, lapic_enable_x2apic, false, &counts.self_ipi) \
    X(x2apic_self_ipi_sti_hlt, need_x2apic, lapic_enable_x2apic, false, &counts.self_ipi) \
    X(x2apic_self_ipi_tpr, need_x2apic, lapic_enable_x2apic, false, &counts.self_ipi) \
    X(x2apic_self_ipi_tpr_sti_nop, need_x2apic, lapic_enable_x2apic, false, &counts.self_ipi) \
    X(x2apic_self_ipi_tpr_sti_hlt, need_x2apic, lapic_enable_x2apic, false, &counts.self_ipi)

#define VMEXIT_TEST_ENTRY(name, unavailable, setup, one_batch, irqs) \
    { #name, t_##name, unavailable, setup, one_batch, irqs },
const struct vmexit_test vmexit_tests[] = { VMEXIT_TESTS(VMEXIT_TEST_ENTRY) };
#undef VMEXIT_TEST_ENTRY
const uint32_t vmexit_test_count = sizeof(vmexit_tests) / sizeof(vmexit_tests[0]);
