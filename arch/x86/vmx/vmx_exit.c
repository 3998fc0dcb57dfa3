/* The exit table of the VMX backend, and the decoders of the exits that carry more
 * than their reason: each turns VMX's encoding (exit qualification, interruption
 * information, guest-physical address) into a struct exit_info for a generic handler,
 * or words a guest fault or failed entry for the VM's report. */
#include "arch/x86/vmx/vmx_exit.h"
#include "arch/x86/trap.h"
#include "arch/x86/vmx/vmx_controls.h"
#include "arch/x86/vmx/vmx_errors.h"
#include "arch/x86/vmx/vmx_guest.h"
#include "vmm/lib/console.h"

struct vmx_exit_table vmx_exit_table;
vcpu_exit_fn vmx_generic[VCPU_EXIT_COUNT];
struct vcpu_hypercalls vmx_hypercalls;

/* Where each reason goes, from the one list; GENERIC entries are resolved at init. */
static const struct {
    vcpu_exit_fn vmx;
    uint8_t generic; /* VCPU_EXIT_* + 1, 0: a VMX decoder */
    bool needs_qualification;
} routes[VMX_EXIT_REASON_COUNT] = {
#define GENERIC(id) NULL, VCPU_EXIT_##id + 1
#define VMX(fn) fn, 0
#define VMX_EXIT_ROUTE(num, name, desc, kind, handler, needs_qual) [num] = {handler, needs_qual},
    VMX_EXIT_REASONS(VMX_EXIT_ROUTE)
#undef VMX_EXIT_ROUTE
#undef VMX
#undef GENERIC
};

STATIC_ASSERT(VMX_EXIT_REASON_COUNT < VCPU_EXIT_REASON_SLOTS, "per-vCPU exit counters too small (one slot for unknown reasons)");

/* Without a hypercall table every VMCALL reaches the HYPERCALL handler, as one from
 * CPL 0 does here. */
static enum exit_action hypercall_by_handler(struct vcpu *v, bool wide)
{
    struct exit_info e = {.hc = {.cpl = 0, .wide = wide}};
    return vmx_generic[VCPU_EXIT_HYPERCALL](v, &e);
}

static enum exit_action narrow_by_handler(struct vcpu *v)
{
    return hypercall_by_handler(v, false);
}

static enum exit_action wide_by_handler(struct vcpu *v)
{
    return hypercall_by_handler(v, true);
}

void vmx_exit_init(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT], const struct vcpu_hypercalls *hypercalls)
{
    for (unsigned i = 0; i < VCPU_EXIT_COUNT; i++)
        vmx_generic[i] = handlers[i];
    for (unsigned i = 0; i < VCPU_HYPERCALL_SLOTS; i++) {
        vmx_hypercalls.narrow[i] = hypercalls ? hypercalls->narrow[i] : narrow_by_handler;
        vmx_hypercalls.wide[i] = hypercalls ? hypercalls->wide[i] : wide_by_handler;
    }
    for (unsigned r = 0; r < VMX_EXIT_REASON_COUNT; r++) {
        vmx_exit_table.fn[r] = routes[r].generic ? handlers[routes[r].generic - 1] : routes[r].vmx;
        vmx_exit_table.needs_qualification[r] = routes[r].needs_qualification;
    }
}

static enum exit_action fatal(struct vcpu *v, struct exit_info *e)
{
    e->why = vcpu_arch(v)->fault;
    return vmx_generic[VCPU_EXIT_FATAL](v, e);
}

enum exit_action vmx_exit_flagged(struct vcpu *v, uint32_t raw)
{
    uint32_t reason = EXIT_REASON_BASIC(raw);
    struct exit_info e;
    if (reason >= VMX_EXIT_REASON_COUNT)
        return vmx_exit_unexpected(v, &e); /* a reason newer than the table: reported */
    vcpu_arch(v)->stats.exits[reason]++;
    return vmx_exit_table.fn[reason](v, &e);
}

/* The decoders run only from the run loop, between an exit and the next entry. */
static uint64_t exit_qualification(void)
{
    return vmcs_readnat_on_exit(VMCS_EXIT_QUALIFICATION);
}

/* The reason as the VMCS holds it, for the reports: the hot path does not pass it. */
static uint32_t exit_reason_basic(void)
{
    return EXIT_REASON_BASIC(vmcs_read32(VMCS_EXIT_REASON));
}

