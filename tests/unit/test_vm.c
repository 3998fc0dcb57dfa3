/* vm.c on the host: creating VMs from a configuration, stopping them from any CPU, and
 * the report that sums every vCPU's statistics. The VMX backend, the EPT builder, the
 * loaders and the scheduler are stood in for here (each has tests of its own); the
 * device platform, the exit-reason tables and the config names are the real ones.
 * GS points at a fake per-CPU block (arch_prctl), so the real this_cpu() works. */
/* SOURCES: vmm/vm.c vmm/exit_reasons.c vmm/dev/bus.c vmm/dev/console.c vmm/dev/uart16550.c vmm/dev/debug_exit.c vmm/dev/platform.c vmm/lib/config.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

#include "vmm/vm.h"
#include "vmm/vcpu.h"
#include "vmm/sched.h"
#include "vmm/exit_reasons.h"
#include "vmm/lib/string.h"
#include "vmm/loaders/guest_image.h"
#include "vmm/lib/page_alloc.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/percpu.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "tests/unit/console_capture.h"

#define THIS_CPU 3

/* ---- stand-ins ---- */
hpa_t palloc(uint64_t size, uint64_t align, hpa_t limit)
{
    (void)limit;
    void *p = aligned_alloc(align < 16 ? 16 : align, ALIGN_UP(size, align));
    return (hpa_t)(uintptr_t)p;
}
void pfree(hpa_t base, uint64_t size)
{
    (void)size;
    free((void *)(uintptr_t)base);
}
uint64_t palloc_free_bytes(void) { return 1ull << 30; }

const struct ept_ops ept_palloc_ops;
int ept_init(struct ept *ept, const struct ept_ops *ops, void *ctx)
{
    (void)ops;
    (void)ctx;
    ept->pml4 = 1;
    return 0;
}
void ept_apply_caps(struct ept *ept, uint64_t cap) { (void)ept; (void)cap; }
void ept_destroy(struct ept *ept) { ept->pml4 = 0; }
int ept_map(struct ept *ept, gpa_t gpa, hpa_t hpa, uint64_t size, uint32_t perms, enum ept_memtype mt)
{
    (void)ept, (void)gpa, (void)hpa, (void)size, (void)perms, (void)mt;
    return 0;
}
uint64_t ept_pointer(const struct ept *ept, bool ad) { (void)ept, (void)ad; return 0x1234000; }

static struct vmx_caps caps;
const struct vmx_caps *vmx_boot_caps(void) { return &caps; }
bool vmm_unrestricted_guest(void) { return true; }
bool cpu_can_run_guests(int32_t cpu) { return cpu >= 0 && cpu < 4; }

int guest_load(enum guest_image_kind kind, const struct guest_ram *ram, const void *image, size_t size,
               const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    (void)kind, (void)ram, (void)image, (void)size, (void)cmdline, (void)err;
    memset(out, 0, sizeof(*out));
    out->rip = 0x100000;
    return 0;
}

static int creates, releases;
bool vcpu_create(struct vm *vm, struct vcpu *v, const struct guest_boot *boot)
{
    (void)boot;
    creates++;
    v->vm = vm;
    v->vpid = (uint16_t)creates;
    v->loaded_cpu = -1;
    return true;
}
void vcpu_release(struct vcpu *v) { (void)v; releases++; }

static uint32_t enqueued_cpu[8];
static int enqueues;
void sched_enqueue(uint32_t cpu, struct vcpu *v)
{
    (void)v;
    enqueued_cpu[enqueues++] = cpu;
}
uint32_t sched_queue_length(uint32_t cpu) { return cpu == 0 ? 5 : cpu; } /* CPU 1 is the least busy */

static uint32_t kicked[8];
static int kicks;
void sched_kick_cpu(uint32_t cpu) { kicked[kicks++] = cpu; }

static struct percpu cpu_block;

static int setup(void **state)
{
    (void)state;
    memset(&cpu_block, 0, sizeof(cpu_block));
    cpu_block.self = &cpu_block;
    cpu_block.cpu_id = THIS_CPU;
    assert_int_equal(syscall(SYS_arch_prctl, ARCH_SET_GS, &cpu_block), 0);
    creates = releases = enqueues = kicks = 0;
    vm_count = 0;
    capture_reset();
    return 0;
}

static struct bootinfo boot_with(const char *const *names, uint32_t n)
{
    static uint8_t image[64];
    struct bootinfo bi;
    memset(&bi, 0, sizeof(bi));
    for (uint32_t i = 0; i < n; i++) {
        bi.modules[i].base = (hpa_t)(uintptr_t)image;
        bi.modules[i].size = sizeof(image);
        kstrlcpy(bi.modules[i].name, names[i], sizeof(bi.modules[i].name));
    }
    bi.module_count = n;
    return bi;
}

static void add_vm(struct keel_config *c, const char *name, const char *image, int32_t cpu, uint32_t vcpus)
{
    struct vm_config *v = &c->vms[c->vm_count++];
    memset(v, 0, sizeof(*v));
    kstrlcpy(v->name, name, sizeof(v->name));
    kstrlcpy(v->image, image, sizeof(v->image));
    v->memory = 2ull << 20;
    v->entry = VM_ENTRY_MULTIBOOT;
    v->cpu = cpu;
    v->vcpus = vcpus;
}

