/* The vCPU scheduler (vmm/sched-design.md has the reasons). Each CPU has a run queue;
 * a vCPU belongs to exactly one at a time (sched.cpu) and only that CPU loads it, runs
 * it or gives it away, so a VMCS is always VMCLEARed on the CPU it is active on before
 * another CPU may load it.
 *
 * Policy: the vCPU with the lowest virtual run time (ticks on a CPU scaled by
 * SCHED_WEIGHT_DEFAULT / weight) runs next, for a slice; a vCPU that wakes with unused
 * share (its virtual time well below the running one's) takes the CPU at once, and a
 * CPU whose waiting vCPUs lag another CPU's (or an idle CPU) takes one over. A slice
 * ends by the backend's preemption timer, so a guest spinning with interrupts off still
 * gives the CPU back; Keel's time on a vCPU's exits is its own. */
#include "vmm/sched.h"
#include "vmm/vcpu.h"
#include "arch/x86/cpu.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "arch/x86/lapic.h"
#include "arch/x86/tsc.h"
#include "drivers/timer.h"
#include "vmm/lib/time_math.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

struct sched_cpu_stats {
    uint64_t decisions, runs, busy_tsc;
    /* From the start of a decision to the vCPU loaded: another vCPU than the last on
     * this CPU; a vCPU that last ran elsewhere (its VMCLEAR there added). */
    uint64_t switches, switch_tsc, switch_min;
    uint64_t migrations, migrate_tsc, migrate_min;
    uint64_t wakeups, wake_tsc, wake_min, wake_max;  /* IPI sent elsewhere to the vCPU running here */
    uint64_t idles, idle_tsc;
    uint64_t preemptions;
};
#include "drivers/console_pc.h"

struct run_queue {
    spinlock_t lock;
    struct vcpu *waiting;    /* runnable, not running; unsorted */
    struct vcpu *blocked;
    struct vcpu *curr;       /* the vCPU this CPU runs, between decisions too; NULL: none */
    uint32_t nr_waiting, nr_blocked;
    uint64_t min_vruntime;   /* never decreases: where woken and arriving vCPUs start */
    uint32_t stop_gen_seen;  /* stop_gen when this queue last dropped stopped vCPUs */
    uint64_t slice_end;      /* curr's slice */
    uint64_t last_run_end;   /* when the last run here returned, 0: idled since */
    volatile uint64_t lag_hint;     /* lowest waiting vruntime, UINT64_MAX: none; read unlocked */
    volatile uint64_t kick_sent_at; /* TSC of the first kick not yet looked at, 0: none */
    volatile uint32_t idle;  /* halted with nothing to run */
    volatile uint32_t push;  /* a waiting vCPU has migrate_to set */
    bool usable;
    struct sched_cpu_stats st;
} ALIGNED(64);

static struct run_queue rqs[MAX_CPUS];
static uint32_t cpu_limit; /* one past the highest usable CPU */
static uint64_t slice_tsc, wake_credit, preempt_gran, pull_gap;
static volatile uint32_t cpus_released;
static volatile uint32_t idle_cpus;     /* how many run queues have idle set */
static volatile uint32_t stop_gen;      /* bumped at each VM stop: queues look for its vCPUs */
static const struct sched_env *env;

#define VECTOR_WAKE 0xf0 /* IPI that releases halted APs, and kicks a CPU out of guest mode */
#define VECTOR_IDLE_TIMER 0xef /* ends an idle CPU's wait for a halted vCPU's timer */

static uint64_t tsc_now(void)
{
    return rdtsc();
}

/* Halts the CPU (interrupts on, so a kick's IPI or the timer ends it) until the TSC
 * reaches `until`, UINT64_MAX: until a kick. Without a calibrated LAPIC timer, a
 * deadline is waited for by polling the TSC instead. */
static void idle_until(uint64_t until)
{
    uint64_t now = rdtsc();
    if (until <= now)
        return;
    uint64_t lapic_hz = lapic_timer_hz();
    if (until != UINT64_MAX && (!lapic_hz || !tsc_calibrated())) {
        while (rdtsc() < until)
            cpu_relax();
        return;
    }
    if (until != UINT64_MAX) {
        uint64_t ticks = muldiv64(until - now, lapic_hz, tsc_hz());
        lapic_timer_set_divide(1);
        lapic_timer_start(VECTOR_IDLE_TIMER, LAPIC_TIMER_ONESHOT, (uint32_t)MAX(MIN(ticks, 0xffffffffull), 1), false);
    }
    __asm__ volatile("sti; hlt; cli" ::: "memory");
    if (until != UINT64_MAX)
        lapic_timer_stop();
}

