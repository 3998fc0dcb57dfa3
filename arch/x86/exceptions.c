/* Fatal CPU exceptions in Keel itself: report everything that helps find the bug,
 * then stop only the faulting CPU. Guest faults never arrive here (they are VM exits). */
#include "arch/x86/trap.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "vmm/lib/console.h"

#define STACK_TRACE_DEPTH 16
#define STACK_TRACE_WINDOW (64 * 1024)

static const char *const exception_names[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
    "#BR bound range", "#UD invalid opcode", "#NM device not available", "#DF double fault",
    "coprocessor segment overrun", "#TS invalid TSS", "#NP segment not present",
    "#SS stack fault", "#GP general protection", "#PF page fault", "reserved 15",
    "#MF x87 error", "#AC alignment check", "#MC machine check", "#XM SIMD error",
    "#VE virtualization exception", "#CP control protection", "reserved 22", "reserved 23",
    "reserved 24", "reserved 25", "reserved 26", "reserved 27", "#HV hypervisor injection",
    "#VC VMM communication", "#SX security exception", "reserved 31",
};

const char *exception_name(uint64_t vector)
{
    return vector < 32 ? exception_names[vector] : "interrupt";
}

/* Follows saved frame pointers (the core is built with them). Only addresses just
 * above the faulting RSP are trusted, so a corrupt RBP ends the trace instead of
 * faulting again. */
static void stack_trace(const struct trap_frame *f)
{
    uint64_t rbp = f->rbp;
    uint64_t lo = f->rsp, hi = f->rsp + STACK_TRACE_WINDOW;
    kprintf("  stack trace: 0x%016lx\n", f->rip);
    for (int i = 0; i < STACK_TRACE_DEPTH; i++) {
        if ((rbp & 7) || rbp < lo || rbp + 16 > hi)
            break;
        const uint64_t *frame = (const uint64_t *)(uintptr_t)rbp;
        if (!frame[1])
            break;
        kprintf("               0x%016lx\n", frame[1]);
        lo = rbp + 16;
        rbp = frame[0];
    }
}

NORETURN void exception_fatal(const struct trap_frame *f)
{
    static volatile uint32_t depth[MAX_CPUS];
    uint32_t cpu = percpu_ready() ? this_cpu()->cpu_id : 0;
    if (depth[cpu]++) {
        /* Faulting while reporting a fault: say so with the least machinery. */
        console_write_raw("\nKeel: exception inside the exception handler; CPU stopped\n", 59);
        cpu_halt_forever();
    }
    console_emergency();
    kprintf("EXCEPTION: %s (vector %lu) error code 0x%lx on CPU %u\n", exception_name(f->vector),
            f->vector, f->error, cpu);
    kprintf("  rip 0x%016lx cs 0x%lx rflags 0x%lx rsp 0x%016lx ss 0x%lx\n", f->rip, f->cs,
            f->rflags, f->rsp, f->ss);
    kprintf("  rax 0x%016lx rbx 0x%016lx rcx 0x%016lx rdx 0x%016lx\n", f->rax, f->rbx, f->rcx, f->rdx);
    kprintf("  rsi 0x%016lx rdi 0x%016lx rbp 0x%016lx\n", f->rsi, f->rdi, f->rbp);
    kprintf("  r8  0x%016lx r9  0x%016lx r10 0x%016lx r11 0x%016lx\n", f->r8, f->r9, f->r10, f->r11);
    kprintf("  r12 0x%016lx r13 0x%016lx r14 0x%016lx r15 0x%016lx\n", f->r12, f->r13, f->r14, f->r15);
    kprintf("  cr0 0x%lx cr2 0x%016lx cr3 0x%016lx cr4 0x%lx\n", read_cr0(), read_cr2(), read_cr3(),
            read_cr4());
    stack_trace(f);
    kprintf("EXCEPTION: CPU %u stopped\n", cpu);
    if (percpu_ready())
        this_cpu()->online = 0;
    console_flush();
    cpu_halt_forever();
}
