/* One page-aligned block per CPU, reached through GS. Everything a CPU owns alone
 * lives here, so nothing on a hot path needs a lock. */
#ifndef KEEL_ARCH_X86_PERCPU_H
#define KEEL_ARCH_X86_PERCPU_H

#include "vmm/lib/types.h"
#include "vmm/lib/console.h"

/* CPUs Keel runs on; the rest of a bigger machine is reported at boot and left idle. */
#define MAX_CPUS 512
#define KERNEL_STACK_SIZE (16 * 1024)
#define IST_STACK_SIZE (8 * 1024)

/* GDT selectors, identical on every CPU. */
#define GDT_NULL 0x00
#define GDT_KCODE 0x08
#define GDT_KDATA 0x10
#define GDT_TSS 0x18 /* 16-byte descriptor: slots 3 and 4 */
#define GDT_ENTRIES 5

/* IST slots (1-based, as the IDT encodes them). */
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2
#define IST_MACHINE_CHECK 3
#define IST_COUNT 3

struct tss64 {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
} PACKED;

enum cpu_vmx_state {
    VMX_STATE_UNKNOWN = 0,
    VMX_STATE_ENABLED,       /* CPUID says VMX and FEATURE_CONTROL allows it */
    VMX_STATE_NOT_SUPPORTED, /* CPUID.1:ECX.VMX clear */
    VMX_STATE_FW_DISABLED,   /* FEATURE_CONTROL locked with VMX off */
};

struct percpu {
    struct percpu *self; /* must stay first: this_cpu() reads %gs:0 */
    uint32_t cpu_id;     /* dense index, 0 = boot CPU */
    uint32_t apic_id;
    hva_t stack_top;
    volatile uint32_t online;
    uint32_t vmx_state; /* enum cpu_vmx_state */

    /* Room for the VMX core: VMXON region, the VMCS currently loaded, the vCPU it
     * belongs to and the run queue are added here by the VMX code. */
    hpa_t vmxon_region;
    bool vmx_active; /* between VMXON and VMXOFF */
    hpa_t current_vmcs;
    void *current_vcpu;
    /* The scheduler wants the CPU back from the running vCPU (a woken vCPU is owed it,
     * or another CPU waits for a vCPU from here): the interrupt exit yields. */
    volatile uint32_t sched_preempt;

    uint64_t gdt[GDT_ENTRIES + 1] ALIGNED(16);
    struct tss64 tss ALIGNED(16);
    uint8_t ist_stacks[IST_COUNT][IST_STACK_SIZE] ALIGNED(16);

    struct console_line console_line; /* kprintf's line being assembled on this CPU */
} ALIGNED(4096);

extern struct percpu *percpu_blocks[MAX_CPUS];
extern uint32_t cpu_count_online;

static inline struct percpu *this_cpu(void)
{
    struct percpu *p;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(p));
    return p;
}

/* True once this CPU's GS points at its block; console output before that is CPU 0. */
bool percpu_ready(void);
/* Points GS at the block and records the CPU's identity. */
void percpu_install(struct percpu *p, uint32_t cpu_id, uint32_t apic_id);

#endif