static const struct sched_env keel_env = {.now = tsc_now, .idle = idle_until};

static void wake_handler(struct trap_frame *f)
{
    (void)f;
    lapic_eoi();
    if (__atomic_load_n(&cpus_released, __ATOMIC_ACQUIRE))
        sched_on_kick();
}

static void timer_handler(struct trap_frame *f)
{
    (void)f;
    lapic_eoi();
}

/* The clock, without an indirect call when it is the TSC (every decision reads it a
 * few times). */
static inline uint64_t clock_now(void)
{
    return env == &keel_env ? rdtsc() : env->now();
}

void sched_set_env(const struct sched_env *e)
{
    env = e;
}

uint64_t sched_slice_tsc(void)
{
    return slice_tsc;
}

void sched_init(uint32_t slice_ms)
{
    irq_register(VECTOR_WAKE, wake_handler);
    irq_register(VECTOR_IDLE_TIMER, timer_handler);
    env = &keel_env;
    uint64_t hz = tsc_calibrated() ? tsc_hz() : 1000000000ull;
    slice_tsc = hz / 1000 * slice_ms;
    /* A vCPU that wakes starts at most half a slice behind the queue, so sleeping earns
     * a prompt turn but no hoard; it takes the CPU when it lags the running vCPU by a
     * quarter slice; waiting work moves to another CPU when it lags there by half a slice. */
    wake_credit = slice_tsc / 2;
    preempt_gran = slice_tsc / 4;
    pull_gap = slice_tsc / 2;
    cpu_limit = 0;
    idle_cpus = 0;
    memset(rqs, 0, sizeof(rqs));
    for (uint32_t c = 0; c < MAX_CPUS; c++) {
        rqs[c].lock = (spinlock_t)SPINLOCK_INIT;
        rqs[c].lag_hint = UINT64_MAX;
        rqs[c].usable = cpu_can_run_guests((int32_t)c);
        if (rqs[c].usable)
            cpu_limit = c + 1;
    }
    kprintf("SCHED: proportional share (virtual run time), %u ms slices (%lu TSC ticks), %u CPUs\n", slice_ms,
            slice_tsc, cpu_limit);
}

void sched_format_cpus(const cpumask_t *m, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    for (uint32_t c = 0; c < MAX_CPUS && used + 1 < size; c++) {
        if (!cpumask_test(m, c))
            continue;
        uint32_t end = c;
        while (end + 1 < MAX_CPUS && cpumask_test(m, end + 1))
            end++;
        int n = end == c ? ksnprintf(buf + used, size - used, "%s%u", used ? "," : "", c)
                         : ksnprintf(buf + used, size - used, "%s%u-%u", used ? "," : "", c, end);
        if (n < 0)
            break;
        used += (size_t)n;
        c = end;
    }
    if (used >= size)
        buf[size - 1] = 0;
}

bool sched_usable_cpus(const char *vm_name, cpumask_t *cpus)
{
    cpumask_t lost = {0}, kept = {0};
    for (uint32_t c = 0; c < MAX_CPUS; c++) {
        if (!cpumask_test(cpus, c))
            continue;
        if (rqs[c].usable)
            cpumask_set(&kept, c);
        else
            cpumask_set(&lost, c);
    }
    char l[64], k[64];
    sched_format_cpus(&lost, l, sizeof(l));
    sched_format_cpus(&kept, k, sizeof(k));
    if (!cpumask_count(&kept)) {
        if (cpumask_count(&lost) == 1)
            kprintf("VM %s: not started: CPU %s is not online with VMX\n", vm_name, l);
        else
            kprintf("VM %s: not started: none of its CPUs (%s) is online with VMX\n", vm_name, l);
        return false;
    }
    if (cpumask_count(&lost))
        kprintf("VM %s: CPUs %s of its list are not online with VMX; it runs on %s\n", vm_name, l, k);
    *cpus = kept;
    return true;
}

/* ---- run queues; all under the queue's lock ---- */

