/* Ticket spinlock: fair between CPUs, so a console-heavy CPU cannot starve others. */
#ifndef KEEL_VMM_SPINLOCK_H
#define KEEL_VMM_SPINLOCK_H

#include "vmm/lib/types.h"

typedef struct {
    volatile uint32_t next;
    volatile uint32_t owner;
} spinlock_t;

#define SPINLOCK_INIT {0, 0}

static inline void spin_lock(spinlock_t *l)
{
    uint32_t me = __atomic_fetch_add(&l->next, 1, __ATOMIC_ACQUIRE);
    while (__atomic_load_n(&l->owner, __ATOMIC_ACQUIRE) != me)
        __builtin_ia32_pause();
}

static inline void spin_unlock(spinlock_t *l)
{
    __atomic_store_n(&l->owner, l->owner + 1, __ATOMIC_RELEASE);
}

/* Takes the lock only if nobody holds or waits for it: for work any CPU may do, where
 * a CPU that finds it taken simply leaves it to the holder. */
static inline bool spin_trylock(spinlock_t *l)
{
    uint32_t owner = __atomic_load_n(&l->owner, __ATOMIC_ACQUIRE);
    uint32_t expected = owner;
    return __atomic_compare_exchange_n(&l->next, &expected, owner + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* Interrupt-safe variants save and restore RFLAGS.IF. */
#ifdef KEEL_HOST_TEST
/* Host tests run in user mode, where CLI faults: the lock alone. */
static inline uint64_t spin_lock_irqsave(spinlock_t *l)
{
    spin_lock(l);
    return 0;
}

static inline void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags)
{
    (void)flags;
    spin_unlock(l);
}
#else
static inline uint64_t spin_lock_irqsave(spinlock_t *l)
{
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags)::"memory");
    spin_lock(l);
    return flags;
}

static inline void spin_unlock_irqrestore(spinlock_t *l, uint64_t flags)
{
    spin_unlock(l);
    if (flags & (1u << 9))
        __asm__ volatile("sti" ::: "memory");
}
#endif

#endif
