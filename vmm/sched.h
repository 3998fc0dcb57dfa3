/* The vCPU scheduler: proportional shares by virtual run time over per-CPU run queues,
 * with affinity, migration, blocking and idle halting (design: vmm/sched-design.md). */
#ifndef KEEL_VMM_SCHED_H
#define KEEL_VMM_SCHED_H

#include "vmm/vm.h"

/* How the scheduler reads time and waits. Keel's own uses the TSC and halts the CPU;
 * host tests give a simulated clock. max_run bounds one call into the backend (0: the
 * slice alone does), so a simulation can interleave CPUs finely. */
struct sched_env {
    uint64_t (*now)(void);
    /* Waits with the CPU halted until the TSC reaches `until` (UINT64_MAX: no time
     * limit) or an IPI arrives. */
    void (*idle)(uint64_t until);
    uint64_t max_run;
};

/* Once, on the boot CPU after the APs are up: the slice, and which CPUs can run
 * guests (cpu_can_run_guests). */
void sched_init(uint32_t slice_ms);
void sched_set_env(const struct sched_env *env);
uint64_t sched_slice_tsc(void);

/* Narrows a VM's CPU list to the CPUs that can run guests, saying which it loses.
 * false (after saying so) when none is left. */
bool sched_usable_cpus(const char *vm_name, cpumask_t *cpus);
/* "0-2,5": for messages. */
void sched_format_cpus(const cpumask_t *cpus, char *buf, size_t size);
/* Gives a vCPU (affinity and weight filled in) to the least loaded run queue it may
 * use; returns that CPU. */
int32_t sched_add_vcpu(struct vcpu *v);

/* Lets every CPU enter its scheduler loop; called once VMs exist. */
void sched_release_cpus(void);
/* An IPI that makes the CPU look at its run queue (and leave guest mode). */
void sched_kick_cpu(uint32_t cpu);
/* What the kick IPI does on the CPU it reaches (its interrupt handler): woken vCPUs
 * become runnable, and the running one is asked to give the CPU back (percpu
 * sched_preempt, which the interrupt exit handler turns into a yield) when one of
 * them is owed it or another CPU waits for a vCPU from here. */
void sched_on_kick(void);
/* After vm_stop: the CPUs holding its vCPUs drop them; the last VM's stop wakes all. */
void sched_vm_stopped(struct vm *vm);

enum sched_step {
    SCHED_RAN,   /* a vCPU ran (or a decision moved work) */
    SCHED_IDLED, /* nothing to run: the CPU waited halted */
    SCHED_DONE,  /* no VM is left */
};
/* One decision on the calling CPU, and the run or the idle wait it leads to. */
enum sched_step sched_once(void);
/* Decides and runs until no VM is left. */
void sched_run_this_cpu(void);
/* APs wait here after boot until sched_release_cpus (or forever if never called). */
NORETURN void sched_ap_idle(void);
/* Per-CPU figures: switches, migrations, IPI wake-ups, idle time. */
void sched_report(void);

#endif
