/* The part of a vCPU and of a VM that the CPU backend (VMX today, SVM beside it later)
 * owns, and the architectural state a vCPU starts in.
 *
 * The generic vCPU (vmm/vm.h) begins with a struct vcpu_arch, so the backend reaches
 * its part from a `struct vcpu *` with a cast and no load, and never needs to know the
 * rest of the generic structure (the layers allow it no such include). vmm/vm.h checks
 * the placement at build time. */
#ifndef KEEL_ARCH_X86_VCPU_ARCH_H
#define KEEL_ARCH_X86_VCPU_ARCH_H

#include "vmm/lib/types.h"
#include "arch/x86/cpumask.h"
#include "arch/x86/guest_regs.h"
#include "arch/x86/vmx/ept.h"
#include "vmm/lib/histogram.h"

/* Room for every raw exit reason of any backend: VMX has 78. */
#define VCPU_EXIT_REASON_SLOTS 80

enum guest_cpu_mode {
    GUEST_MODE_REAL16 = 1, /* CS:IP, paging and protection off */
    GUEST_MODE_PROT32,     /* flat segments, paging off */
    GUEST_MODE_LONG64,     /* 64-bit code segment, 4-level paging */
};

/* What a vCPU holds at its first instruction: a loader's result (vmm/loaders). */
struct vcpu_boot {
    enum guest_cpu_mode mode;
    uint64_t rip, rsp, rax, rbx, rdx, rsi, rdi;
    uint16_t cs, ds; /* flat selectors, or real-mode segments (base = selector * 16) */
    uint64_t cr0, cr3, cr4, efer;
    gpa_t gdt_base; /* 0: none (real mode) */
    uint16_t gdt_limit;
    /* The guest turns paging off later: a 64-bit guest keeps the CPU's unrestricted-guest
     * mode then (Linux's decompressor leaves long mode to switch paging modes). */
    bool paging_off_later;
};

/* Exit statistics of one vCPU. Only the CPU running the vCPU writes them, and they sit
 * on cache lines of their own, so vCPUs of one VM on different CPUs neither race nor
 * share lines; a VM's report sums them. Exits are counted by the backend's raw reason
 * (one increment on the hot path) and grouped by exit kind (arch/x86/exit_kinds.h)
 * when reported. */
struct vcpu_stats {
    uint64_t exits[VCPU_EXIT_REASON_SLOTS]; /* the total is their sum, kept off the hot path */
    uint64_t guest_tsc; /* between VM entry and exit, as seen from the host */
    uint64_t host_tsc;  /* in Keel: loading the vCPU and handling its exits */
    uint64_t entries_failed;
} ALIGNED(64);

/* How long Keel took over each exit, per raw reason: TSC ticks from the exit to the
 * next entry (to the return to the scheduler for an exit that ends the run), and how
 * long a run took from the scheduler's call to its first entry (loading the vCPU). The
 * sum of the totals is the vCPU's host_tsc. Built with STATS=0 (KEEL_STATS 0) the run
 * loop records none of it and keeps only struct vcpu_stats. */
#ifndef KEEL_STATS
#define KEEL_STATS 1
#endif
struct vcpu_latency {
    struct latency exit[VCPU_EXIT_REASON_SLOTS];
    struct latency load;
    /* Set by vcpu_latency_request_reset on any CPU: the vCPU clears the figures itself
     * before its next entry, so no recording races the reset. */
    volatile uint32_t reset_requested;
} ALIGNED(64);

/* With exit_split on (a VM's configuration), each exit's round trip in two more parts,
 * timed from the TSC the CPU itself stores at the exit (the backend's VM-exit MSR-store
 * area): from Keel's last reading before the entry to that moment (the hardware entry
 * and the guest's run up to the exit: in a tight benchmark loop, mostly the entry) and
 * from it to Keel's first reading after the exit (the rest of the hardware exit). With
 * the handler's time they add up to the time from one entry to the next. Per raw
 * reason, like the handler's; off by default, as it costs a stored MSR per exit and
 * 300 KiB per vCPU. */
struct vcpu_exit_split {
    struct latency guest[VCPU_EXIT_REASON_SLOTS];
    struct latency hw_exit[VCPU_EXIT_REASON_SLOTS];
    /* Keel's time recording the figures (the handler's and these) before each entry:
     * in the vCPU's host_tsc but in no part of any round trip, so that the parts are
     * those of a run without exit_split. A round trip is its three parts and this. */
    uint64_t recording_tsc;
};

static inline __attribute__((always_inline)) void vcpu_latency_record(struct latency *l, uint32_t ticks)
{
#if KEEL_STATS
    latency_record(l, ticks);
#else
    (void)l;
    (void)ticks;
#endif
}

