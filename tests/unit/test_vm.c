/* vm.c on the host: creating VMs from a configuration, stopping them from any CPU, and
 * the report that sums every vCPU's statistics. The CPU backend is the fake one
 * (tests/common/fake_backend.h) with VMX's exit-reason names; the loaders and the
 * scheduler are stood in for here (each has tests of its own); the device platform and
 * the config names are the real ones.
 * GS points at a fake per-CPU block (arch_prctl), so the real this_cpu() works. */
/* SOURCES: vmm/vm.c vmm/vcpu.c vmm/loaders/linux_boot.c tests/common/fake_backend.c arch/x86/vmx/vmx_exit_reasons.c arch/x86/exit_kinds.c vmm/dev/bus.c vmm/dev/console.c vmm/lib/console_buffer.c vmm/dev/uart16550.c vmm/dev/debug_exit.c vmm/dev/platform.c vmm/dev/pci_devices.c vmm/dev/pci_endpoint.c vmm/dev/msi_apic.c vmm/dev/virtio_pci.c vmm/dev/virtqueue.c vmm/dev/virtio_blk.c vmm/dev/virtio_console.c vmm/dev/pc_testdev.c vmm/dev/apic_bus.c vmm/dev/vlapic.c vmm/dev/vioapic.c vmm/dev/pic8259.c vmm/dev/pit8254.c vmm/dev/rtc_cmos.c vmm/dev/acpi_pm.c vmm/dev/fw_cfg.c vmm/dev/pci_host.c vmm/dev/i8042.c vmm/dev/port92.c vmm/guest_acpi.c vmm/lib/time_math.c vmm/lib/config.c vmm/stats.c vmm/lib/histogram.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

#include "vmm/vm.h"
#include "vmm/vcpu.h"
#include "vmm/sched.h"
#include "arch/x86/vmx/vmx_exit_reasons.h"
#include "tests/common/fake_backend.h"
#include "vmm/lib/string.h"
#include "vmm/loaders/guest_image.h"
#include "vmm/lib/page_alloc.h"
#include "arch/x86/cpu_init.h"
#include "arch/x86/percpu.h"
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

uint64_t time_ns(void) { return 0; }
bool tsc_calibrated(void) { return true; }
uint64_t tsc_hz(void) { return 1000000000ull; }
bool cpu_can_run_guests(int32_t cpu) { return cpu >= 0 && cpu < 4; }

int guest_load(enum guest_image_kind kind, const struct guest_ram *ram, const void *image, size_t size,
               const char *cmdline, struct guest_boot *out, char err[GUEST_ERR_LEN])
{
    (void)kind, (void)ram, (void)image, (void)size, (void)cmdline, (void)err;
    memset(out, 0, sizeof(*out));
    out->rip = 0x100000;
    out->rsp = 0x7000;
    out->mode = kind == GUEST_IMAGE_REAL ? GUEST_MODE_REAL16 : GUEST_MODE_PROT32;
    out->cr0 = kind == GUEST_IMAGE_REAL ? 0 : 0x11;
    return 0;
}

/* The fake backend, reporting exits by VMX's reasons. */
static struct vcpu_backend backend;

/* The scheduler: CPUs 0-3 can run guests; a vCPU goes to the lowest CPU of its list
 * but 0, which is busy (the real placement is tested in test_sched). */
static uint32_t enqueued_cpu[8];
static int enqueues, stops_seen;
bool sched_usable_cpus(const char *vm_name, cpumask_t *cpus)
{
    (void)vm_name;
    for (uint32_t c = 4; c < MAX_CPUS; c++)
        cpumask_clear(cpus, c);
    return cpumask_count(cpus) > 0;
}
void sched_format_cpus(const cpumask_t *cpus, char *buf, size_t size)
{
    snprintf(buf, size, "%u CPUs", cpumask_count(cpus));
}
int32_t sched_add_vcpu(struct vcpu *v)
{
    int32_t cpu = -1;
    for (uint32_t c = 0; c < 4 && cpu < 0; c++)
        if (cpumask_test(&v->sched.affinity, c) && (c > 0 || cpumask_count(&v->sched.affinity) == 1))
            cpu = (int32_t)c;
    enqueued_cpu[enqueues++] = (uint32_t)cpu;
    v->sched.cpu = cpu;
    return cpu;
}
void sched_vm_stopped(struct vm *vm)
{
    (void)vm;
    stops_seen++;
}

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
    enqueues = kicks = stops_seen = 0;
    fake_backend_reset();
    backend = fake_backend;
    backend.exit_reason_name = exit_reason_name;
    backend.exit_reason_kind = exit_reason_kind;
    vcpu_backend = &backend;
    vm_count = 0;
    capture_reset();
    return 0;
}

