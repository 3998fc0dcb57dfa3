/* sched.c on the host, over the fake backend (tests/common/fake_backend.h) and a
 * simulated machine: up to 4 CPUs, each with its own per-CPU block (GS is switched with
 * arch_prctl, so the real this_cpu() works), its own simulated TSC, IPIs and halts.
 * The simulation always advances the CPU whose clock is earliest, so it is fully
 * deterministic; a call into the backend runs at most a tenth of a slice (sched_env
 * max_run), which lets CPUs interleave finely. Guests are scripted: CPU hogs, sleepers
 * that halt with a timer, vCPUs that yield.
 *
 * Checked: equal shares, 2:1 and 4:1 weights within 2 %, 3 VMs on 2 CPUs and 16 vCPUs
 * on 2 CPUs fair (Jain >= 0.99), affinity never violated, a VMCS never loaded while
 * active on another CPU, an idle CPU taking work (never-run and loaded vCPUs), a waking
 * vCPU preempting hogs (by its timer, and by an IPI from another CPU), idle CPUs
 * halting, accounting adding up, a yield giving others a turn, stopped VMs dropped, a
 * CPU without VMX handing its vCPUs on, and a VM whose CPUs are offline reported. */
/* SOURCES: vmm/sched.c vmm/vcpu.c vmm/lib/time_math.c tests/common/fake_backend.c arch/x86/exit_kinds.c vmm/lib/printf.c vmm/lib/string.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

#include "vmm/sched.h"
#include "vmm/vcpu.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/lapic.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "arch/x86/tsc.h"
#include "drivers/timer.h"
#include "tests/common/fake_backend.h"
#include "tests/unit/console_capture.h"

#define NCPUS_MAX 4
#define NVCPUS_MAX 16
#define SLICE 10000000ull /* 10 ms at the 1 GHz TSC below */
#define QUANTUM (SLICE / 10)
#define SIM_APIC_ID(c) (100u + (c))

/* ---- the simulated machine ---- */
static struct percpu cpus[NCPUS_MAX];
static uint32_t ncpus;
static uint32_t offline_mask; /* CPUs that cannot run guests */
static uint64_t clock_of[NCPUS_MAX];
static bool halted[NCPUS_MAX], done[NCPUS_MAX];
static uint64_t halt_until[NCPUS_MAX], ipi_at[NCPUS_MAX];
static uint32_t cur;
static unsigned steps[NCPUS_MAX], idles_forever[NCPUS_MAX];
static int violations; /* affinity broken, VMCS loaded while active elsewhere, ... */
static char violation[200];

struct percpu *percpu_blocks[MAX_CPUS];
bool tsc_calibrated(void) { return true; }
uint64_t tsc_hz(void) { return 1000000000ull; }
void irq_register(uint8_t vector, irq_handler_t handler) { (void)vector, (void)handler; }
void lapic_eoi(void) {}
/* Keel's own idle wait is not used: the simulation's replaces it. */
uint64_t lapic_timer_hz(void) { return 0; }
bool lapic_timer_set_divide(uint32_t d) { (void)d; return true; }
void lapic_timer_start(uint8_t vector, enum lapic_timer_mode mode, uint32_t count, bool masked)
{
    (void)vector, (void)mode, (void)count, (void)masked;
    fail();
}
void lapic_timer_stop(void) {}
bool cpu_can_run_guests(int32_t cpu) { return cpu >= 0 && (uint32_t)cpu < ncpus && !(offline_mask & (1u << cpu)); }

static int ipis;
bool lapic_send_fixed(uint32_t apic_id, uint8_t vector)
{
    assert_int_equal(vector, 0xf0);
    uint32_t c = apic_id - SIM_APIC_ID(0);
    assert_true(c < ncpus);
    ipis++;
    ipi_at[c] = MIN(ipi_at[c], clock_of[cur]);
    return true;
}

static void violated(const char *what)
{
    if (!violations++)
        snprintf(violation, sizeof(violation), "%s", what);
}

static uint64_t sim_now(void) { return clock_of[cur]; }
static void sim_idle(uint64_t until)
{
    halted[cur] = true;
    halt_until[cur] = until;
    if (until == UINT64_MAX)
        idles_forever[cur]++;
}
static const struct sched_env sim_env = {.now = sim_now, .idle = sim_idle, .max_run = QUANTUM};