enum exit_action vmx_exit_unexpected(struct vcpu *v, struct exit_info *e)
{
    uint32_t reason = exit_reason_basic();
    /* The qualification only where the SDM defines one for the reason (and for a reason
     * too new to know, whatever the field holds). */
    uint64_t q = reason >= VMX_EXIT_REASON_COUNT || vmx_exit_table.needs_qualification[reason] ? exit_qualification() : 0;
    ksnprintf(vcpu_arch(v)->fault, sizeof(vcpu_arch(v)->fault),
              "unhandled VM exit %u (%s), qualification 0x%lx, at rip 0x%lx", reason, exit_reason_name(reason), q,
              vmcs_readnat(VMCS_GUEST_RIP));
    return fatal(v, e);
}

/* Interruption-information fields (SDM vol. 3, "Information for VM Exits Due to
 * Vectored Events"). */
#define INTR_INFO_VECTOR(i) ((i) & 0xff)
#define INTR_INFO_TYPE(i) (((i) >> 8) & 7)
#define INTR_INFO_VALID BIT(31)
#define INTR_TYPE_NMI 2

/* An exit in the middle of delivering an event (the guest's own exception, or one Keel
 * injected) leaves it in the IDT-vectoring field; it is delivered again at the next
 * entry, or the guest loses it (SDM vol. 3, 28.2.4 and 29.8.3). Only the exits that can
 * interrupt a delivery look: never CPUID, VMCALL and the other instruction exits. */
static void reinject_vectoring(void)
{
    uint32_t idt = vmcs_read32(VMCS_IDT_VECTORING_INFO);
    if (!(idt & INTR_INFO_VALID))
        return;
    uint32_t type = INTR_INFO_TYPE(idt);
    if (idt & BIT(11))
        vmcs_write32(VMCS_ENTRY_EXCEPTION_ERROR_CODE, vmcs_read32(VMCS_IDT_VECTORING_ERROR_CODE));
    /* Software interrupts and exceptions (INT n, INT3, INTO) are re-executed with their
     * instruction length. */
    if (type == 4 || type == 5 || type == 6)
        vmcs_write32(VMCS_ENTRY_INSTRUCTION_LENGTH, vmcs_read32(VMCS_EXIT_INSTRUCTION_LENGTH));
    vmcs_write32(VMCS_ENTRY_INTR_INFO, idt & ~(uint32_t)BIT(12));
}

enum exit_action vmx_exit_interrupt_window(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    vmx_interrupt_window(v, false);
    vcpu_arch(v)->recheck = 1;
    return EXIT_RESUME;
}

/* NMIs are unblocked (the guest's IRET, or the MOV-SS shadow ended): the pending one
 * goes in before the next entry. */
enum exit_action vmx_exit_nmi_window(struct vcpu *v, struct exit_info *e)
{
    (void)e;
    vmx_nmi_window(v, false);
    vcpu_arch(v)->recheck = 1;
    return EXIT_RESUME;
}

enum exit_action vmx_exit_external_interrupt(struct vcpu *v, struct exit_info *e)
{
    reinject_vectoring();
    /* "Acknowledge interrupt on exit" already took the vector from the APIC: run the
     * host's handler for it as if it had arrived in Keel. */
    uint32_t intr = vmcs_read32(VMCS_EXIT_INTR_INFO);
    struct trap_frame f = {.vector = INTR_INFO_VECTOR(intr)};
    if (intr & INTR_INFO_VALID)
        trap_dispatch(&f);
    e->why = NULL;
    return vmx_generic[VCPU_EXIT_INTERRUPT](v, e);
}

enum exit_action vmx_exit_exception_nmi(struct vcpu *v, struct exit_info *e)
{
    uint32_t intr = vmcs_read32(VMCS_EXIT_INTR_INFO);
    reinject_vectoring();
    if (INTR_INFO_TYPE(intr) == INTR_TYPE_NMI) {
        /* A host NMI arrived while the guest ran; Keel has no NMI sources of its own. */
        e->why = "host NMI during guest execution, ignored";
        return vmx_generic[VCPU_EXIT_INTERRUPT](v, e);
    }
    /* The exception bitmap is empty, so this is a guest exception Keel did not ask for. */
    ksnprintf(vcpu_arch(v)->fault, sizeof(vcpu_arch(v)->fault),
              "unexpected guest exception vector %u (interruption info 0x%x) at rip 0x%lx", INTR_INFO_VECTOR(intr),
              intr, vmcs_readnat(VMCS_GUEST_RIP));
    return fatal(v, e);
}