/* Gives back what vms_create built (palloc here is the C heap), so each test starts
 * with no VMs and LeakSanitizer sees everything freed. */
static int teardown(void **state)
{
    (void)state;
    for (uint32_t i = 0; i < vm_count; i++) {
        struct vm *vm = vms[i];
        for (uint32_t c = 0; c < vm->vcpu_count; c++)
            free(vm->vcpus[c]);
        free((void *)(uintptr_t)vm->ram_hpa);
        free(vm);
        vms[i] = NULL;
    }
    vm_count = 0;
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

    assert_int_equal(vm_count, 3);
    assert_int_equal(vms_running(), 3);
    assert_string_equal(vms[0]->name, "pinned");
    assert_string_equal(vms[1]->name, "placed");
    assert_string_equal(vms[2]->name, "smp");
    for (uint32_t i = 0; i < vm_count; i++) {
        assert_int_equal(vms[i]->vcpu_count, i == 2 ? 2 : 1);
        for (uint32_t c = 0; c < vms[i]->vcpu_count; c++) {
            assert_ptr_equal(vms[i]->vcpus[c]->vm, vms[i]);
            assert_int_equal(vms[i]->vcpus[c]->id, c);
            /* APIC ID = vCPU index; only vCPU 0 is the bootstrap processor. */
            assert_ptr_equal(vms[i]->pc.apic.lapic[c], &vms[i]->vcpus[c]->lapic);
            assert_int_equal(vms[i]->vcpus[c]->lapic.base_msr & BIT(8), c == 0 ? BIT(8) : 0);
            /* The boot vCPU runs; an application processor waits for its SIPI. */
            assert_int_equal(vms[i]->vcpus[c]->activity, c == 0 ? VCPU_ACTIVE : VCPU_WAIT_SIPI);
        }
        assert_int_equal(vms[i]->state, VM_RUNNING);
    }
    /* Each vCPU given to the scheduler with its VM's CPUs: the pinned one's only CPU 2,
     * the others all four; the VM on an offline CPU never gets that far. */
    assert_int_equal(enqueues, 4);
    assert_int_equal(enqueued_cpu[0], 2);
    assert_int_equal(enqueued_cpu[1], 1);
    assert_int_equal(enqueued_cpu[2], 1);
    assert_int_equal(enqueued_cpu[3], 1);
    assert_int_equal(cpumask_count(&vms[0]->vcpus[0]->sched.affinity), 1);
    assert_int_equal(cpumask_count(&vms[2]->vcpus[1]->sched.affinity), 4);
    assert_int_equal(vms[0]->vcpus[0]->sched.weight, SCHED_WEIGHT_DEFAULT);
    assert_true(capture_contains("entry 0x100000, fake backend vCPU 2, CPUs 4 CPUs, on CPU 1, 2 vCPUs"));
    assert_true(capture_contains("VM lost: not started: image 'missing.elf' was not loaded"));
    assert_false(capture_contains("VM offline: "));
    assert_true(capture_contains("VMM: 3 of 5 configured VMs started"));
    /* The backend got each VM and vCPU, and the loader's start state. */
    assert_int_equal(fake.vm_creates, 3);
    assert_int_equal(fake.vcpu_creates, 4);
    assert_int_equal(fake.vm_destroys, 0);
    assert_int_equal(fake.last_boot.rip, 0x100000);
    assert_int_equal(fake.last_boot.rsp, 0x7000);
    assert_int_equal(fake.last_boot.mode, GUEST_MODE_PROT32);
    assert_int_equal(fake.last_boot.cr0, 0x11);
    assert_int_equal(fake.last_boot.rdx, 0);
    assert_true(capture_contains("entry 0x100000, fake backend vCPU 1, CPUs 4 CPUs, on CPU 1"));
    assert_true(capture_contains("entry 0x100000, fake backend vCPU 0, on CPU 2"));

    /* The first stop wins, from whichever CPU; the running count drops once. */
    struct vm *vm = vms[0];
    vm->vcpus[0]->arch.loaded_cpu = 1; /* running on another CPU */
    vm_stop(vm, "first reason %d", 1);
    vm_stop(vm, "second reason");
    vm_stop_with_code(vm, 9, "debug-exit port");
    assert_int_equal(vm->state, VM_STOPPED);
    assert_string_equal(vm->stop_reason, "first reason 1");
    assert_false(vm->has_exit_code);
    assert_int_equal(vms_running(), 2);
    assert_int_equal(capture_find("VM pinned: stopped:") >= 0, 1);
    /* Its vCPU on CPU 1 is kicked out of guest mode; the calling CPU is not. */
    assert_int_equal(kicks, 1);
    assert_int_equal(kicked[0], 1);

    vms[1]->vcpus[0]->arch.loaded_cpu = THIS_CPU;
    vm_stop_with_code(vms[1], 5, "exit hypercall");
    assert_int_equal(kicks, 1);
    assert_true(vms[1]->has_exit_code);
    assert_int_equal(vms[1]->exit_code, 5);
    assert_string_equal(vms[1]->stop_reason, "exited with code 5 via the exit hypercall");
    assert_int_equal(vms_running(), 1);

    /* Both vCPUs of the SMP VM are kicked out of guest mode, wherever they run. */
    vms[2]->vcpus[0]->arch.loaded_cpu = 0;
    vms[2]->vcpus[1]->arch.loaded_cpu = 2;
    vm_stop(vms[2], "stopped by a test");
    assert_int_equal(kicks, 3);
    assert_int_equal(kicked[1], 0);
    assert_int_equal(kicked[2], 2);
    assert_int_equal(vms_running(), 0);
    /* Each stop tells the scheduler, once. */
    assert_int_equal(stops_seen, 3);
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
    a.arch.stats.exits[EXIT_REASON_CPUID] = 3;
    b.arch.stats.exits[EXIT_REASON_CPUID] = 4;
    b.arch.stats.exits[EXIT_REASON_IO_INSTRUCTION] = 10;
    a.arch.stats.exits[EXIT_REASON_RDMSR] = 1;
    b.arch.stats.exits[EXIT_REASON_WRMSR] = 2;
    a.arch.stats.guest_tsc = 100;
    b.arch.stats.guest_tsc = 50;
    a.arch.stats.host_tsc = 200;
    b.arch.stats.host_tsc = 200;

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

/* A real-mode guest starts with the boot drive in DL, as a BIOS leaves it. */
static void real_mode_vcpu_gets_the_boot_drive(void **state)
{
    (void)state;
    static struct keel_config c;
    memset(&c, 0, sizeof(c));
    add_vm(&c, "dos", "a.bin", 1, 1);
    c.vms[0].entry = VM_ENTRY_REAL;
    static const char *const mods[] = {"a.bin"};
    struct bootinfo bi = boot_with(mods, 1);
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 1);
    assert_int_equal(fake.last_boot.mode, GUEST_MODE_REAL16);
    assert_int_equal(fake.last_boot.rdx, 0x80);

    /* Without unrestricted guest (paging-off guests) it is refused up front. */
    teardown(NULL);
    fake.paging_off_guests = false;
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 0);
    assert_true(capture_contains("VM dos: not started: entry 'real' needs the CPU's unrestricted-guest feature"));
}