static void on_cpu(uint32_t c)
{
    cur = c;
    assert_int_equal(syscall(SYS_arch_prctl, ARCH_SET_GS, &cpus[c]), 0);
}

static void step(uint32_t c, uint64_t t)
{
    on_cpu(c);
    if (halted[c]) {
        halted[c] = false;
        clock_of[c] = MAX(clock_of[c], t);
    }
    steps[c]++;
    if (ipi_at[c] != UINT64_MAX) {
        ipi_at[c] = UINT64_MAX;
        sched_on_kick();
    }
    if (sched_once() == SCHED_DONE)
        done[c] = true;
}

/* Runs the machine until every CPU's clock has passed `end`, or all are done or halted
 * for good. */
static void run_until(uint64_t end)
{
    for (;;) {
        int best = -1;
        uint64_t bt = UINT64_MAX;
        for (uint32_t c = 0; c < ncpus; c++) {
            if (done[c] || (offline_mask & (1u << c)))
                continue;
            uint64_t t = halted[c] ? MIN(halt_until[c], ipi_at[c]) : clock_of[c];
            if (t < bt) {
                bt = t;
                best = (int)c;
            }
        }
        if (best < 0 || bt >= end)
            return;
        step((uint32_t)best, bt);
    }
}

/* ---- scripted guests ---- */
enum kind { HOG, SLEEPER, YIELDER };
struct guest {
    enum kind kind;
    uint64_t burst, sleep; /* SLEEPER: runs `burst` ticks, then halts for `sleep` */
    uint64_t left;         /* of the current burst */
    uint64_t work;         /* ticks it ran */
    uint64_t wake_due;     /* when its wake-up was due (timer or kick), 0: none */
    uint64_t worst_latency;
    uint32_t ran_on;       /* CPUs it ran on, a bit each */
};
static struct guest guests[NVCPUS_MAX];
static struct vm vms_[NVCPUS_MAX];
static struct vcpu vcpus_[NVCPUS_MAX];
static uint32_t nvcpus;

static struct guest *guest_of(struct vcpu *v) { return &guests[v - vcpus_]; }

static enum exit_action sim_run(struct vcpu *v, uint64_t budget)
{
    struct guest *g = guest_of(v);
    uint64_t now = clock_of[cur];
    if (!cpumask_test(&v->sched.affinity, cur))
        violated("a vCPU ran on a CPU outside its list");
    if (v->arch.loaded_cpu != (int32_t)cur)
        violated("a vCPU ran without being loaded on its CPU");
    if (budget == 0 || budget > SLICE)
        violated("a run's budget is not within a slice");
    g->ran_on |= 1u << cur;
    /* What the EVENTS handler does before the entry. */
    if (v->halted && (v->arch.recheck || now >= v->arch.wake_tsc)) {
        v->halted = false;
        v->arch.wake_tsc = UINT64_MAX;
    }
    v->arch.recheck = 0;
    if (v->halted || v->activity != VCPU_ACTIVE)
        return EXIT_YIELD;
    if (g->wake_due) {
        g->worst_latency = MAX(g->worst_latency, now > g->wake_due ? now - g->wake_due : 0);
        g->wake_due = 0;
    }
    uint64_t ran = budget;
    if (g->kind == SLEEPER) {
        if (!g->left)
            g->left = g->burst;
        ran = MIN(budget, g->left);
        g->left -= ran;
        if (!g->left) {
            v->halted = true;
            v->arch.wake_tsc = now + ran + g->sleep;
            g->wake_due = v->arch.wake_tsc;
        }
    } else if (g->kind == YIELDER) {
        ran = MIN(budget, 1000);
    }
    g->work += ran;
    clock_of[cur] += ran;
    return EXIT_YIELD;
}

/* A VMCS is active on one CPU at a time: loading it elsewhere needs a VMCLEAR first. */
static struct vcpu_backend backend;
static void checked_load(struct vcpu *v)
{
    if (v->arch.loaded_cpu >= 0 && v->arch.loaded_cpu != (int32_t)cur)
        violated("VMPTRLD of a VMCS still active on another CPU");
    fake_backend.load(v);
}
static void checked_unload(struct vcpu *v)
{
    if (v->arch.loaded_cpu < 0)
        return;
    if (v->arch.loaded_cpu != (int32_t)cur)
        violated("VMCLEAR on a CPU the VMCS is not active on");
    fake_backend.unload(v);
}

