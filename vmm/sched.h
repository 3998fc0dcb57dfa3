/* Per-CPU run queues of vCPUs, time-sliced round-robin by the VMX-preemption timer. */
#ifndef KEEL_VMM_SCHED_H
#define KEEL_VMM_SCHED_H

#include "vmm/vm.h"

void sched_init(uint32_t slice_ms);
/* Puts a vCPU on a CPU's run queue (before or while that CPU schedules). */
void sched_enqueue(uint32_t cpu, struct vcpu *v);
uint32_t sched_queue_length(uint32_t cpu);
/* Lets every CPU enter its scheduler loop; called once VMs exist. */
void sched_release_cpus(void);
/* Makes a CPU leave guest mode soon (an IPI that exits to Keel), so its scheduler sees
 * that the VM it runs has stopped. */
void sched_kick_cpu(uint32_t cpu);
/* Runs the calling CPU's queue until it is empty. Returns when no VM is left
 * anywhere (on the CPU that stopped the last one); otherwise an idle CPU halts. */
void sched_run_this_cpu(void);
/* APs wait here after boot until sched_release_cpus (or forever if never called). */
NORETURN void sched_ap_idle(void);

#endif