/* A backend that cannot build the VM's memory map or its vCPU: the VM is reported, and
 * what was already built is given back. */
static void backend_failures_release_the_vm(void **state)
{
    (void)state;
    static struct keel_config c;
    memset(&c, 0, sizeof(c));
    add_vm(&c, "a", "a.elf", 1, 1);
    static const char *const mods[] = {"a.elf"};
    struct bootinfo bi = boot_with(mods, 1);

    fake.vm_create_fails = true;
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 0);
    assert_int_equal(fake.vm_creates, 1);
    assert_int_equal(fake.vcpu_creates, 0);
    assert_int_equal(fake.vm_destroys, 1);

    fake.vm_create_fails = false;
    fake.vcpu_create_fails = true;
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 0);
    assert_int_equal(fake.vcpu_creates, 1);
    assert_int_equal(fake.vcpu_destroys, 1);
    assert_int_equal(fake.vm_destroys, 2);
    assert_int_equal(enqueues, 0);
    assert_true(capture_contains("VMM: 0 of 1 configured VMs started"));
}

static uint64_t port_read(struct vm *vm, uint16_t port)
{
    uint64_t v = 0;
    vm_bus_access(&vm->bus, BUS_PIO, port, 1, false, &v);
    return v & 0xff;
}

static void port_write(struct vm *vm, uint16_t port, uint8_t value)
{
    uint64_t v = value;
    vm_bus_access(&vm->bus, BUS_PIO, port, 1, true, &v);
}

