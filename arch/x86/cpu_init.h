/* Per-CPU bring-up shared by the boot CPU and the APs. */
#ifndef KEEL_ARCH_X86_CPU_INIT_H
#define KEEL_ARCH_X86_CPU_INIT_H

#include "arch/x86/percpu.h"

/* Allocates and zeroes a per-CPU block and its kernel stack; NULL when out of memory. */
struct percpu *percpu_create(uint32_t cpu_id, uint32_t apic_id);
/* Loads this CPU's GDT, TSS (IST stacks), the shared IDT, GS base, and sane CR0/CR4
 * (caches on: GRUB may leave CR0.CD set). */
void cpu_init_this(struct percpu *p);
/* The C entry for an AP once the trampoline has it in long mode on Keel's page tables
 * with RSP = p->stack_top. Reports in, checks VT-x, then runs the idle function
 * registered with cpu_set_ap_idle (or halts for good without one). */
NORETURN void ap_main(struct percpu *p);
typedef NORETURN void (*ap_idle_fn)(void);
void cpu_set_ap_idle(ap_idle_fn idle);

/* True when CPU `cpu` is online and may enter VMX operation. */
bool cpu_can_run_guests(int32_t cpu);

/* The CPU that deliberately faults once online (keel.cfg fault_test_cpu), or -1. */
extern int32_t cpu_fault_test;
/* Executes UD2 if the calling CPU is cpu_fault_test. */
void cpu_fault_test_point(struct percpu *p);

#endif
