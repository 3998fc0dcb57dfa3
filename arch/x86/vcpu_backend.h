/* The seam between the generic hypervisor (vmm/) and a CPU virtualization backend, in
 * the spirit of Xen's hvm_function_table.
 *
 * Exits: the backend owns its run loop. It decodes each exit and calls the generic
 * handler for it from a table the generic side hands over once, at start-up
 * (vcpu_backend.init); handlers get what they need in decoded form (struct exit_info)
 * and say how the guest goes on (enum exit_action), so they never read backend state
 * themselves and the hot path has no call it does not need: an exit is one table call,
 * and a CPUID leaf the vCPU keeps (struct vcpu_cpuid_cache) none.
 *
 * Everything else is cold and goes through struct vcpu_backend: set-up, loading on a
 * CPU, guest registers the generic handlers need now and then, event injection. */
#ifndef KEEL_ARCH_X86_VCPU_BACKEND_H
#define KEEL_ARCH_X86_VCPU_BACKEND_H

#include "vmm/lib/types.h"
#include "arch/x86/exit_kinds.h"
#include "arch/x86/percpu.h"
#include "arch/x86/vcpu_arch.h"

/* How the guest goes on after an exit. */
enum exit_action {
    EXIT_NEXT = 0,   /* resume after the instruction that exited: the common case */
    EXIT_RESUME,     /* resume where it is (an event was injected, or nothing to step over) */
    EXIT_NEXT_YIELD, /* step over the instruction, then let the next vCPU on this CPU run */
    EXIT_YIELD,      /* let the next vCPU on this CPU run */
    EXIT_STOPPED,    /* the VM was stopped; never enter it again */
};

/* The generic handlers, one per thing a guest can make Keel do: X(ID, name) gives
 * VCPU_EXIT_ID, handled by exit_name() of vmm/exit_handlers.h. */
#define VCPU_EXITS(X)                                                                                  \
    X(CPUID, cpuid)                                                                                    \
    X(HYPERCALL, hypercall) /* e->hc */                                                                \
    X(IO, io)               /* e->io */                                                                \
    X(RDMSR, rdmsr)                                                                                    \
    X(WRMSR, wrmsr)                                                                                    \
    X(HLT, hlt)                                                                                        \
    X(CR, cr)               /* e->cr */                                                                \
    X(XSETBV, xsetbv)                                                                                  \
    X(WBINVD, wbinvd)       /* INVD too: dropping other guests' dirty lines is not the guest's call */ \
    X(RDPMC, rdpmc)                                                                                    \
    X(UNDEFINED, undefined) /* an instruction the guest's CPUID says it lacks (VMX, MONITOR/MWAIT) */  \
    X(MEMORY, memory)       /* e->mem: a guest-physical access the EPT (or NPT) did not allow */       \
    X(INTERRUPT, interrupt) /* a host interrupt or NMI, already handled by the backend */              \
    X(TIMER, timer)         /* the preemption timer: a slice's end or a guest timer is due */  \
    X(EVENTS, events)       /* before an entry when vcpu_arch.recheck is set: deliver events */\
    X(SLICE_END, slice_end)                                                                            \
    X(PAUSE, pause)         /* a PAUSE loop: the guest spins on a lock, likely held by a waiting vCPU */\
    X(FATAL, fatal)         /* e->why: a guest fault or failed entry, as the backend words it */

enum vcpu_exit {
#define VCPU_EXIT_ENUM(id, name) VCPU_EXIT_##id,
    VCPU_EXITS(VCPU_EXIT_ENUM)
#undef VCPU_EXIT_ENUM
    VCPU_EXIT_COUNT
};

enum cr_access_type {
    CR_MOV_TO = 0,
    CR_MOV_FROM,
    CR_CLTS,
    CR_LMSW,
};

struct exit_info {
    uint64_t qualification; /* the backend's raw detail, for the backend only */
    union {
        struct {
            uint16_t port;
            uint8_t size; /* 1, 2 or 4 */
            bool in, string;
        } io;
        struct {
            uint8_t cr;   /* 0, 3, 4, 8 */
            uint8_t type; /* enum cr_access_type */
            uint8_t gpr;  /* MOV's register, 0-15 in ModRM order (4 is RSP) */
            uint16_t lmsw_source;
        } cr;
        struct {
            gpa_t gpa;
            bool write, fetch;
        } mem;
        struct {
            uint8_t cpl;
            bool wide; /* 64-bit code: arguments are full registers */
        } hc;
        const char *why;
    };
};

struct vcpu;
typedef enum exit_action (*vcpu_exit_fn)(struct vcpu *v, struct exit_info *e);

/* Keel's hypercalls by function number (vmm/hypercall_abi.h), from the generic side at
 * init: a backend calls one itself for a VMCALL from CPL 0 whose number has a slot. One
 * table per width of the caller, so that each function knows it as a constant: wide
 * (64-bit code) passes whole registers as arguments and gets a whole register back;
 * 32-bit code passes and gets 32-bit values. The function reads its arguments and writes
 * its result in the guest's registers. Every other VMCALL goes to the HYPERCALL exit
 * handler (e->hc), which refuses or calls the same functions. */
#define VCPU_HYPERCALL_SLOTS 8
typedef enum exit_action (*vcpu_hypercall_fn)(struct vcpu *v);
struct vcpu_hypercalls {
    vcpu_hypercall_fn narrow[VCPU_HYPERCALL_SLOTS];
    vcpu_hypercall_fn wide[VCPU_HYPERCALL_SLOTS];
};