/* What the platform's kick does (vmm/dev/platform.c): the vCPU looks, its CPU is told. */
static void kick_vcpu(struct vcpu *v)
{
    v->arch.recheck = 1;
    int32_t c = v->arch.loaded_cpu >= 0 ? v->arch.loaded_cpu : v->sched.cpu;
    if (c >= 0 && (uint32_t)c != cur)
        sched_kick_cpu((uint32_t)c);
}

static uint32_t stopped_vms;
uint32_t vms_running(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < NVCPUS_MAX; i++)
        n += vms_[i].state == VM_RUNNING;
    return n;
}

void vm_stop(struct vm *vm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
    va_end(ap);
    vm->state = VM_STOPPED;
    stopped_vms++;
}

static void machine(uint32_t n)
{
    ncpus = n;
    for (uint32_t c = 0; c < NCPUS_MAX; c++) {
        memset(&cpus[c], 0, sizeof(cpus[c]));
        cpus[c].self = &cpus[c];
        cpus[c].cpu_id = c;
        cpus[c].apic_id = SIM_APIC_ID(c);
        cpus[c].online = c < n;
        percpu_blocks[c] = c < n ? &cpus[c] : NULL;
        clock_of[c] = 1000;
        halted[c] = done[c] = false;
        halt_until[c] = ipi_at[c] = UINT64_MAX;
        steps[c] = idles_forever[c] = 0;
    }
    on_cpu(0);
    sched_init(10);
    sched_set_env(&sim_env);
}

static int setup(void **state)
{
    (void)state;
    memset(vms_, 0, sizeof(vms_));
    memset(vcpus_, 0, sizeof(vcpus_));
    memset(guests, 0, sizeof(guests));
    nvcpus = 0;
    offline_mask = 0;
    violations = ipis = 0;
    stopped_vms = 0;
    violation[0] = 0;
    fake_backend_reset();
    fake.run = sim_run;
    backend = fake_backend;
    backend.load = checked_load;
    backend.unload = checked_unload;
    vcpu_backend = &backend;
    capture_reset();
    machine(1);
    return 0;
}

static cpumask_t cpus_of(uint32_t bits)
{
    cpumask_t m = {0};
    for (uint32_t c = 0; c < 32; c++)
        if (bits & (1u << c))
            cpumask_set(&m, c);
    return m;
}

/* A one-vCPU VM of that kind, weight and CPUs, given to the scheduler. */
static struct vcpu *add(enum kind k, uint32_t weight, uint32_t cpu_bits)
{
    uint32_t i = nvcpus++;
    struct vcpu *v = &vcpus_[i];
    v->id = 0;
    v->vm = &vms_[i];
    vms_[i].state = VM_RUNNING;
    vms_[i].vcpu_count = 1;
    vms_[i].vcpus[0] = v;
    snprintf(vms_[i].name, sizeof(vms_[i].name), "vm%u", i);
    v->activity = VCPU_ACTIVE;
    v->arch.loaded_cpu = -1;
    v->arch.wake_tsc = UINT64_MAX;
    v->sched.affinity = cpus_of(cpu_bits);
    v->sched.weight = weight;
    guests[i].kind = k;
    on_cpu(0);
    assert_true(sched_add_vcpu(v) >= 0);
    return v;
}

static double jain(const uint64_t *x, unsigned n)
{
    double s = 0, s2 = 0;
    for (unsigned i = 0; i < n; i++) {
        s += (double)x[i];
        s2 += (double)x[i] * (double)x[i];
    }
    return s * s / (n * s2);
}

static double work_jain(unsigned first, unsigned n)
{
    uint64_t w[NVCPUS_MAX];
    for (unsigned i = 0; i < n; i++)
        w[i] = guests[first + i].work;
    return jain(w, n);
}

static void no_violations(void)
{
    if (violations)
        fail_msg("%d violations, the first: %s", violations, violation);
}

/* ---- tests ---- */

static void equal_weights_share_a_cpu_equally(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        add(HOG, 256, 1);
    run_until(400 * SLICE);
    double j = work_jain(0, 4);
    printf("4 equal hogs on 1 CPU: work %lu %lu %lu %lu, Jain %.5f\n", guests[0].work, guests[1].work,
           guests[2].work, guests[3].work, j);
    assert_true(j > 0.999);
    for (int i = 0; i < 4; i++)
        assert_true(guests[i].work > 95 * SLICE && guests[i].work < 105 * SLICE);
    no_violations();
}

