/* sched.c on the host: the per-CPU round robin over the fake backend
 * (tests/common/fake_backend.h), whose run loop plays a script of what each slice
 * ends with. Checks the order vCPUs get their slices in,
 * that a stopped VM's vCPU leaves the queue for good (and its VMCS is released), that
 * a CPU without VMX stops the VMs placed on it with the reason, and the kick IPI.
 * GS points at a fake per-CPU block (arch_prctl), so the real this_cpu() works. */
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
#include "arch/x86/lapic.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "arch/x86/tsc.h"
#include "tests/common/fake_backend.h"
#include "tests/unit/console_capture.h"

#define THIS_CPU 2

/* ---- stand-ins ---- */
struct percpu *percpu_blocks[MAX_CPUS];
bool tsc_calibrated(void) { return true; }
uint64_t tsc_hz(void) { return 1000000000ull; }
void irq_register(uint8_t vector, irq_handler_t handler) { (void)vector, (void)handler; }
void lapic_eoi(void) {}
/* The idle wait's timer: no test here idles. */
uint64_t lapic_timer_hz(void) { return 0; }
bool lapic_timer_set_divide(uint32_t d) { (void)d; return true; }
void lapic_timer_start(uint8_t vector, enum lapic_timer_mode mode, uint32_t count, bool masked)
{
    (void)vector, (void)mode, (void)count, (void)masked;
    fail();
}
void lapic_timer_stop(void) {}

static uint32_t ipi_to[8];
static int ipis;
bool lapic_send_fixed(uint32_t apic_id, uint8_t vector)
{
    assert_int_equal(vector, 0xf0);
    ipi_to[ipis++] = apic_id;
    return true;
}

static char ran[64];
static int nran;
/* Each vCPU's script: what its slices end with, in turn. */
struct script {
    const enum exit_action *ends;
    int next;
    int stopped_elsewhere_in; /* 1-based slice during which another CPU stops the VM, 0: never */
};
static struct script scripts[4];

static enum exit_action scripted_slice(struct vcpu *v, uint64_t slice_tsc)
{
    assert_int_equal(slice_tsc, 10000000ull); /* 10 ms at 1 GHz */
    ran[nran++] = (char)('a' + v->id);
    struct script *s = &scripts[v->id];
    enum exit_action a = s->ends[s->next++];
    if (a == EXIT_STOPPED || s->next == s->stopped_elsewhere_in)
        v->vm->state = VM_STOPPED;
    return a;
}

void vm_stop(struct vm *vm, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
    va_end(ap);
    vm->state = VM_STOPPED;
}

static struct percpu cpu_block, other;
static struct vm vms_[4];
static struct vcpu vcpus_[4];

static int setup(void **state)
{
    (void)state;
    memset(&cpu_block, 0, sizeof(cpu_block));
    cpu_block.self = &cpu_block;
    cpu_block.cpu_id = THIS_CPU;
    assert_int_equal(syscall(SYS_arch_prctl, ARCH_SET_GS, &cpu_block), 0);
    memset(vms_, 0, sizeof(vms_));
    memset(vcpus_, 0, sizeof(vcpus_));
    for (int i = 0; i < 4; i++) {
        vcpus_[i].id = (uint32_t)i;
        vcpus_[i].vm = &vms_[i];
        vms_[i].state = VM_RUNNING;
        snprintf(vms_[i].name, sizeof(vms_[i].name), "vm%d", i);
    }
    nran = ipis = 0;
    memset(ran, 0, sizeof(ran));
    fake_backend_reset();
    fake.run = scripted_slice;
    vcpu_backend = &fake_backend;
    capture_reset();
    sched_init(10);
    return 0;
}

static void round_robin_until_each_stops(void **state)
{
    (void)state;
    static const enum exit_action a[] = {EXIT_YIELD, EXIT_YIELD, EXIT_STOPPED};
    static const enum exit_action b[] = {EXIT_YIELD, EXIT_STOPPED};
    static const enum exit_action c[] = {EXIT_YIELD, EXIT_YIELD, EXIT_YIELD, EXIT_STOPPED};
    scripts[0] = (struct script){a, 0, 0};
    scripts[1] = (struct script){b, 0, 0};
    scripts[2] = (struct script){c, 0, 0};
    for (int i = 0; i < 3; i++)
        sched_enqueue(THIS_CPU, &vcpus_[i]);
    assert_int_equal(sched_queue_length(THIS_CPU), 3);
    sched_run_this_cpu();
    /* One slice each in turn; a stopped VM's vCPU never runs again. */
    assert_string_equal(ran, "abcabcacc");
    assert_int_equal(sched_queue_length(THIS_CPU), 0);
    assert_int_equal(fake.unloads, 3);
    assert_int_equal(fake.cpu_offs, 1);
}

static void a_vm_stopped_elsewhere_is_dropped(void **state)
{
    (void)state;
    static const enum exit_action a[] = {EXIT_YIELD, EXIT_YIELD, EXIT_STOPPED};
    static const enum exit_action b[] = {EXIT_YIELD, EXIT_YIELD};
    /* vm1 is stopped by another CPU during its first slice, which still ends with a
     * yield: its vCPU must not come back. */
    scripts[0] = (struct script){a, 0, 0};
    scripts[1] = (struct script){b, 0, 1};
    sched_enqueue(THIS_CPU, &vcpus_[0]);
    sched_enqueue(THIS_CPU, &vcpus_[1]);
    sched_run_this_cpu();
    assert_string_equal(ran, "abaa");
    assert_int_equal(fake.unloads, 2);
}

static void no_vmx_stops_the_vms_placed_here(void **state)
{
    (void)state;
    fake.cpu_on_fails = true;
    sched_enqueue(THIS_CPU, &vcpus_[0]);
    sched_enqueue(THIS_CPU, &vcpus_[1]);
    sched_run_this_cpu();
    assert_int_equal(nran, 0);
    assert_int_equal(vms_[0].state, VM_STOPPED);
    assert_string_equal(vms_[0].stop_reason, "CPU 2 cannot enter VMX operation");
    assert_int_equal(vms_[1].state, VM_STOPPED);
    assert_int_equal(sched_queue_length(THIS_CPU), 0);
}

static void kick_reaches_online_cpus_only(void **state)
{
    (void)state;
    memset(&other, 0, sizeof(other));
    other.apic_id = 42;
    other.online = 1;
    percpu_blocks[5] = &other;
    sched_kick_cpu(5);
    sched_kick_cpu(6);        /* no such CPU */
    sched_kick_cpu(MAX_CPUS); /* out of range */
    other.online = 0;
    sched_kick_cpu(5);
    percpu_blocks[5] = NULL;
    assert_int_equal(ipis, 1);
    assert_int_equal(ipi_to[0], 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(round_robin_until_each_stops, setup),
        cmocka_unit_test_setup(a_vm_stopped_elsewhere_is_dropped, setup),
        cmocka_unit_test_setup(no_vmx_stops_the_vms_placed_here, setup),
        cmocka_unit_test_setup(kick_reaches_online_cpus_only, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
