/* Virtual machines and their vCPUs. A VM owns one contiguous block of host RAM mapped
 * at guest-physical 0 by its own EPT; a vCPU owns a VMCS and the register state the
 * VMCS does not hold. A vCPU is loaded on at most one CPU at a time: moving it means
 * VMCLEAR on the old CPU, then VMPTRLD and new host state on the new one. */
#ifndef KEEL_VMM_VM_H
#define KEEL_VMM_VM_H

#include "vmm/types.h"
#include "vmm/spinlock.h"
#include "vmm/config.h"
#include "arch/x86/cpumask.h"
#include "arch/x86/ept.h"
#include "arch/x86/guest_regs.h"
#include "boot/bootinfo.h"

#define VM_MAX 16
#define VM_EXIT_REASON_SLOTS 80
#define VM_NAME_MAX 32
#define VUART_LINE_MAX 160
#define UNCLAIMED_PORTS_LOGGED 8

enum vm_state {
    VM_CREATED = 0,
    VM_RUNNING,
    VM_STOPPED,
};

/* The virtual 16550 a polling guest driver needs: registers read back what was
 * written, the transmitter is always ready, and output becomes console lines. */
struct vuart {
    uint8_t ier, lcr, mcr, scr, dll, dlm;
    uint32_t len;
    char line[VUART_LINE_MAX];
};

struct vm_stats {
    uint64_t exits[VM_EXIT_REASON_SLOTS]; /* the total is their sum, kept off the hot path */
    uint64_t guest_tsc; /* between VM entry and exit, as seen from the host */
    uint64_t host_tsc;  /* handling exits */
    uint64_t entries_failed;
};

struct vcpu;

struct vm {
    uint32_t id;
    char name[VM_NAME_MAX];
    const struct vm_config *cfg;
    uint32_t entry_kind; /* enum config_entry */

    hpa_t ram_hpa;
    uint64_t ram_size;
    uint8_t *ram; /* host view of guest-physical 0 */
    struct ept ept;
    uint64_t eptp;

    volatile uint32_t state; /* enum vm_state */
    bool has_exit_code;
    uint32_t exit_code;
    char stop_reason[200];

    struct vuart uart;
    uint8_t ports_seen[65536 / 8]; /* unclaimed ports already used */
    uint32_t ports_logged;         /* of those, logged: at most UNCLAIMED_PORTS_LOGGED */
    uint32_t ports_unlogged;       /* the rest, counted in the report */
    struct vm_stats stats;
    struct vcpu *vcpu;
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
};

/* Guest RAM access with bounds checks: true when [gpa, gpa+len) lies inside. */
static inline bool vm_gpa_range_ok(const struct vm *vm, gpa_t gpa, uint64_t len)
{
    return gpa < vm->ram_size && len <= vm->ram_size - gpa;
}
static inline void *vm_gpa_to_hva(const struct vm *vm, gpa_t gpa)
{
    return vm->ram + gpa;
}

extern struct vm *vms[VM_MAX];
extern uint32_t vm_count;

/* Creates every VM the configuration declares that fits; reports those that do not. */
void vms_create(const struct keel_config *cfg, const struct bootinfo *bi);
/* Stops a VM: records why, prints its report. Called on the CPU running its vCPU. */
void vm_stop(struct vm *vm, const char *fmt, ...) PRINTF_LIKE(2, 3);
void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why);
/* Number of VMs not yet stopped. */
uint32_t vms_running(void);
void vm_print_report(const struct vm *vm);

#endif