static void list_add(struct vcpu **head, struct vcpu *v)
{
    v->sched.prev = NULL;
    v->sched.next = *head;
    if (*head)
        (*head)->sched.prev = v;
    *head = v;
}

static void list_del(struct vcpu **head, struct vcpu *v)
{
    if (v->sched.prev)
        v->sched.prev->sched.next = v->sched.next;
    else
        *head = v->sched.next;
    if (v->sched.next)
        v->sched.next->sched.prev = v->sched.prev;
    v->sched.prev = v->sched.next = NULL;
}

/* The time since the last change goes to the total of the state it leaves. TSCs of
 * different CPUs may disagree by a little: never a negative interval. */
static void set_state(struct vcpu *v, enum sched_state s, uint64_t now)
{
    struct sched_vcpu *e = &v->sched;
    uint64_t d = now > e->since ? now - e->since : 0;
    switch (e->state) {
    case SCHED_RUNNING: e->run_tsc += d; break;
    case SCHED_RUNNABLE:
    case SCHED_MOVING: e->wait_tsc += d; break;
    case SCHED_BLOCKED: e->blocked_tsc += d; break;
    default: break;
    }
    e->since = MAX(now, e->since);
    __atomic_store_n(&e->state, s, __ATOMIC_RELEASE);
}

static void update_hint(struct run_queue *q)
{
    uint64_t lo = UINT64_MAX;
    for (struct vcpu *w = q->waiting; w; w = w->sched.next)
        lo = MIN(lo, w->sched.vruntime);
    __atomic_store_n(&q->lag_hint, lo, __ATOMIC_RELEASE);
}

/* Where a vCPU joining a queue starts: no further behind than wake_credit, so time
 * spent blocked or elsewhere is not a claim on this CPU's future. */
static void place(struct run_queue *q, struct vcpu *v)
{
    uint64_t floor = q->min_vruntime > wake_credit ? q->min_vruntime - wake_credit : 0;
    v->sched.vruntime = MAX(v->sched.vruntime, floor);
}

static void enqueue_waiting(struct run_queue *q, struct vcpu *v, uint64_t now)
{
    list_add(&q->waiting, v);
    q->nr_waiting++;
    set_state(v, SCHED_RUNNABLE, now);
    if (v->sched.vruntime < q->lag_hint)
        __atomic_store_n(&q->lag_hint, v->sched.vruntime, __ATOMIC_RELEASE);
}

static void dequeue_waiting(struct run_queue *q, struct vcpu *v)
{
    list_del(&q->waiting, v);
    q->nr_waiting--;
    if (!q->waiting)
        __atomic_store_n(&q->lag_hint, UINT64_MAX, __ATOMIC_RELEASE);
    else if (v->sched.vruntime == q->lag_hint)
        update_hint(q);
}

static void enqueue_blocked(struct run_queue *q, struct vcpu *v, uint64_t now)
{
    list_add(&q->blocked, v);
    q->nr_blocked++;
    set_state(v, SCHED_BLOCKED, now);
}

static void wake_locked(struct run_queue *q, struct vcpu *v, uint64_t now)
{
    list_del(&q->blocked, v);
    q->nr_blocked--;
    place(q, v);
    enqueue_waiting(q, v, now);
}

/* w is owed the CPU that c holds. */
static bool beats(const struct vcpu *w, const struct vcpu *c)
{
    return w->sched.vruntime + preempt_gran < c->sched.vruntime;
}

/* Lowest virtual time first; among equals the one waiting longest. A vCPU that has just
 * yielded goes after every other. */
static bool better(const struct vcpu *a, const struct vcpu *b)
{
    if (!b)
        return true;
    if (a->sched.yielded != b->sched.yielded)
        return !a->sched.yielded;
    if (a->sched.vruntime != b->sched.vruntime)
        return a->sched.vruntime < b->sched.vruntime;
    return a->sched.since < b->sched.since;
}

static struct vcpu *best_waiting(struct run_queue *q)
{
    struct vcpu *best = NULL;
    for (struct vcpu *w = q->waiting; w; w = w->sched.next)
        if (w->sched.migrate_to < 0 && better(w, best))
            best = w;
    return best;
}