/* on_reset = restart: every vCPU parks where it runs, the last one restarts the VM
 * (zeroed RAM with the image again, devices at power-on, the ACPI tables again), vCPU 0
 * starts as the entry kind says and the others wait for SIPI; statistics carry on. */
static void reset_restarts_the_vm_once_every_vcpu_parked(void **state)
{
    (void)state;
    static struct keel_config c;
    memset(&c, 0, sizeof(c));
    add_vm(&c, "again", "a.elf", 1, 2);
    c.vms[0].on_reset = VM_ON_RESET_RESTART;
    static const char *const mods[] = {"a.elf"};
    struct bootinfo bi = boot_with(mods, 1);
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 1);
    struct vm *vm = vms[0];
    struct vcpu *v0 = vm->vcpus[0], *v1 = vm->vcpus[1];
    /* The guest ran a while: RAM written, devices programmed, the AP started. */
    vm->mem.hva[0x500] = 0xaa;
    uint8_t *acpi = vm->mem.hva + 0xe0000;
    uint8_t rsdp[8];
    memcpy(rsdp, acpi, sizeof(rsdp));
    assert_memory_equal(rsdp, "RSD PTR ", 8);
    memset(acpi, 0, 8);
    port_write(vm, 0x3ff, 0x5a); /* COM1 scratch */
    port_write(vm, 0x21, 0x00);  /* every PIC input unmasked */
    port_write(vm, 0x70, 0x0f);  /* CMOS shutdown status byte */
    port_write(vm, 0x71, 0x4b);
    port_write(vm, 0x70, 0x0b);  /* RTC update interrupts on */
    port_write(vm, 0x71, 0x12);
    fake_vcpu(v0)->reg[VCPU_REG_RIP] = 0x123456;
    v1->activity = VCPU_ACTIVE;
    v0->arch.stats.exits[EXIT_REASON_CPUID] = 7;
    kicks = 0;

    assert_int_equal(vm_reset(v0, "port 0xCF9"), EXIT_YIELD);
    assert_true(capture_contains("VM again: reset by the guest (port 0xCF9); restarting from its image (restart 1)"));
    /* vCPU 0 reset its own state and parked; vCPU 1 is told, and the VM waits for it. */
    assert_int_equal(fake_vcpu(v0)->resets, 1);
    assert_int_equal(fake_vcpu(v0)->reg[VCPU_REG_RIP], 0x100000);
    assert_int_equal(v0->activity, VCPU_WAIT_SIPI);
    assert_true(vm->resetting);
    assert_int_equal(v1->arch.recheck, 1);
    assert_int_equal(kicks, 1);
    assert_int_equal(vm->mem.hva[0x500], 0xaa);
    /* Woken again before the reset is done (an IPI), vCPU 0 just waits on. */
    assert_int_equal(vm_reset_park(v0), EXIT_YIELD);
    assert_int_equal(fake_vcpu(v0)->resets, 1);
    /* A second reset from the other vCPU meanwhile is the same reset. */
    assert_int_equal(vm_reset(v1, "i8042 reset (command 0xFE)"), EXIT_YIELD);
    assert_int_equal(vm->resets, 1);

    /* vCPU 1 was the last to park: the VM restarted. */
    assert_false(vm->resetting);
    assert_int_equal(fake_vcpu(v1)->resets, 1);
    assert_int_equal(fake_vcpu(v1)->reg[VCPU_REG_RIP], 0xfff0);
    assert_int_equal(v1->activity, VCPU_WAIT_SIPI);
    assert_int_equal(v0->activity, VCPU_ACTIVE);
    assert_int_equal(v0->arch.recheck, 1);
    assert_int_equal(vm->mem.hva[0x500], 0);
    assert_memory_equal(acpi, rsdp, sizeof(rsdp)); /* "RSD PTR " written again */
    assert_int_equal(port_read(vm, 0x3ff), 0);
    assert_int_equal(port_read(vm, 0x21), 0xfb);
    /* The RTC is battery-backed: its CMOS RAM survives, its interrupt enables do not. */
    port_write(vm, 0x70, 0x0f);
    assert_int_equal(port_read(vm, 0x71), 0x4b);
    port_write(vm, 0x70, 0x0b);
    assert_int_equal(port_read(vm, 0x71), 0x02);
    assert_int_equal(vm->state, VM_RUNNING);
    /* The next EVENTS of either vCPU finds nothing to park for. */
    assert_int_equal(v0->reset_gen, vm->reset_gen);
    assert_int_equal(v1->reset_gen, vm->reset_gen);

    vm_print_report(vm);
    assert_true(capture_contains("VM again: report: 7 exits"));
    assert_true(capture_contains("VM again: restarted 1 time (last: port 0xCF9); the counts above cover every run"));
}