/* What a vCPU is doing, for the backend's set-up of the next entry. */
enum vcpu_activity {
    VCPU_ACTIVE = 0,
    VCPU_WAIT_SIPI, /* after INIT: nothing runs until a start-up IPI */
};

/* Guest state the generic handlers read and write through the backend. CR0 and CR4
 * are the guest's view; writing them applies what the CPU needs underneath. Writing
 * EFER also sets the mode the next entry starts in from EFER.LMA. CPL and CODE64 are
 * read-only. */
#define VCPU_REGS(X) \
    X(RIP) X(RSP) X(RFLAGS) X(CR0) X(CR3) X(CR4) X(EFER) X(PAT) X(SYSENTER_CS) X(SYSENTER_ESP) \
    X(SYSENTER_EIP) X(FS_BASE) X(GS_BASE) X(CPL) X(CODE64) X(CS_BASE) X(CS_DB) X(INTERRUPTIBILITY) X(CR2)

enum vcpu_reg {
#define VCPU_REG_ENUM(name) VCPU_REG_##name,
    VCPU_REGS(VCPU_REG_ENUM)
#undef VCPU_REG_ENUM
    VCPU_REG_COUNT
};

/* One stretch of a VM's RAM for its second-stage translation. */
struct vm_ram_range {
    gpa_t gpa;
    hpa_t hpa;
    uint64_t size;
};

struct vcpu_backend {
    const char *name;
    /* Once, on the boot CPU: capabilities, shared bitmaps, the handler table. false
     * (after saying why) when no guest can run on this machine. */
    bool (*init)(const vcpu_exit_fn handlers[VCPU_EXIT_COUNT], const struct vcpu_hypercalls *hypercalls);
    /* Entering and leaving guest-capable operation on the calling CPU (VMXON). */
    bool (*cpu_on)(struct percpu *p);
    void (*cpu_off)(struct percpu *p);

    /* The VM's second-stage translation of its RAM: each range's size bytes at gpa,
     * backed by host-physical memory from hpa (the generic side lays them out). */
    bool (*vm_create)(struct vm_arch *vm, const char *name, const struct vm_ram_range *ram, unsigned ranges);
    void (*vm_destroy)(struct vm_arch *vm);
    /* "EPT 1/2/3 4K/2M/1G pages, VPID 4": what the start-up line says about it. */
    void (*describe)(const struct vm_arch *vm, struct vcpu *v, char *buf, size_t size);

    bool (*vcpu_create)(struct vcpu *v, struct vm_arch *vm, const char *name, const struct vcpu_boot *boot);
    void (*vcpu_destroy)(struct vcpu *v);
    /* Runs the vCPU on the calling CPU until its slice ends, it yields or it stops:
     * EXIT_YIELD or EXIT_STOPPED. */
    enum exit_action (*run)(struct vcpu *v, uint64_t slice_tsc);
    /* Makes the vCPU current on the calling CPU (VMPTRLD; on a CPU other than its last,
     * host state and TLB tags too) with its swapped state in the registers. run does it
     * as well; the scheduler calls it first to time it. */
    void (*load)(struct vcpu *v);
    /* Lets another CPU load it next (VMCLEAR), with its swapped state saved from this
     * CPU's registers; a no-op if not loaded here. */
    void (*unload)(struct vcpu *v);

    /* On the CPU the vCPU is loaded on. */
    uint64_t (*get_reg)(struct vcpu *v, enum vcpu_reg r);
    void (*set_reg)(struct vcpu *v, enum vcpu_reg r, uint64_t value);
    void (*inject_exception)(struct vcpu *v, uint8_t vector, bool has_error, uint32_t error);
    /* Interrupts from the virtual platform. can_inject: the guest takes an external
     * interrupt at the next entry (RFLAGS.IF, no STI/MOV-SS shadow, no event already
     * being injected). interrupt_window: exit (then EVENTS) as soon as it can. */
    bool (*can_inject)(struct vcpu *v);
    void (*inject_interrupt)(struct vcpu *v, uint8_t vector);
    bool (*inject_nmi)(struct vcpu *v); /* false: NMIs are blocked now, try again later */
    void (*interrupt_window)(struct vcpu *v, bool on);
    /* Exit (then EVENTS) as soon as NMIs are no longer blocked. false: the CPU cannot
     * say when, so the caller looks again before every entry. */
    bool (*nmi_window)(struct vcpu *v, bool on);
    /* INIT: the architectural INIT state, waiting for SIPI; SIPI: real mode at
     * vector * 0x1000 (SDM vol. 3, 9.4.4 and 10.6.1). */
    void (*init_vcpu)(struct vcpu *v);
    void (*start_at_sipi)(struct vcpu *v, uint8_t vector);
    /* A machine reset, on the CPU the vCPU is loaded on: every register, the swapped
     * state (FPU, XCR0, debug registers, syscall MSRs) and the controls as at power-on,
     * then boot's state (the boot vCPU), or with boot NULL the INIT state waiting for
     * SIPI (the others). The guest's cached translations go too. */
    void (*reset_vcpu)(struct vcpu *v, const struct vcpu_boot *boot);

    /* What the CPU lets a guest have. */
    uint64_t (*cr4_allowed)(void);    /* CR4 bits a guest may set */
    uint64_t (*xcr0_supported)(void); /* XCR0 components, 0 without XSAVE */
    bool (*paging_off_guests)(void);  /* real mode and unpaged protected mode can run */

    /* The raw reasons, for reports. */
    const char *(*exit_reason_name)(uint32_t raw);
    enum exit_kind (*exit_reason_kind)(uint32_t raw);
};

extern const struct vcpu_backend vmx_backend;

#endif