enum exit_action vmx_exit_triple_fault(struct vcpu *v, struct exit_info *e)
{
    ksnprintf(vcpu_arch(v)->fault, sizeof(vcpu_arch(v)->fault),
              "triple fault (the guest could not deliver an exception) at rip 0x%lx, cr0 0x%lx",
              vmcs_readnat(VMCS_GUEST_RIP), vmcs_readnat(VMCS_CR0_READ_SHADOW));
    return fatal(v, e);
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

enum exit_action vmx_exit_entry_failure(struct vcpu *v, struct exit_info *e)
{
    uint32_t reason = exit_reason_basic();
    uint64_t q = reason == EXIT_REASON_ENTRY_MACHINE_CHECK ? 0 : exit_qualification();
    ksnprintf(vcpu_arch(v)->fault, sizeof(vcpu_arch(v)->fault),
              "VM entry failed: %s (exit reason %u %s, qualification 0x%lx); guest rip 0x%lx cr0 0x%lx cr4 0x%lx",
              entry_failure_detail(reason, q), reason, exit_reason_name(reason), q, vmcs_readnat(VMCS_GUEST_RIP),
              vmcs_readnat(VMCS_GUEST_CR0), vmcs_readnat(VMCS_GUEST_CR4));
    return fatal(v, e);
}

enum exit_action vmx_exit_ept_violation(struct vcpu *v, struct exit_info *e)
{
    uint64_t q = e->qualification = exit_qualification();
    reinject_vectoring();
    e->mem.gpa = vmcs_read64(VMCS_GUEST_PHYSICAL_ADDRESS);
    e->mem.write = q & 2;
    e->mem.fetch = q & 4;
    return vmx_generic[VCPU_EXIT_MEMORY](v, e);
}

enum exit_action vmx_exit_ept_misconfig(struct vcpu *v, struct exit_info *e)
{
    const struct vm_vmx *vm = &vcpu_arch(v)->vm->vmx;
    uint64_t gpa = vmcs_read64(VMCS_GUEST_PHYSICAL_ADDRESS);
    uint64_t size = 0;
    uint64_t leaf = ept_leaf_entry(&vm->ept, gpa, &size);
    kprintf("KEEL BUG: EPT misconfiguration at guest-physical 0x%lx: leaf 0x%016lx (page size 0x%lx), EPTP 0x%lx\n",
            gpa, leaf, size, vm->eptp);
    ksnprintf(vcpu_arch(v)->fault, sizeof(vcpu_arch(v)->fault),
              "EPT misconfiguration at guest-physical 0x%lx (a Keel bug, see the dump above)", gpa);
    return fatal(v, e);
}

/* I/O-instruction exit qualification (SDM vol. 3, table "Exit Qualification for I/O
 * Instructions"). */
#define IOQ_SIZE(q) (((q) & 7) + 1)
#define IOQ_IN(q) (((q) >> 3) & 1)
#define IOQ_STRING(q) (((q) >> 4) & 1)
#define IOQ_PORT(q) ((uint16_t)((q) >> 16))

enum exit_action vmx_exit_io(struct vcpu *v, struct exit_info *e)
{
    uint64_t q = e->qualification = exit_qualification();
    e->io.port = IOQ_PORT(q);
    e->io.size = (uint8_t)IOQ_SIZE(q);
    e->io.in = IOQ_IN(q);
    e->io.string = IOQ_STRING(q);
    return vmx_generic[VCPU_EXIT_IO](v, e);
}

/* Control-register access exit qualification (SDM vol. 3, table "Exit Qualification
 * for Control-Register Accesses"). */
#define CRQ_NUM(q) ((q) & 15)
#define CRQ_TYPE(q) (((q) >> 4) & 3)
#define CRQ_REG(q) (((q) >> 8) & 15)
#define CRQ_LMSW_SRC(q) ((q) >> 16 & 0xffff)

enum exit_action vmx_exit_cr_access(struct vcpu *v, struct exit_info *e)
{
    uint64_t q = e->qualification = exit_qualification();
    e->cr.cr = (uint8_t)CRQ_NUM(q);
    e->cr.type = (uint8_t)CRQ_TYPE(q);
    e->cr.gpr = (uint8_t)CRQ_REG(q);
    e->cr.lmsw_source = (uint16_t)CRQ_LMSW_SRC(q);
    return vmx_generic[VCPU_EXIT_CR](v, e);
}

/* The VMCALLs the run loop did not call a hypercall for (vmx_hypercall): from CPL above
 * 0 or a conforming code segment, or with a number without a slot, for the handler to
 * refuse or call. Reached from the run loop only, between an exit and the next entry. */
enum exit_action vmx_exit_vmcall(struct vcpu *v, struct exit_info *e)
{
    /* The CPL is SS.DPL: CS.DPL is not, in a conforming segment. */
    e->hc.cpl = (uint8_t)((vmcs_read32_on_exit(VMCS_GUEST_SS_ACCESS_RIGHTS) >> 5) & 3);
    e->hc.wide = vmx_code64(vmcs_read32_on_exit(VMCS_GUEST_CS_ACCESS_RIGHTS));
    return vmx_generic[VCPU_EXIT_HYPERCALL](v, e);
}
