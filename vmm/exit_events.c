/* Exits caused by events rather than instructions: interrupts, NMIs, the preemption
 * timer, triple faults, failed entries, EPT faults, and the default for the rest. */
#include "vmm/exit_dispatch.h"
#include "vmm/exit_reasons.h"
#include "arch/x86/trap.h"
#include "arch/x86/vmx/vmcs.h"
#include "arch/x86/vmx/vmx_errors.h"
#include "arch/x86/lapic.h"
#include "vmm/lib/console.h"
#include "vmm/dev/bus.h"

#define INTR_INFO_VECTOR(i) ((i) & 0xff)
#define INTR_INFO_TYPE(i) (((i) >> 8) & 7)
#define INTR_INFO_VALID BIT(31)
#define INTR_TYPE_NMI 2

enum exit_action handle_external_interrupt(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    /* "Acknowledge interrupt on exit" already took the vector from the APIC: run the
     * host's handler for it as if it had arrived in Keel. */
    uint32_t info = vmcs_read32(VMCS_EXIT_INTR_INFO);
    struct trap_frame f = {.vector = INTR_INFO_VECTOR(info)};
    if (info & INTR_INFO_VALID)
        trap_dispatch(&f);
    /* The interrupt may be the kick of a vm_stop on another CPU. */
    return __atomic_load_n(&v->vm->state, __ATOMIC_ACQUIRE) == VM_STOPPED ? EXIT_STOPPED : EXIT_RESUME;
}

enum exit_action handle_exception_nmi(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    uint32_t info = vmcs_read32(VMCS_EXIT_INTR_INFO);
    if (INTR_INFO_TYPE(info) == INTR_TYPE_NMI) {
        /* A host NMI arrived while the guest ran; Keel has no NMI sources of its own. */
        kprintf("VM %s: host NMI during guest execution, ignored\n", v->vm->name);
        return EXIT_RESUME;
    }
    /* The exception bitmap is empty, so this is a guest exception Keel did not ask for. */
    vm_stop(v->vm, "unexpected guest exception vector %u (interruption info 0x%x) at rip 0x%lx",
            INTR_INFO_VECTOR(info), info, vmcs_readnat(VMCS_GUEST_RIP));
    return EXIT_STOPPED;
}

enum exit_action handle_preemption_timer(struct vcpu *v, const struct vmexit *e)
{
    (void)v;
    (void)e;
    return EXIT_YIELD;
}

enum exit_action handle_triple_fault(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    vm_stop(v->vm, "triple fault (the guest could not deliver an exception) at rip 0x%lx, cr0 0x%lx",
            vmcs_readnat(VMCS_GUEST_RIP), vmcs_readnat(VMCS_CR0_READ_SHADOW));
    return EXIT_STOPPED;
}

static const char *entry_failure_detail(uint32_t reason, uint64_t q)
{
    if (reason == EXIT_REASON_ENTRY_MSR_LOADING)
        return "an MSR in the VM-entry MSR-load area could not be loaded";
    if (reason == EXIT_REASON_ENTRY_MACHINE_CHECK)
        return "a machine check happened during VM entry";
    switch (q) {
    case 2: return "invalid guest state (failure loading PDPTEs)";
    case 3: return "invalid guest state (NMI injection blocked)";
    case 4: return "invalid VMCS link pointer";
    default: return "invalid guest state (a guest-state field breaks the SDM's VM-entry checks)";
    }
}

enum exit_action handle_entry_failure(struct vcpu *v, const struct vmexit *e)
{
    vm_stop(v->vm, "VM entry failed: %s (exit reason %u %s, qualification 0x%lx); guest rip 0x%lx cr0 0x%lx cr4 0x%lx",
            entry_failure_detail(e->reason, e->qualification), e->reason, exit_reason_name(e->reason),
            e->qualification, vmcs_readnat(VMCS_GUEST_RIP), vmcs_readnat(VMCS_GUEST_CR0),
            vmcs_readnat(VMCS_GUEST_CR4));
    return EXIT_STOPPED;
}

enum exit_action handle_ept_violation(struct vcpu *v, const struct vmexit *e)
{
    uint64_t q = e->qualification;
    uint64_t gpa = vmcs_read64(VMCS_GUEST_PHYSICAL_ADDRESS);
    const char *access = (q & 2) ? "write" : (q & 4) ? "instruction fetch" : "read";
    const struct bus_range *dev = vm_bus_find(&v->vm->bus, BUS_MMIO, gpa);
    if (dev && (q & 4)) {
        vm_stop(v->vm, "instruction fetch from the MMIO range of %s at guest-physical 0x%lx (code cannot run from "
                "device registers) at rip 0x%lx", dev->owner, gpa, vmcs_readnat(VMCS_GUEST_RIP));
        return EXIT_STOPPED;
    }
    if (dev) {
        vm_stop(v->vm, "MMIO %s of %s at guest-physical 0x%lx needs the instruction decoder (not yet implemented); "
                "rip 0x%lx", access, dev->owner, gpa, vmcs_readnat(VMCS_GUEST_RIP));
        return EXIT_STOPPED;
    }
    const char *where = gpa < v->vm->ram_size ? "inside its RAM but not permitted" : "outside its RAM";
    vm_stop(v->vm, "EPT violation: %s at guest-physical 0x%lx (%s, RAM is 0x%lx bytes) at rip 0x%lx", access,
            gpa, where, v->vm->ram_size, vmcs_readnat(VMCS_GUEST_RIP));
    return EXIT_STOPPED;
}

enum exit_action handle_ept_misconfig(struct vcpu *v, const struct vmexit *e)
{
    (void)e;
    uint64_t gpa = vmcs_read64(VMCS_GUEST_PHYSICAL_ADDRESS);
    uint64_t size = 0;
    uint64_t leaf = ept_leaf_entry(&v->vm->ept, gpa, &size);
    kprintf("KEEL BUG: EPT misconfiguration at guest-physical 0x%lx: leaf 0x%016lx (page size 0x%lx), EPTP 0x%lx\n",
            gpa, leaf, size, v->vm->eptp);
    vm_stop(v->vm, "EPT misconfiguration at guest-physical 0x%lx (a Keel bug, see the dump above)", gpa);
    return EXIT_STOPPED;
}

enum exit_action handle_unexpected_exit(struct vcpu *v, const struct vmexit *e)
{
    vm_stop(v->vm, "unhandled VM exit %u (%s), qualification 0x%lx, at rip 0x%lx", e->reason,
            exit_reason_name(e->reason), e->qualification, vmcs_readnat(VMCS_GUEST_RIP));
    return EXIT_STOPPED;
}
