/* Sets of CPUs by dense CPU index (percpu.cpu_id), as wide as MAX_CPUS allows. A plain
 * value type: copying it copies the set. Not atomic; callers serialise (a vCPU's mask
 * is only touched by the CPU that holds the vCPU). */
#ifndef KEEL_ARCH_X86_CPUMASK_H
#define KEEL_ARCH_X86_CPUMASK_H

#include "vmm/lib/types.h"
#include "arch/x86/percpu.h" /* MAX_CPUS; host-safe */

#define CPUMASK_WORDS ((MAX_CPUS + 63) / 64)

typedef struct {
    uint64_t w[CPUMASK_WORDS];
} cpumask_t;

/* CPU indices at or above MAX_CPUS are never members: set ignores them, test is false. */
static inline void cpumask_set(cpumask_t *m, uint32_t cpu)
{
    if (cpu < MAX_CPUS)
        m->w[cpu / 64] |= 1ull << (cpu % 64);
}

static inline void cpumask_clear(cpumask_t *m, uint32_t cpu)
{
    if (cpu < MAX_CPUS)
        m->w[cpu / 64] &= ~(1ull << (cpu % 64));
}

static inline bool cpumask_test(const cpumask_t *m, uint32_t cpu)
{
    return cpu < MAX_CPUS && (m->w[cpu / 64] >> (cpu % 64)) & 1;
}

/* True when some CPU other than `cpu` is in the set. */
static inline bool cpumask_any_but(const cpumask_t *m, uint32_t cpu)
{
    for (uint32_t i = 0; i < CPUMASK_WORDS; i++) {
        uint64_t w = m->w[i];
        if (cpu / 64 == i && cpu < MAX_CPUS)
            w &= ~(1ull << (cpu % 64));
        if (w)
            return true;
    }
    return false;
}

static inline uint32_t cpumask_count(const cpumask_t *m)
{
    uint32_t n = 0;
    /* By hand: the freestanding core has no libgcc for __builtin_popcountll. */
    for (uint32_t i = 0; i < CPUMASK_WORDS; i++)
        for (uint64_t w = m->w[i]; w; w &= w - 1)
            n++;
    return n;
}

#endif