static void check_ratio(uint32_t heavy, double want)
{
    add(HOG, heavy, 1);
    add(HOG, 256, 1);
    run_until(600 * SLICE);
    double r = (double)guests[0].work / (double)guests[1].work;
    printf("weights %u:256 on 1 CPU: work %lu : %lu = %.4f (want %.1f)\n", heavy, guests[0].work, guests[1].work, r,
           want);
    assert_true(r > want * 0.98 && r < want * 1.02);
    no_violations();
}

static void weights_2_to_1(void **state)
{
    (void)state;
    check_ratio(512, 2.0);
}

static void weights_4_to_1(void **state)
{
    (void)state;
    check_ratio(1024, 4.0);
}

/* Only migration can make 3 on 2 fair: whoever is alone on a CPU gets ahead. */
static void three_vms_on_two_cpus_are_fair(void **state)
{
    (void)state;
    machine(2);
    for (int i = 0; i < 3; i++)
        add(HOG, 256, 3);
    run_until(600 * SLICE);
    double j = work_jain(0, 3);
    uint32_t moves = 0;
    for (int i = 0; i < 3; i++)
        moves += vcpus_[i].sched.migrations;
    printf("3 hogs on 2 CPUs: work %lu %lu %lu, Jain %.5f, %u migrations\n", guests[0].work, guests[1].work,
           guests[2].work, j, moves);
    assert_true(j >= 0.99);
    uint64_t lo = UINT64_MAX, hi = 0;
    for (int i = 0; i < 3; i++) {
        lo = MIN(lo, guests[i].work);
        hi = MAX(hi, guests[i].work);
    }
    assert_true((double)(hi - lo) < 0.05 * (double)hi);
    /* Each did about 2/3 of a CPU; every move went through VMCLEAR on the old CPU. */
    assert_true(lo > 380 * SLICE);
    assert_true(moves > 0);
    assert_true(fake.unloads >= (int)moves);
    no_violations();
}

static void sixteen_vcpus_on_two_cpus(void **state)
{
    (void)state;
    machine(2);
    /* One VM with 16 vCPUs: more than the machine has CPUs, eight times over. */
    struct vm *vm = &vms_[0];
    vm->state = VM_RUNNING;
    vm->vcpu_count = 16;
    snprintf(vm->name, sizeof(vm->name), "big");
    for (uint32_t i = 0; i < 16; i++) {
        struct vcpu *v = &vcpus_[i];
        v->id = i;
        v->vm = vm;
        vm->vcpus[i] = v;
        v->activity = VCPU_ACTIVE;
        v->arch.loaded_cpu = -1;
        v->arch.wake_tsc = UINT64_MAX;
        v->sched.affinity = cpus_of(3);
        v->sched.weight = 256;
        guests[i].kind = HOG;
        on_cpu(0);
        assert_true(sched_add_vcpu(v) >= 0);
    }
    nvcpus = 16;
    run_until(1600 * SLICE);
    double j = work_jain(0, 16);
    uint64_t total = 0;
    for (int i = 0; i < 16; i++)
        total += guests[i].work;
    printf("16 vCPUs on 2 CPUs: Jain %.5f, %lu of %lu ticks used\n", j, total, (unsigned long)(2 * 1600 * SLICE));
    assert_true(j >= 0.99);
    /* Neither CPU sat idle while there was work. */
    assert_true(total > 2 * 1590 * SLICE);
    assert_int_equal(idles_forever[0] + idles_forever[1], 0);
    no_violations();
}

static void affinity_is_never_violated(void **state)
{
    (void)state;
    machine(3);
    add(HOG, 256, 1);        /* CPU 0 only */
    add(HOG, 256, 2);        /* CPU 1 only */
    add(HOG, 512, 6);        /* 1-2 */
    add(HOG, 256, 5);        /* 0 and 2 */
    add(HOG, 256, 7);        /* any */
    struct vcpu *s = add(SLEEPER, 256, 4); /* CPU 2 only */
    guests[5].burst = SLICE / 3;
    guests[5].sleep = SLICE;
    add(YIELDER, 256, 3);    /* 0-1 */
    run_until(500 * SLICE);
    static const uint32_t allowed[] = {1, 2, 6, 5, 7, 4, 3};
    for (uint32_t i = 0; i < 7; i++) {
        assert_true(guests[i].work > 0);
        assert_int_equal(guests[i].ran_on & ~allowed[i], 0);
    }
    assert_true(s->sched.blocked_tsc > 0);
    /* The vCPUs allowed on several CPUs did move. */
    assert_true(vcpus_[2].sched.migrations + vcpus_[3].sched.migrations + vcpus_[4].sched.migrations > 0);
    no_violations();
}