/* A guest that resets again and again is stopped after VM_RESET_BURST restarts in a
 * burst, with the reason; on_reset = stop stops at the first. */
static void reset_loops_are_bounded_and_stop_stops(void **state)
{
    (void)state;
    static struct keel_config c;
    memset(&c, 0, sizeof(c));
    add_vm(&c, "loop", "a.elf", 1, 1);
    add_vm(&c, "once", "a.elf", 1, 1);
    c.vms[0].on_reset = VM_ON_RESET_RESTART;
    c.vms[1].on_reset = VM_ON_RESET_STOP;
    static const char *const mods[] = {"a.elf"};
    struct bootinfo bi = boot_with(mods, 1);
    vms_create(&c, &bi);
    assert_int_equal(vm_count, 2);
    struct vm *vm = vms[0];
    for (unsigned i = 1; i <= VM_RESET_BURST; i++) {
        /* time_ns() stands still here: every reset is in the same burst. */
        assert_int_equal(vm_reset(vm->vcpus[0], "port 0x92 fast reset"), EXIT_YIELD);
        assert_int_equal(vm->resets, i);
        assert_false(vm->resetting);
        assert_int_equal(vm->state, VM_RUNNING);
    }
    assert_int_equal(vm_reset(vm->vcpus[0], "port 0x92 fast reset"), EXIT_STOPPED);
    assert_int_equal(vm->state, VM_STOPPED);
    assert_true(capture_contains("VM loop: stopped: reset by the guest (port 0x92 fast reset) 9 times within 10 s: "
                                 "a reset loop, so it stops"));

    assert_int_equal(vm_reset(vms[1]->vcpus[0], "reset control register (port 0xCF9)"), EXIT_STOPPED);
    assert_int_equal(vms[1]->state, VM_STOPPED);
    assert_int_equal(vms[1]->resets, 0);
    assert_int_equal(fake_vcpu(vms[1]->vcpus[0])->resets, 0);
    assert_true(capture_contains("VM once: stopped: reset by the guest (reset control register (port 0xCF9)); "
                                 "on_reset = stop"));
}

/* Per-vCPU counters must not share cache lines with a neighbour's. */
static void stats_sit_on_their_own_lines(void **state)
{
    (void)state;
    assert_int_equal(offsetof(struct vcpu, arch.stats) % 64, 0);
    assert_int_equal(sizeof(struct vcpu_stats) % 64, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(creates_what_fits_and_reports_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(report_sums_every_vcpu, setup, teardown),
        cmocka_unit_test_setup_teardown(real_mode_vcpu_gets_the_boot_drive, setup, teardown),
        cmocka_unit_test_setup_teardown(backend_failures_release_the_vm, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_restarts_the_vm_once_every_vcpu_parked, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_loops_are_bounded_and_stop_stops, setup, teardown),
        cmocka_unit_test(stats_sit_on_their_own_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