static inline void vcpu_latency_clear(struct vcpu_latency *l)
{
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        latency_clear(&l->exit[r]);
    latency_clear(&l->load);
    l->reset_requested = 0;
}

static inline void vcpu_exit_split_clear(struct vcpu_exit_split *s)
{
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++) {
        latency_clear(&s->guest[r]);
        latency_clear(&s->hw_exit[r]);
    }
    s->recording_tsc = 0;
}


/* The VMX backend's own: nothing outside arch/x86/vmx reads these. */
struct vmx_msr_entry;
struct vcpu_vmx {
    hpa_t vmcs;
    uint16_t vpid;
    bool launched;
    /* exit_split on: the VM-exit MSR-store area, whose one entry gets IA32_TSC at each
     * exit (NULL: no MSRs stored). */
    struct vmx_msr_entry *msr_store;
};

struct vm_vmx {
    struct ept ept;
    uint64_t eptp;
};

struct vm_arch {
    struct vm_vmx vmx;
};

/* CPUID answers that depend on nothing the guest can change (the VM's configuration,
 * the vCPU's index, the CPU), for the basic leaves below VCPU_CPUID_CACHED that have no
 * subleaves. The generic CPUID handler works a leaf out the first time the vCPU asks
 * and keeps the answer here if it is one of those (vmm/exit_cpuid.c); after that the
 * backend answers it before its exit table, as cheaply as an exit can be. */
#define VCPU_CPUID_CACHED 32
struct vcpu_cpuid_cache {
    uint32_t known; /* bit n: leaf n's answer is kept */
    /* One array per register: the backend indexes each by the leaf as it is. */
    uint32_t a[VCPU_CPUID_CACHED], b[VCPU_CPUID_CACHED], c[VCPU_CPUID_CACHED], d[VCPU_CPUID_CACHED];
};

struct vcpu_arch {
    struct guest_regs regs; /* first: the entry path takes the vCPU's address as them */
    uint64_t host_rsp;      /* next: the entry path's stack pointer while the guest runs */
    struct vm_arch *vm;     /* the backend part of the vCPU's VM */
    int32_t loaded_cpu;     /* CPU whose VMCS cache holds it, -1: none (VMCLEARed) */
    cpumask_t ran_on_mask;  /* CPUs this vCPU has been loaded on */
    uint32_t tlb_flushes;   /* INVVPID/INVEPT on coming back to a CPU it had left */

    /* State the VMCS does not switch and Keel does not use: swapped on vCPU switch
     * (vmm/guest-state.md lists every piece and how it is kept apart). */
    uint64_t msr_star, msr_lstar, msr_cstar, msr_fmask, msr_kernel_gs_base;
    uint64_t msr_tsc_aux;
    uint64_t xcr0;
    uint64_t cr2;
    uint64_t dr[4], dr6;
    /* The guest's x87/SSE/AVX... registers while another vCPU owns the CPU (Keel itself
     * never touches them): an XSAVE area sized for every component the CPU has, or a
     * 512-byte FXSAVE image on CPUs without XSAVE. */
    void *fpu;

    struct vcpu_vmx vmx;
    /* Set by whoever gives the vCPU something to act on (an interrupt, a kick, a timer
     * armed): the backend calls the EVENTS handler before its next entry. */
    uint32_t recheck; /* other CPUs store it with __atomic_store_n */
    /* Absolute host TSC when the generic side next needs the vCPU out of guest mode (a
     * guest timer), UINT64_MAX: never. The backend bounds the guest's run by it. */
    uint64_t wake_tsc;
    struct vcpu_cpuid_cache cpuid;
    /* A guest fault or failed entry, as the backend words it for the VM's report. */
    char fault[224];

    struct vcpu_stats stats;
    struct vcpu_latency latency;
    struct vcpu_exit_split *split; /* NULL: exit_split off (the generic side allocates it) */
};

/* A fresh start for the lab's figures: exit counts and durations. The time totals stay,
 * for the vCPU's whole life. */
static inline void vcpu_stats_clear_counts(struct vcpu_arch *a)
{
    for (uint32_t r = 0; r < VCPU_EXIT_REASON_SLOTS; r++)
        a->stats.exits[r] = 0;
    vcpu_latency_clear(&a->latency);
    if (a->split)
        vcpu_exit_split_clear(a->split);
}

STATIC_ASSERT(offsetof(struct vcpu_arch, host_rsp) == sizeof(struct guest_regs),
              "vmx_entry.asm finds the host stack pointer just past the guest registers");

struct vcpu;

static inline struct vcpu_arch *vcpu_arch(struct vcpu *v)
{
    return (struct vcpu_arch *)(void *)v;
}

#endif