/* CPU 1 has nothing once its VM stops; of the two vCPUs waiting on CPU 0, the one that
 * never ran (loaded nowhere) is taken at once. */
static void an_idle_cpu_pulls_a_never_run_vcpu(void **state)
{
    (void)state;
    machine(2);
    struct vcpu *a = add(HOG, 256, 3), *b = add(HOG, 256, 1), *c = add(HOG, 256, 3);
    /* Placement spreads them: a on 0, b on 0 (its only CPU), c on the idler 1. */
    assert_int_equal(a->sched.cpu, 0);
    assert_int_equal(b->sched.cpu, 0);
    assert_int_equal(c->sched.cpu, 1);
    /* c's VM stops at once: CPU 1 idles and takes a, which never ran, straight away. */
    vms_[2].state = VM_STOPPED;
    sched_vm_stopped(&vms_[2]);
    run_until(SLICE);
    assert_int_equal(a->sched.cpu, 1);
    assert_int_equal(guests[0].ran_on, 2);
    assert_int_equal(guests[1].ran_on, 1);
    assert_int_equal(a->sched.migrations, 0); /* it never ran anywhere else */
    no_violations();
}

/* Two hogs pinned to CPU 0 have run there (loaded); CPU 1 has nothing. One hog's list
 * is then widened to CPU 1: CPU 0 VMCLEARs it and CPU 1, idle, runs it. */
static void a_loaded_vcpu_moves_to_an_idle_cpu(void **state)
{
    (void)state;
    machine(2);
    struct vcpu *a = add(HOG, 256, 1), *b = add(HOG, 256, 1);
    run_until(10 * SLICE);
    assert_int_equal(guests[0].ran_on, 1);
    assert_int_equal(guests[1].ran_on, 1);
    assert_true(idles_forever[1] > 0); /* CPU 1 halted, waiting */
    uint32_t unloads_before = (uint32_t)fake.unloads;
    a->sched.affinity = cpus_of(3);
    b->sched.affinity = cpus_of(3);
    run_until(40 * SLICE);
    assert_true(a->sched.migrations + b->sched.migrations >= 1);
    assert_true((uint32_t)fake.unloads > unloads_before);
    assert_true((guests[0].ran_on | guests[1].ran_on) == 3);
    /* From then on each has a CPU: together they did about 2 CPUs' worth. */
    uint64_t total = guests[0].work + guests[1].work;
    assert_true(total > 65 * SLICE);
    no_violations();
}

/* A sleeper beside three hogs on one CPU: its timer cuts the running hog's run short, and
 * having used little of its share it runs at once, not after the three hogs. */
static void a_waking_vcpu_preempts_hogs(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        add(HOG, 256, 1);
    struct vcpu *s = add(SLEEPER, 256, 1);
    guests[3].burst = SLICE / 20;
    guests[3].sleep = 2 * SLICE;
    run_until(300 * SLICE);
    printf("sleeper beside 3 hogs: worst wake-up latency %lu ticks (slice %lu), ran %lu\n", guests[3].worst_latency,
           (unsigned long)SLICE, guests[3].work);
    assert_true(guests[3].worst_latency <= QUANTUM);
    assert_true(s->sched.blocked_tsc > 200 * SLICE);
    no_violations();
}

/* The same across CPUs: a vCPU blocked (no timer) on CPU 0 behind four hogs is woken by
 * a kick from CPU 1; the IPI makes CPU 0 give it the CPU within one backend call. */
static struct vcpu *sleeper_to_kick;
static uint64_t kick_time;
static enum exit_action kicker_run(struct vcpu *v, uint64_t budget)
{
    if (v == &vcpus_[5] && !kick_time && clock_of[cur] > 50 * SLICE) {
        kick_time = clock_of[cur];
        guest_of(sleeper_to_kick)->wake_due = kick_time;
        kick_vcpu(sleeper_to_kick);
    }
    return sim_run(v, budget);
}

