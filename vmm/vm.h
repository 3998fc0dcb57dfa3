/* Virtual machines and their vCPUs. A VM owns one contiguous block of host RAM mapped
 * at guest-physical 0 by its own EPT; a vCPU owns a VMCS and the register state the
 * VMCS does not hold. A vCPU is loaded on at most one CPU at a time: moving it means
 * VMCLEAR on the old CPU, then VMPTRLD and new host state on the new one. */
#ifndef KEEL_VMM_VM_H
#define KEEL_VMM_VM_H

#include "vmm/lib/types.h"
#include "vmm/lib/spinlock.h"
#include "vmm/lib/config.h"
#include "arch/x86/cpumask.h"
#include "arch/x86/vmx/ept.h"
#include "arch/x86/guest_regs.h"
#include "boot/bootinfo.h"
#include "vmm/dev/bus.h"
#include "vmm/dev/console.h"
#include "vmm/dev/uart16550.h"

#define VM_EXIT_REASON_SLOTS 80

enum vm_state {
    VM_CREATED = 0,
    VM_RUNNING,
    VM_STOPPED,
};

/* Exit statistics of one vCPU. Only the CPU running the vCPU writes them, and they sit
 * on cache lines of their own, so vCPUs of one VM on different CPUs neither race nor
 * share lines; a VM's report sums them. Exits are counted by the backend's raw reason
 * (one increment on the hot path); the lab's per-reason latency histograms go here. */
struct vcpu_stats {
    uint64_t exits[VM_EXIT_REASON_SLOTS]; /* the total is their sum, kept off the hot path */
    uint64_t guest_tsc; /* between VM entry and exit, as seen from the host */
    uint64_t host_tsc;  /* handling exits */
    uint64_t entries_failed;
} ALIGNED(64);

struct vcpu;

struct vm {
    uint32_t id;
    char name[CONFIG_NAME_MAX + 1];
    const struct vm_config *cfg;
    uint32_t entry_kind; /* enum config_entry */

    hpa_t ram_hpa;
    uint64_t ram_size;
    uint8_t *ram; /* host view of guest-physical 0 */
    struct ept ept;
    uint64_t eptp;

    volatile uint32_t state; /* enum vm_state */
    bool stop_claimed;       /* set by the first vm_stop, on whichever CPU */
    bool has_exit_code;
    uint32_t exit_code;
    char stop_reason[200];

    struct vm_bus bus;          /* its ports and MMIO ranges (vmm/dev/platform.c) */
    struct vm_console console;  /* the line its UART and console hypercall write */
    struct uart16550 com1;
    uint32_t vcpu_count;
    struct vcpu *vcpus[MAX_VCPUS];
};

struct vcpu {
    struct guest_regs regs;
    struct vm *vm;
    uint32_t id;
    uint16_t vpid;
    int32_t pinned_cpu;  /* -1: any */
    int32_t loaded_cpu;  /* CPU whose VMCS cache holds it, -1: none (VMCLEARed) */
    bool launched;
    cpumask_t ran_on_mask; /* CPUs this vCPU has been loaded on */
    hpa_t vmcs;
    struct vcpu *rq_next;

    /* State the VMCS does not switch and Keel does not use: swapped on vCPU switch
     * (vmm/guest-state.md lists every piece and how it is kept apart). */
    uint64_t msr_star, msr_lstar, msr_cstar, msr_fmask, msr_kernel_gs_base;
    uint64_t msr_tsc_aux;
    uint64_t xcr0;
    uint64_t cr2;
    uint64_t dr[4], dr6;
    uint8_t tpr; /* CR8: every MOV CR8 exits, so it never reaches the host's APIC */
    /* The guest's x87/SSE/AVX... registers while another vCPU owns the CPU (Keel itself
     * never touches them): an XSAVE area sized for every component the CPU has, or a
     * 512-byte FXSAVE image on CPUs without XSAVE. */
    void *fpu;

    struct vcpu_stats stats;
};

/* Guest memory for loaders, hypercalls and devices: the host view of [gpa, gpa+len), or
 * NULL when any byte of it lies outside the VM's RAM. The one place guest-physical
 * ranges are checked; nothing else computes ram + gpa. */
static inline void *vm_gpa_map(const struct vm *vm, gpa_t gpa, uint64_t len)
{
    if (gpa >= vm->ram_size || len > vm->ram_size - gpa)
        return NULL;
    return vm->ram + gpa;
}

extern struct vm *vms[MAX_VMS];
extern uint32_t vm_count;

/* Creates every VM the configuration declares that fits; reports those that do not. */
void vms_create(const struct keel_config *cfg, const struct bootinfo *bi);
/* Stops a VM: records why, prints its report, and kicks its vCPUs that are loaded on
 * other CPUs out of guest mode (an IPI; a guest running with interrupts masked in a
 * way that delays the exit still loses its CPU at the end of its slice). Callable from
 * any CPU; only the first stop counts. */
void vm_stop(struct vm *vm, const char *fmt, ...) PRINTF_LIKE(2, 3);
void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why);
/* Number of VMs not yet stopped. */
uint32_t vms_running(void);
void vm_print_report(const struct vm *vm);
/* The VM's exit statistics: every vCPU's summed. */
void vm_sum_stats(const struct vm *vm, struct vcpu_stats *sum);

#endif