static void update_min_vruntime(struct run_queue *q)
{
    uint64_t lo = q->curr ? q->curr->sched.vruntime : UINT64_MAX;
    for (struct vcpu *w = q->waiting; w; w = w->sched.next)
        lo = MIN(lo, w->sched.vruntime);
    if (lo != UINT64_MAX && lo > q->min_vruntime)
        q->min_vruntime = lo;
}

static bool vm_stopped(const struct vcpu *v)
{
    return __atomic_load_n(&v->vm->state, __ATOMIC_ACQUIRE) == VM_STOPPED;
}

static bool stat_min(uint64_t *min, uint64_t v)
{
    if (!*min || v < *min) {
        *min = v;
        return true;
    }
    return false;
}

static uint32_t load_of(const struct run_queue *q)
{
    return q->nr_waiting + q->nr_blocked + (q->curr ? 1 : 0);
}

int32_t sched_add_vcpu(struct vcpu *v)
{
    int32_t best = -1;
    for (uint32_t c = 0; c < cpu_limit; c++)
        if (rqs[c].usable && cpumask_test(&v->sched.affinity, c) &&
            (best < 0 || load_of(&rqs[c]) < load_of(&rqs[best])))
            best = (int32_t)c;
    if (best < 0)
        return -1;
    struct run_queue *q = &rqs[best];
    uint64_t now = clock_now();
    spin_lock(&q->lock);
    v->sched.cpu = best;
    v->sched.migrate_to = -1;
    v->sched.last_cpu = -1;
    v->sched.since = now;
    v->sched.vruntime = q->min_vruntime;
    if (vcpu_runnable(v, now))
        enqueue_waiting(q, v, now);
    else
        enqueue_blocked(q, v, now);
    spin_unlock(&q->lock);
    return best;
}

void sched_release_cpus(void)
{
    __atomic_store_n(&cpus_released, 1, __ATOMIC_RELEASE);
    for (uint32_t c = 1; c < MAX_CPUS; c++)
        if (percpu_blocks[c] && percpu_blocks[c]->online)
            lapic_send_fixed(percpu_blocks[c]->apic_id, VECTOR_WAKE);
}