static void creates_what_fits_and_reports_the_rest(void **state)
{
    (void)state;
    static struct keel_config c;
    memset(&c, 0, sizeof(c));
    add_vm(&c, "pinned", "a.elf", 2, 1);
    add_vm(&c, "placed", "/boot/b.elf", CONFIG_CPU_ANY, 1);
    add_vm(&c, "smp", "a.elf", CONFIG_CPU_ANY, 2);
    add_vm(&c, "lost", "missing.elf", CONFIG_CPU_ANY, 1);
    add_vm(&c, "offline", "a.elf", 7, 1);
    static const char *const mods[] = {"a.elf", "/boot/b.elf"};
    struct bootinfo bi = boot_with(mods, 2);
    vms_create(&c, &bi);

    assert_int_equal(vm_count, 2);
    assert_int_equal(vms_running(), 2);
    assert_string_equal(vms[0]->name, "pinned");
    assert_string_equal(vms[1]->name, "placed");
    for (uint32_t i = 0; i < vm_count; i++) {
        assert_int_equal(vms[i]->vcpu_count, 1);
        assert_ptr_equal(vms[i]->vcpus[0]->vm, vms[i]);
        assert_int_equal(vms[i]->state, VM_RUNNING);
    }
    /* Pinned where asked; the other on the shortest queue. */
    assert_int_equal(enqueues, 2);
    assert_int_equal(enqueued_cpu[0], 2);
    assert_int_equal(enqueued_cpu[1], 1);
    assert_true(capture_contains("VM smp: not started: vcpus = 2, but a VM runs one vCPU until Keel has a virtual "
                                 "local APIC to start the others (INIT/SIPI)"));
    assert_true(capture_contains("VM lost: not started: image 'missing.elf' was not loaded"));
    assert_true(capture_contains("VM offline: not started: CPU 7 is not online with VMX"));
    assert_true(capture_contains("VMM: 2 of 5 configured VMs started"));

    /* The first stop wins, from whichever CPU; the running count drops once. */
    struct vm *vm = vms[0];
    vm->vcpus[0]->loaded_cpu = 1; /* running on another CPU */
    vm_stop(vm, "first reason %d", 1);
    vm_stop(vm, "second reason");
    vm_stop_with_code(vm, 9, "debug-exit port");
    assert_int_equal(vm->state, VM_STOPPED);
    assert_string_equal(vm->stop_reason, "first reason 1");
    assert_false(vm->has_exit_code);
    assert_int_equal(vms_running(), 1);
    assert_int_equal(capture_find("VM pinned: stopped:") >= 0, 1);
    /* Its vCPU on CPU 1 is kicked out of guest mode; the calling CPU is not. */
    assert_int_equal(kicks, 1);
    assert_int_equal(kicked[0], 1);

    vms[1]->vcpus[0]->loaded_cpu = THIS_CPU;
    vm_stop_with_code(vms[1], 5, "exit hypercall");
    assert_int_equal(kicks, 1);
    assert_true(vms[1]->has_exit_code);
    assert_int_equal(vms[1]->exit_code, 5);
    assert_string_equal(vms[1]->stop_reason, "exited with code 5 via the exit hypercall");
    assert_int_equal(vms_running(), 0);
}

static void report_sums_every_vcpu(void **state)
{
    (void)state;
    static struct vm vm;
    static struct vcpu a, b;
    memset(&vm, 0, sizeof(vm));
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    strcpy(vm.name, "two");
    vm.vcpus[0] = &a;
    vm.vcpus[1] = &b;
    vm.vcpu_count = 2;
    a.stats.exits[EXIT_REASON_CPUID] = 3;
    b.stats.exits[EXIT_REASON_CPUID] = 4;
    b.stats.exits[EXIT_REASON_IO_INSTRUCTION] = 10;
    a.stats.exits[EXIT_REASON_RDMSR] = 1;
    b.stats.exits[EXIT_REASON_WRMSR] = 2;
    a.stats.guest_tsc = 100;
    b.stats.guest_tsc = 50;
    a.stats.host_tsc = 200;
    b.stats.host_tsc = 200;

    struct vcpu_stats sum;
    vm_sum_stats(&vm, &sum);
    assert_int_equal(sum.exits[EXIT_REASON_CPUID], 7);
    assert_int_equal(sum.guest_tsc, 150);

    vm_print_report(&vm);
    assert_true(capture_contains("VM two: report: 20 exits, guest time 150 TSC ticks, time in Keel 400 TSC ticks "
                                 "(20 per exit)"));
    assert_true(capture_contains("VM two: exits by kind: cpuid 7, io 10, msr-read 1, msr-write 2"));
    assert_true(capture_contains("VM two: exits by reason: CPUID 7, IO_INSTRUCTION 10, RDMSR 1, WRMSR 2"));
}

/* Per-vCPU counters must not share cache lines with a neighbour's. */
static void stats_sit_on_their_own_lines(void **state)
{
    (void)state;
    assert_int_equal(offsetof(struct vcpu, stats) % 64, 0);
    assert_int_equal(sizeof(struct vcpu_stats) % 64, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(creates_what_fits_and_reports_the_rest, setup),
        cmocka_unit_test_setup(report_sums_every_vcpu, setup),
        cmocka_unit_test(stats_sit_on_their_own_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
