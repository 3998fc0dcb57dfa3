/* The scheduler of this milestone: each CPU runs the vCPUs placed on it in turn, one
 * slice each. The run loop ends a slice by the VMX-preemption timer (so a guest spinning
 * with interrupts off still gives up the CPU) or by the wall clock (so Keel's time on a
 * VM's exits counts against it). */
#include "vmm/sched.h"
#include "vmm/vcpu.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "arch/x86/lapic.h"
#include "arch/x86/tsc.h"
#include "drivers/timer.h"
#include "vmm/lib/time_math.h"
#include "vmm/lib/console.h"

struct run_queue {
    spinlock_t lock;
    struct vcpu *head, *tail;
    uint32_t length;
};

static struct run_queue queues[MAX_CPUS];
static uint64_t slice_tsc;
static volatile uint32_t cpus_released;

#define VECTOR_WAKE 0xf0 /* IPI that releases halted APs, and kicks a CPU out of guest mode */
#define VECTOR_IDLE_TIMER 0xef /* ends an idle CPU's wait for a halted vCPU's timer */

static void wake_handler(struct trap_frame *f)
{
    (void)f;
    lapic_eoi();
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

void sched_init(uint32_t slice_ms)
{
    irq_register(VECTOR_WAKE, wake_handler);
    irq_register(VECTOR_IDLE_TIMER, wake_handler);
    uint64_t hz = tsc_calibrated() ? tsc_hz() : 1000000000ull;
    slice_tsc = hz / 1000 * slice_ms;
    kprintf("SCHED: round-robin, %u ms slices (%lu TSC ticks)\n", slice_ms, slice_tsc);
}

void sched_enqueue(uint32_t cpu, struct vcpu *v)
{
    struct run_queue *q = &queues[cpu];
    spin_lock(&q->lock);
    v->rq_next = NULL;
    if (q->tail)
        q->tail->rq_next = v;
    else
        q->head = v;
    q->tail = v;
    q->length++;
    spin_unlock(&q->lock);
}

uint32_t sched_queue_length(uint32_t cpu)
{
    return queues[cpu].length;
}

static struct vcpu *dequeue(struct run_queue *q)
{
    spin_lock(&q->lock);
    struct vcpu *v = q->head;
    if (v) {
        q->head = v->rq_next;
        if (!q->head)
            q->tail = NULL;
        q->length--;
    }
    spin_unlock(&q->lock);
    return v;
}

void sched_release_cpus(void)
{
    __atomic_store_n(&cpus_released, 1, __ATOMIC_RELEASE);
    for (uint32_t c = 1; c < MAX_CPUS; c++)
        if (percpu_blocks[c] && percpu_blocks[c]->online)
            lapic_send_fixed(percpu_blocks[c]->apic_id, VECTOR_WAKE);
}

void sched_run_this_cpu(void)
{
    struct percpu *p = this_cpu();
    struct run_queue *q = &queues[p->cpu_id];
    if (!q->length)
        return;
    if (!vcpu_backend->cpu_on(p)) {
        /* The VMs placed here cannot run: stop them with the reason rather than
         * leave them waiting forever. */
        for (struct vcpu *v; (v = dequeue(q));)
            vm_stop(v->vm, "CPU %u cannot enter VMX operation", p->cpu_id);
        return;
    }
    /* A pass over the whole queue that found nothing to run: the CPU idles until the
     * earliest wake-up time among them, or a kick. */
    uint32_t idle_seen = 0;
    uint64_t earliest = UINT64_MAX;
    for (struct vcpu *v; (v = dequeue(q));) {
        if (v->vm->state == VM_STOPPED) {
            vcpu_unload(v);
            continue;
        }
        if (!vcpu_runnable(v, rdtsc())) {
            if (v->activity == VCPU_ACTIVE)
                earliest = MIN(earliest, v->arch.wake_tsc);
            sched_enqueue(p->cpu_id, v);
            if (++idle_seen >= q->length) {
                idle_until(earliest);
                idle_seen = 0;
                earliest = UINT64_MAX;
            }
            continue;
        }
        idle_seen = 0;
        earliest = UINT64_MAX;
        enum exit_action a = vcpu_run_slice(v, slice_tsc);
        if (a == EXIT_STOPPED || v->vm->state == VM_STOPPED) {
            vcpu_unload(v);
            continue;
        }
        sched_enqueue(p->cpu_id, v);
    }
    vcpu_backend->cpu_off(p);
}

void sched_kick_cpu(uint32_t cpu)
{
    if (cpu < MAX_CPUS && percpu_blocks[cpu] && percpu_blocks[cpu]->online)
        lapic_send_fixed(percpu_blocks[cpu]->apic_id, VECTOR_WAKE);
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