static void an_ipi_wakes_a_vcpu_behind_hogs(void **state)
{
    (void)state;
    machine(2);
    for (int i = 0; i < 4; i++)
        add(HOG, 256, 1);
    struct vcpu *s = add(SLEEPER, 256, 1);
    add(HOG, 256, 2); /* the kicker, on CPU 1 */
    sleeper_to_kick = s;
    kick_time = 0;
    s->halted = true; /* halted with no timer: only a kick wakes it */
    fake.run = kicker_run;
    guests[4].burst = SLICE / 20;
    guests[4].sleep = 100000 * SLICE;
    run_until(100 * SLICE);
    assert_true(kick_time > 0);
    printf("IPI wake-up behind 4 hogs: latency %lu ticks\n", guests[4].worst_latency);
    assert_true(guests[4].work > 0);
    assert_true(guests[4].worst_latency <= QUANTUM);
    no_violations();
}

static void idle_cpus_halt(void **state)
{
    (void)state;
    machine(3);
    add(HOG, 256, 1);
    run_until(100 * SLICE);
    /* CPUs 1 and 2 halted once each and were never woken: no polling. */
    assert_int_equal(steps[1], 1);
    assert_int_equal(steps[2], 1);
    assert_int_equal(idles_forever[1], 1);
    assert_true(guests[0].work >= 99 * SLICE);
    no_violations();
}

/* Every tick since a vCPU joined is running, waiting or blocked. */
static void accounting_adds_up(void **state)
{
    (void)state;
    machine(2);
    add(HOG, 256, 1);
    add(HOG, 256, 1);
    struct vcpu *s = add(SLEEPER, 256, 3);
    guests[2].burst = SLICE / 4;
    guests[2].sleep = SLICE;
    uint64_t start = clock_of[0];
    run_until(200 * SLICE);
    for (int i = 0; i < 3; i++) {
        struct vcpu *v = &vcpus_[i];
        uint32_t c = (uint32_t)v->sched.cpu;
        struct sched_totals t = sched_vcpu_totals(&v->sched, clock_of[c]);
        uint64_t sum = t.run_tsc + t.wait_tsc + t.blocked_tsc;
        printf("vCPU %d: run %lu wait %lu blocked %lu, sum %lu of %lu\n", i, t.run_tsc, t.wait_tsc, t.blocked_tsc,
               sum, clock_of[c] - start);
        assert_true(sum <= clock_of[c] - start);
        assert_true(sum + 2 * QUANTUM >= clock_of[c] - start);
        assert_true(t.run_tsc >= guests[i].work);
    }
    /* The hogs share CPU 0: each waits about as long as it runs. */
    struct sched_totals h = sched_vcpu_totals(&vcpus_[0].sched, clock_of[0]);
    assert_true(h.wait_tsc > 90 * SLICE && h.run_tsc > 90 * SLICE);
    assert_true(s->sched.blocked_tsc > 100 * SLICE);
    no_violations();
}

static void a_yield_gives_the_others_a_turn(void **state)
{
    (void)state;
    add(YIELDER, 256, 1);
    add(HOG, 256, 1);
    run_until(100 * SLICE);
    /* The hog gets nearly all of the CPU; the yielder still runs between its slices. */
    assert_true(guests[1].work > 95 * SLICE);
    assert_true(guests[0].work > 0);
    no_violations();
}

static void stopped_vms_leave_for_good(void **state)
{
    (void)state;
    machine(2);
    add(HOG, 256, 1);
    add(HOG, 256, 2);
    run_until(5 * SLICE);
    vms_[0].state = VM_STOPPED;
    sched_vm_stopped(&vms_[0]);
    uint64_t w0 = guests[0].work;
    run_until(10 * SLICE);
    assert_true(guests[0].work <= w0 + QUANTUM);
    assert_int_equal(vcpus_[0].sched.state, SCHED_GONE);
    assert_int_equal(vcpus_[0].arch.loaded_cpu, -1);
    /* The last VM's stop wakes every CPU; each returns. */
    vms_[1].state = VM_STOPPED;
    on_cpu(1);
    sched_vm_stopped(&vms_[1]);
    run_until(UINT64_MAX);
    assert_true(done[0] && done[1]);
    assert_int_equal(vcpus_[1].sched.state, SCHED_GONE);
    assert_int_equal(vcpus_[1].arch.loaded_cpu, -1);
    no_violations();
}