void sched_kick_cpu(uint32_t cpu)
{
    if (cpu >= MAX_CPUS || !percpu_blocks[cpu] || !percpu_blocks[cpu]->online)
        return;
    uint64_t expected = 0;
    uint64_t now = env ? clock_now() : 0;
    __atomic_compare_exchange_n(&rqs[cpu].kick_sent_at, &expected, now ? now : 1, false, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
    lapic_send_fixed(percpu_blocks[cpu]->apic_id, VECTOR_WAKE);
}

static void set_idle(struct run_queue *q, uint32_t on)
{
    if (q->idle == on)
        return;
    __atomic_store_n(&q->idle, on, __ATOMIC_RELEASE);
    if (on)
        __atomic_add_fetch(&idle_cpus, 1, __ATOMIC_ACQ_REL);
    else
        __atomic_sub_fetch(&idle_cpus, 1, __ATOMIC_ACQ_REL);
}

/* An idle CPU in the set, not in `taken`, or -1. */
static int32_t idle_cpu_in(const cpumask_t *m, const cpumask_t *taken, uint32_t self)
{
    for (uint32_t c = 0; c < cpu_limit; c++)
        if (c != self && rqs[c].usable && cpumask_test(m, c) && !cpumask_test(taken, c) &&
            __atomic_load_n(&rqs[c].idle, __ATOMIC_ACQUIRE))
            return (int32_t)c;
    return -1;
}

/* Waiting vCPUs an idle CPU could run go there (the caller moves them). */
static bool offer_to_idle(struct run_queue *q, uint32_t self)
{
    if (!q->waiting || !__atomic_load_n(&idle_cpus, __ATOMIC_ACQUIRE))
        return false;
    cpumask_t taken = {0};
    bool any = false;
    for (struct vcpu *w = q->waiting; w; w = w->sched.next) {
        if (w->sched.migrate_to >= 0)
            continue;
        int32_t c = idle_cpu_in(&w->sched.affinity, &taken, self);
        if (c < 0)
            continue;
        w->sched.migrate_to = c;
        cpumask_set(&taken, (uint32_t)c);
        any = true;
    }
    if (any)
        q->push = 1;
    return any;
}

/* Wakes the blocked vCPUs that have something to look at. */
static void wake_due(struct run_queue *q, uint64_t now, uint64_t kicked_at, bool *owed)
{
    for (struct vcpu *v = q->blocked, *next; v; v = next) {
        next = v->sched.next;
        bool by_event = __atomic_load_n(&v->arch.recheck, __ATOMIC_ACQUIRE);
        if (!vcpu_runnable(v, now))
            continue;
        wake_locked(q, v, now);
        if (by_event && kicked_at && !v->sched.woken_at)
            v->sched.woken_at = kicked_at;
        if (owed && q->curr && beats(v, q->curr))
            *owed = true;
    }
}

void sched_on_kick(void)
{
    struct percpu *p = this_cpu();
    struct run_queue *q = &rqs[p->cpu_id];
    uint64_t now = clock_now();
    bool owed = false;
    spin_lock(&q->lock);
    uint64_t kicked_at = __atomic_exchange_n(&q->kick_sent_at, 0, __ATOMIC_ACQ_REL);
    wake_due(q, now, kicked_at, &owed);
    if (q->curr && !owed)
        offer_to_idle(q, p->cpu_id);
    bool give_back = q->curr && (owed || q->push);
    spin_unlock(&q->lock);
    if (give_back)
        __atomic_store_n(&p->sched_preempt, 1, __ATOMIC_RELEASE);
}

void sched_vm_stopped(struct vm *vm)
{
    __atomic_add_fetch(&stop_gen, 1, __ATOMIC_ACQ_REL);
    uint32_t self = this_cpu()->cpu_id;
    for (uint32_t i = 0; i < vm->vcpu_count; i++) {
        int32_t c = __atomic_load_n(&vm->vcpus[i]->sched.cpu, __ATOMIC_ACQUIRE);
        if (c >= 0 && (uint32_t)c != self)
            sched_kick_cpu((uint32_t)c);
    }
    if (!vms_running())
        for (uint32_t c = 0; c < cpu_limit; c++)
            if (c != self && rqs[c].usable)
                sched_kick_cpu(c);
}

/* Moves vCPUs (unlinked, state MOVING) from this CPU to the ones that asked for them:
 * VMCLEAR here first, so the next CPU may load the VMCS (SDM vol. 3, 25.11.1). */
static void push_moving(struct vcpu *list)
{
    for (struct vcpu *w = list, *next; w; w = next) {
        next = w->sched.next;
        uint64_t t0 = clock_now();
        vcpu_unload(w);
        uint64_t t1 = clock_now();
        uint32_t dest = (uint32_t)w->sched.migrate_to;
        struct run_queue *d = &rqs[dest];
        spin_lock(&d->lock);
        w->sched.migrate_to = -1;
        w->sched.unload_tsc = t1 - t0;
        /* Its virtual time keeps its meaning on any CPU (service received, weighted):
         * a lagging vCPU that moves keeps its claim to catch up. */
        __atomic_store_n(&w->sched.cpu, (int32_t)dest, __ATOMIC_RELEASE);
        enqueue_waiting(d, w, t1);
        bool wake = d->idle;
        spin_unlock(&d->lock);
        if (wake)
            sched_kick_cpu(dest);
    }
}

/* Balancing: asks another CPU for a waiting vCPU that lags what this CPU would run by
 * more than pull_gap (any, when idle). A vCPU loaded nowhere is taken at once; one
 * loaded there is marked, and its CPU gives it at its next decision (at once if this
 * CPU idles). Returns true when a vCPU arrived here. */
static bool pull(uint32_t self, uint64_t my_vr, bool idle, uint64_t now)
{
    for (uint32_t i = 1; i < cpu_limit; i++) {
        uint32_t c = (self + i) % cpu_limit;
        struct run_queue *r = &rqs[c];
        uint64_t hint = __atomic_load_n(&r->lag_hint, __ATOMIC_ACQUIRE);
        if (!r->usable || hint == UINT64_MAX || (!idle && hint + pull_gap >= my_vr))
            continue;
        spin_lock(&r->lock);
        struct vcpu *w = NULL;
        /* Not one that came to that CPU and has not run there yet: moved on and on, it
         * would never run at all. */
        for (struct vcpu *x = r->waiting; x; x = x->sched.next)
            if (x->sched.migrate_to < 0 && cpumask_test(&x->sched.affinity, self) &&
                (idle || x->sched.last_cpu < 0 || x->sched.last_cpu == (int32_t)c) &&
                (idle || x->sched.vruntime + pull_gap < my_vr) && (!w || x->sched.vruntime < w->sched.vruntime))
                w = x;
        if (!w) {
            spin_unlock(&r->lock);
            continue;
        }
        if (__atomic_load_n(&w->arch.loaded_cpu, __ATOMIC_ACQUIRE) < 0) {
            dequeue_waiting(r, w);
            set_state(w, SCHED_MOVING, now);
            spin_unlock(&r->lock);
            struct run_queue *q = &rqs[self];
            spin_lock(&q->lock);
            __atomic_store_n(&w->sched.cpu, (int32_t)self, __ATOMIC_RELEASE);
            w->sched.unload_tsc = 0;
            enqueue_waiting(q, w, now);
            spin_unlock(&q->lock);
            return true;
        }
        w->sched.migrate_to = (int32_t)self;
        r->push = 1;
        spin_unlock(&r->lock);
        if (idle)
            sched_kick_cpu(c);
        return false;
    }
    return false;
}

/* The earliest wake-up time among the blocked vCPUs. */
static uint64_t earliest_wake(const struct run_queue *q)
{
    uint64_t t = UINT64_MAX;
    for (const struct vcpu *v = q->blocked; v; v = v->sched.next)
        if (v->activity == VCPU_ACTIVE && !v->vm->paused)
            t = MIN(t, v->arch.wake_tsc);
    return t;
}

/* Takes every vCPU of a stopped VM off the queue, for good. */
static void drop_stopped(struct run_queue *q, uint64_t now, bool all)
{
    uint32_t gen = __atomic_load_n(&stop_gen, __ATOMIC_ACQUIRE);
    if (!all && gen == q->stop_gen_seen && !(q->curr && vm_stopped(q->curr)))
        return;
    q->stop_gen_seen = gen;
    struct vcpu **lists[2] = {&q->waiting, &q->blocked};
    for (int l = 0; l < 2; l++) {
        for (struct vcpu *v = *lists[l], *next; v; v = next) {
            next = v->sched.next;
            if (!vm_stopped(v))
                continue;
            list_del(lists[l], v);
            if (l == 0)
                q->nr_waiting--;
            else
                q->nr_blocked--;
            vcpu_unload(v);
            set_state(v, SCHED_GONE, now);
        }
    }
    if (q->curr && vm_stopped(q->curr)) {
        vcpu_unload(q->curr);
        set_state(q->curr, SCHED_GONE, now);
        q->curr = NULL;
    }
    update_hint(q);
}

/* The vCPUs another CPU asked for, unlinked into a list for push_moving. */
static struct vcpu *take_requested(struct run_queue *q, uint64_t now)
{
    struct vcpu *moving = NULL;
    if (!q->push)
        return NULL;
    q->push = 0;
    for (struct vcpu *w = q->waiting, *next; w; w = next) {
        next = w->sched.next;
        if (w->sched.migrate_to < 0)
            continue;
        dequeue_waiting(q, w);
        set_state(w, SCHED_MOVING, now);
        w->sched.next = moving;
        moving = w;
    }
    return moving;
}

/* Whether another CPU has vCPUs waiting (it may have one this CPU could take). */
static bool waiting_elsewhere(uint32_t self)
{
    for (uint32_t c = 0; c < cpu_limit; c++)
        if (c != self && __atomic_load_n(&rqs[c].lag_hint, __ATOMIC_ACQUIRE) != UINT64_MAX)
            return true;
    return false;
}

/* Halts until `until` or a kick; with the queue's lock held, idle set, on entry. */
static enum sched_step halt(struct run_queue *q, uint64_t until)
{
    spin_unlock(&q->lock);
    /* Queued console output and typed input are an idle CPU's work too: done before
     * the wait (a wake-up for a vCPU goes straight to it), and the wait ends in time
     * for the console's next turn. */
    console_service();
    until = MIN(until, console_pc_wake_tsc());
    uint64_t t0 = clock_now();
    env->idle(until);
    /* q->idle stays set until the next decision: work that arrives meanwhile still
     * brings the IPI, and is found. */
    q->st.idles++;
    q->st.idle_tsc += clock_now() - t0;
    q->last_run_end = 0;
    return SCHED_IDLED;
}

static enum sched_step idle(uint32_t cpu, uint64_t now)
{
    struct run_queue *q = &rqs[cpu];
    if (pull(cpu, UINT64_MAX, true, now))
        return SCHED_RAN;
    spin_lock(&q->lock);
    wake_due(q, clock_now(), 0, NULL);
    if (q->nr_waiting || q->push || !vms_running()) {
        spin_unlock(&q->lock);
        return SCHED_RAN;
    }
    set_idle(q, 1);
    return halt(q, earliest_wake(q));
}

enum sched_step sched_once(void)
{
    struct percpu *p = this_cpu();
    uint32_t cpu = p->cpu_id;
    struct run_queue *q = &rqs[cpu];
    uint64_t now = clock_now();
    if (!vms_running()) {
        spin_lock(&q->lock);
        drop_stopped(q, now, true);
        spin_unlock(&q->lock);
        return SCHED_DONE;
    }

    spin_lock(&q->lock);
    set_idle(q, 0);
    q->st.decisions++;
    __atomic_store_n(&p->sched_preempt, 0, __ATOMIC_RELEASE);
    drop_stopped(q, now, false);
    uint64_t kicked_at = __atomic_exchange_n(&q->kick_sent_at, 0, __ATOMIC_ACQ_REL);
    wake_due(q, now, kicked_at, NULL);
    struct vcpu *prev = q->curr, *next;
    struct vcpu *best = best_waiting(q);
    bool fresh = true;
    if (prev && !prev->sched.yielded && now < q->slice_end && !(best && beats(best, prev))) {
        next = prev; /* the rest of its slice */
        fresh = false;
    } else {
        /* Taken off the CPU before its slice was over, without yielding. */
        bool cut_short = prev && !prev->sched.yielded && now < q->slice_end;
        if (prev) {
            enqueue_waiting(q, prev, now);
            next = best_waiting(q);
        } else {
            next = best;
        }
        if (next) {
            dequeue_waiting(q, next);
            q->slice_end = now + slice_tsc;
            q->st.preemptions += cut_short && next != prev;
        }
        if (prev)
            prev->sched.yielded = false;
        if (next)
            next->sched.yielded = false;
    }
    q->curr = next;
    if (next)
        set_state(next, SCHED_RUNNING, now);
    offer_to_idle(q, cpu);
    struct vcpu *moving = take_requested(q, now);
    uint64_t wake = earliest_wake(q);
    /* Nothing here and nothing elsewhere to take: halt straight away. */
    if (!next && !moving && !q->nr_waiting && !waiting_elsewhere(cpu)) {
        set_idle(q, 1);
        return halt(q, wake);
    }
    uint64_t until = MIN(q->slice_end, wake);
    spin_unlock(&q->lock);
    push_moving(moving);

    if (!next)
        return idle(cpu, now);
    /* A vCPU that comes here waits for the decision after this run. */
    if (fresh)
        (void)pull(cpu, next->sched.vruntime, false, now);

    /* Load (VMPTRLD, host state, TLB tags, swapped registers) and run. */
    uint64_t t_load = clock_now();
    vcpu_backend->load(next);
    uint64_t t0 = clock_now();
    struct sched_vcpu *s = &next->sched;
    if (s->last_cpu >= 0 && (uint32_t)s->last_cpu != cpu) {
        s->migrations++;
        q->st.migrations++;
        uint64_t cost = s->unload_tsc + (t0 - now);
        q->st.migrate_tsc += cost;
        stat_min(&q->st.migrate_min, cost);
    } else if (q->last_run_end && next != prev) {
        q->st.switches++;
        uint64_t cost = t0 - now;
        q->st.switch_tsc += cost;
        stat_min(&q->st.switch_min, cost);
    }
    if (s->woken_at) {
        uint64_t lat = t0 > s->woken_at ? t0 - s->woken_at : 0;
        q->st.wakeups++;
        q->st.wake_tsc += lat;
        stat_min(&q->st.wake_min, lat);
        q->st.wake_max = MAX(q->st.wake_max, lat);
        s->woken_at = 0;
    }
    s->last_cpu = (int32_t)cpu;
    uint64_t budget = until > t0 ? until - t0 : 1;
    if (env->max_run)
        budget = MIN(budget, env->max_run);
    enum exit_action a = vcpu_run_slice(next, budget);
    uint64_t t1 = clock_now();
    q->st.runs++;
    q->st.busy_tsc += t1 - t_load;
    q->last_run_end = t1;
    s->vruntime += (t1 - t_load) * SCHED_WEIGHT_DEFAULT / s->weight;

    spin_lock(&q->lock);
    bool preempted = __atomic_load_n(&p->sched_preempt, __ATOMIC_ACQUIRE);
    if (a == EXIT_STOPPED || vm_stopped(next)) {
        vcpu_unload(next);
        set_state(next, SCHED_GONE, t1);
        q->curr = NULL;
    } else if (!vcpu_runnable(next, t1)) {
        q->curr = NULL;
        enqueue_blocked(q, next, t1);
    } else if (t1 - t0 < budget && !preempted) {
        s->yielded = true; /* HLT with nothing armed, the yield hypercall, a PAUSE loop */
    }
    update_min_vruntime(q);
    spin_unlock(&q->lock);
    /* Between runs, outside any vCPU's time: no vCPU waits for it, none is charged. */
    console_service();
    return SCHED_RAN;
}

/* A CPU that cannot enter VMX operation gives its vCPUs (none has run) to other CPUs
 * of their lists; a VM with no other CPU stops with the reason. */
static void evacuate(uint32_t cpu)
{
    struct run_queue *q = &rqs[cpu];
    uint64_t now = clock_now();
    spin_lock(&q->lock);
    q->usable = false;
    struct vcpu *all = NULL;
    struct vcpu **lists[2] = {&q->waiting, &q->blocked};
    for (int l = 0; l < 2; l++)
        while (*lists[l]) {
            struct vcpu *v = *lists[l];
            list_del(lists[l], v);
            v->sched.next = all;
            all = v;
        }
    q->nr_waiting = q->nr_blocked = 0;
    update_hint(q);
    spin_unlock(&q->lock);
    for (struct vcpu *v = all, *next; v; v = next) {
        next = v->sched.next;
        cpumask_clear(&v->sched.affinity, cpu);
        set_state(v, SCHED_MOVING, now);
        v->sched.since = now;
        if (vm_stopped(v) || sched_add_vcpu(v) < 0) {
            set_state(v, SCHED_GONE, now);
            vm_stop(v->vm, "CPU %u cannot enter VMX operation", cpu);
        }
    }
}

void sched_run_this_cpu(void)
{
    struct percpu *p = this_cpu();
    if (p->cpu_id >= MAX_CPUS || !rqs[p->cpu_id].usable)
        return;
    if (!vcpu_backend->cpu_on(p)) {
        evacuate(p->cpu_id);
        return;
    }
    while (sched_once() != SCHED_DONE)
        ;
    vcpu_backend->cpu_off(p);
}

NORETURN void sched_ap_idle(void)
{
    /* Halted, not spinning: an emulator pays for every instruction an idle CPU runs.
     * STI's one-instruction shadow means a wake-up IPI that arrives after the check
     * is taken at the HLT, never lost. */
    while (!__atomic_load_n(&cpus_released, __ATOMIC_ACQUIRE))
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    sched_run_this_cpu();
    cpu_halt_forever();
}

void sched_report(void)
{
    for (uint32_t c = 0; c < cpu_limit; c++) {
        const struct sched_cpu_stats *s = &rqs[c].st;
        if (!rqs[c].usable || !s->decisions)
            continue;
        kprintf("SCHED: CPU %u: %lu runs, busy %lu ticks, idle %lu ticks halted in %lu waits, %lu preemptions\n", c,
                s->runs, s->busy_tsc, s->idle_tsc, s->idles, s->preemptions);
        kprintf("SCHED: CPU %u: %lu vCPU switches (min %lu, avg %lu ticks), %lu migrations in (min %lu, avg %lu "
                "ticks), %lu IPI wake-ups (min %lu, avg %lu, max %lu ticks)\n",
                c, s->switches, s->switch_min, s->switches ? s->switch_tsc / s->switches : 0, s->migrations,
                s->migrate_min, s->migrations ? s->migrate_tsc / s->migrations : 0, s->wakeups, s->wake_min,
                s->wakeups ? s->wake_tsc / s->wakeups : 0, s->wake_max);
    }
}
