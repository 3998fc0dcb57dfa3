/* The scheduler's part of a vCPU (vmm/sched.c, design in vmm/sched-design.md): its
 * share, where it may run, its place in a run queue and its accounting. Every field
 * but the accounting totals is written under the lock of the run queue that holds the
 * vCPU (sched.cpu); the totals are read without it by reports and VM_INFO. */
#ifndef KEEL_VMM_SCHED_VCPU_H
#define KEEL_VMM_SCHED_VCPU_H

#include "vmm/lib/types.h"
#include "arch/x86/cpumask.h"

#define SCHED_WEIGHT_DEFAULT 256

enum sched_state {
    SCHED_NEW = 0,   /* not yet given to a run queue */
    SCHED_RUNNABLE,  /* waiting in its queue */
    SCHED_RUNNING,   /* its CPU runs it (or is deciding about it) */
    SCHED_BLOCKED,   /* halted or waiting for SIPI: runnable again at an event */
    SCHED_MOVING,    /* between two run queues: only the CPU moving it touches it */
    SCHED_GONE,      /* its VM stopped: never runs again */
};

struct vcpu;

struct sched_vcpu {
    cpumask_t affinity;     /* CPUs it may run on: the configured ones that can run guests */
    uint32_t weight;        /* share under contention, 1..65535 */
    volatile int32_t cpu;   /* the CPU whose run queue holds it, -1 before placement */
    volatile uint32_t state; /* enum sched_state */
    uint64_t vruntime;      /* weighted run time: ticks * SCHED_WEIGHT_DEFAULT / weight */
    struct vcpu *prev, *next; /* in its queue's waiting or blocked list */
    int32_t migrate_to;     /* another CPU asked for it: moved at its CPU's next decision; -1 none */
    bool yielded;           /* gave its slice away: the others go first once */
    int32_t last_cpu;       /* the CPU it last ran on, -1: never ran */
    uint64_t since;         /* TSC of its last state change, for the totals below */
    uint64_t woken_at;      /* TSC of the kick that woke it, not yet run; 0: none */
    uint64_t unload_tsc;    /* what its last VMCLEAR for a move cost, for the migration figure */

    /* Totals in TSC ticks, and moves between CPUs. */
    volatile uint64_t run_tsc, wait_tsc, blocked_tsc;
    volatile uint32_t migrations;
};

struct sched_totals {
    uint64_t run_tsc, wait_tsc, blocked_tsc;
    uint32_t migrations;
};

/* The totals up to `now`, the current state's time included; for reports and VM_INFO,
 * from any CPU (a read racing a state change may miss that one interval). */
static inline struct sched_totals sched_vcpu_totals(const struct sched_vcpu *s, uint64_t now)
{
    struct sched_totals t = {s->run_tsc, s->wait_tsc, s->blocked_tsc, s->migrations};
    uint64_t since = s->since;
    uint64_t d = now > since ? now - since : 0;
    switch (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE)) {
    case SCHED_RUNNING: t.run_tsc += d; break;
    case SCHED_RUNNABLE:
    case SCHED_MOVING: t.wait_tsc += d; break;
    case SCHED_BLOCKED: t.blocked_tsc += d; break;
    default: break;
    }
    return t;
}

#endif