/* A CPU that cannot enter VMX operation: its vCPUs that may run elsewhere go there; a VM
 * with no other CPU stops with the reason. */
static void a_cpu_without_vmx_hands_its_vcpus_on(void **state)
{
    (void)state;
    machine(2);
    add(HOG, 256, 1);
    add(HOG, 256, 1);
    struct vcpu *a = add(HOG, 256, 2), *c = add(HOG, 256, 3);
    assert_int_equal(a->sched.cpu, 1);
    assert_int_equal(c->sched.cpu, 1);
    fake.cpu_on_fails = true;
    on_cpu(1);
    sched_run_this_cpu();
    assert_int_equal(vms_[2].state, VM_STOPPED);
    assert_string_equal(vms_[2].stop_reason, "CPU 1 cannot enter VMX operation");
    assert_int_equal(a->sched.state, SCHED_GONE);
    assert_int_equal(vms_[3].state, VM_RUNNING);
    assert_int_equal(c->sched.cpu, 0);
    fake.cpu_on_fails = false;
    done[1] = true;
    run_until(30 * SLICE);
    /* It shares CPU 0 with the two there, and never goes back to CPU 1. */
    assert_true(guests[3].work > 9 * SLICE);
    assert_int_equal(guests[3].ran_on, 1);
    no_violations();
}

static void offline_cpus_are_reported(void **state)
{
    (void)state;
    machine(2);
    cpumask_t m = cpus_of(1u << 5);
    assert_false(sched_usable_cpus("far", &m));
    assert_true(capture_contains("VM far: not started: CPU 5 is not online with VMX"));
    m = cpus_of((1u << 5) | (1u << 7));
    assert_false(sched_usable_cpus("farther", &m));
    assert_true(capture_contains("VM farther: not started: none of its CPUs (5,7) is online with VMX"));
    m = cpus_of(2 | (1u << 5) | (1u << 6));
    assert_true(sched_usable_cpus("half", &m));
    assert_true(capture_contains("VM half: CPUs 5-6 of its list are not online with VMX; it runs on 1"));
    assert_int_equal(cpumask_count(&m), 1);
    assert_true(cpumask_test(&m, 1));
    char buf[64];
    m = cpus_of(1 | 2 | 4 | 32 | 64 | 128);
    sched_format_cpus(&m, buf, sizeof(buf));
    assert_string_equal(buf, "0-2,5-7");
}

static void kick_reaches_online_cpus_only(void **state)
{
    (void)state;
    machine(2);
    sched_kick_cpu(1);
    sched_kick_cpu(3);        /* no such CPU */
    sched_kick_cpu(MAX_CPUS); /* out of range */
    assert_int_equal(ipis, 1);
    assert_int_equal(ipi_at[1], clock_of[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(equal_weights_share_a_cpu_equally, setup),
        cmocka_unit_test_setup(weights_2_to_1, setup),
        cmocka_unit_test_setup(weights_4_to_1, setup),
        cmocka_unit_test_setup(three_vms_on_two_cpus_are_fair, setup),
        cmocka_unit_test_setup(sixteen_vcpus_on_two_cpus, setup),
        cmocka_unit_test_setup(affinity_is_never_violated, setup),
        cmocka_unit_test_setup(an_idle_cpu_pulls_a_never_run_vcpu, setup),
        cmocka_unit_test_setup(a_loaded_vcpu_moves_to_an_idle_cpu, setup),
        cmocka_unit_test_setup(a_waking_vcpu_preempts_hogs, setup),
        cmocka_unit_test_setup(an_ipi_wakes_a_vcpu_behind_hogs, setup),
        cmocka_unit_test_setup(idle_cpus_halt, setup),
        cmocka_unit_test_setup(accounting_adds_up, setup),
        cmocka_unit_test_setup(a_yield_gives_the_others_a_turn, setup),
        cmocka_unit_test_setup(stopped_vms_leave_for_good, setup),
        cmocka_unit_test_setup(a_cpu_without_vmx_hands_its_vcpus_on, setup),
        cmocka_unit_test_setup(offline_cpus_are_reported, setup),
        cmocka_unit_test_setup(kick_reaches_online_cpus_only, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
