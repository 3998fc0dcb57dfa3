/* The generic exit handlers over the fake CPU backend (tests/common/fake_backend.h):
 * the same decoded exits a VMX (or SVM) backend hands over, with guest state in plain
 * memory. Shows the handlers keep to the seam: they reach registers, CR0/CR4/EFER,
 * CPL and exception injection only through the backend, and tell it how the guest goes
 * on. The VMX side of the same exits is tests/unit/test_exit_handlers.c.
 * GS points at a fake per-CPU block (arch_prctl), so the real this_cpu() works. */
/* SOURCES: vmm/exit_handlers.c vmm/vcpu.c vmm/exit_cpuid.c vmm/hypercall.c vmm/exit_io.c vmm/exit_msr.c vmm/exit_cr.c vmm/exit_instructions.c vmm/exit_events.c vmm/exit_mmio.c vmm/vcpu_events.c arch/x86/guest_walk.c arch/x86/insn_decode.c arch/x86/insn_emulate.c tests/common/fake_backend.c arch/x86/exit_kinds.c vmm/dev/bus.c vmm/dev/console.c vmm/lib/console_buffer.c vmm/dev/uart16550.c vmm/dev/debug_exit.c vmm/dev/platform.c vmm/dev/pci_devices.c vmm/dev/pci_endpoint.c vmm/dev/msi_apic.c vmm/dev/virtio_pci.c vmm/dev/virtqueue.c vmm/dev/virtio_blk.c vmm/dev/virtio_console.c vmm/dev/pc_testdev.c vmm/dev/apic_bus.c vmm/dev/vlapic.c vmm/dev/vioapic.c vmm/dev/pic8259.c vmm/dev/pit8254.c vmm/dev/rtc_cmos.c vmm/dev/acpi_pm.c vmm/dev/fw_cfg.c vmm/dev/pci_host.c vmm/dev/i8042.c vmm/dev/port92.c vmm/guest_acpi.c vmm/lib/time_math.c vmm/stats.c vmm/lib/histogram.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <asm/prctl.h>

#include "vmm/exit_handlers.h"
#include "vmm/hypercall_abi.h"
#include "vmm/dev/platform.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"
#include "tests/common/fake_backend.h"
#include "vmm/dev/vioapic.h"
#include "vmm/dev/vlapic.h"
#include "vmm/dev/debug_exit.h"
#include "tests/unit/console_capture.h"

#define RAM_SIZE 0x10000ull
#define RIP0 0x2000ull

/* ---- stand-ins for other subsystems and the hardware ---- */
static int stops;
void vm_stop(struct vm *vm, const char *fmt, ...)
{
    if (vm->state == VM_STOPPED)
        return;
    va_list ap;
    va_start(ap, fmt);
    kvsnprintf(vm->stop_reason, sizeof(vm->stop_reason), fmt, ap);
    va_end(ap);
    vm->state = VM_STOPPED;
    stops++;
}
void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why)
{
    vm->has_exit_code = true;
    vm->exit_code = code;
    vm_stop(vm, "exited with code %u via the %s", code, why);
}
/* vm.c's restart: a reset stops the VM here, as on_reset = stop would. */
static int resets, parks;
enum exit_action vm_reset(struct vcpu *v, const char *why)
{
    resets++;
    vm_stop(v->vm, "reset by the guest (%s)", why);
    return EXIT_STOPPED;
}
enum exit_action vm_reset_park(struct vcpu *v)
{
    (void)v;
    parks++;
    return EXIT_YIELD;
}
bool tsc_calibrated(void) { return true; }
uint64_t tsc_hz(void) { return 1000000000ull; }
void host_test_cpuid(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    *b = *c = *d = 0;
    *a = 0x16;
}
/* VM time for the platform's devices: the tests move it by hand, and may have it run
 * on by fake_time_step at every reading, as a real clock does while Keel works. */
static uint64_t fake_time_ns, fake_time_step;
uint64_t time_ns(void) { return fake_time_ns += fake_time_step; }
uint64_t ns_to_tsc(uint64_t ns) { return ns; }
static int kicks;
void sched_kick_cpu(uint32_t cpu) { (void)cpu; kicks++; }
static uint32_t wrmsr_last;
bool host_test_wrmsr(uint32_t msr, uint64_t val)
{
    (void)val;
    wrmsr_last = msr;
    return true;
}
static uint64_t xsetbv_value;
bool host_test_xsetbv(uint32_t idx, uint64_t val)
{
    (void)idx;
    xsetbv_value = val;
    return true;
}

static struct percpu cpu_block;
static struct vm *vm;
static struct vcpu *v;
static struct fake_vcpu *f;

static int setup(void **state)
{
    (void)state;
    fake_backend_reset();
    assert_true(vcpu_backend_start(&fake_backend));
    assert_ptr_equal(fake.handlers, exit_handlers);
    vm = calloc(1, sizeof(*vm));
    v = aligned_alloc(4096, sizeof(*v)); /* its LAPIC page is page aligned */
    memset(v, 0, sizeof(*v));
    vm->mem.hva = calloc(1, RAM_SIZE);
    vm->ram_size = RAM_SIZE;
    vm->mem.size = RAM_SIZE;
    strcpy(vm->name, "fake");
    assert_true(vm_platform_attach(vm));
    vm->state = VM_RUNNING;
    vm->vcpus[0] = v;
    vm->vcpu_count = 1;
    v->vm = vm;
    f = fake_vcpu(v);
    fake_time_ns = 0; /* VM time and host time start together */
    fake_time_step = 0;
    assert_true(vm_platform_start(vm));
    /* 64-bit ring 0, interrupts on. */
    f->reg[VCPU_REG_RIP] = RIP0;
    f->reg[VCPU_REG_RFLAGS] = 0x202;
    f->reg[VCPU_REG_CR0] = CR0_PG | CR0_PE | CR0_ET;
    f->reg[VCPU_REG_CR4] = CR4_PAE;
    f->reg[VCPU_REG_EFER] = EFER_LME | EFER_LMA;
    f->reg[VCPU_REG_CODE64] = 1;
    memset(&cpu_block, 0, sizeof(cpu_block));
    cpu_block.self = &cpu_block;
    assert_int_equal(syscall(SYS_arch_prctl, ARCH_SET_GS, &cpu_block), 0);
    stops = 0;
    capture_reset();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(vm->mem.hva);
    free(vm);
    free(v);
    return 0;
}

static enum exit_action take(enum vcpu_exit id, struct exit_info e, unsigned len)
{
    return fake_exit(v, id, &e, len);
}

static void assert_stepped(unsigned len)
{
    assert_int_equal(f->reg[VCPU_REG_RIP], RIP0 + len);
    assert_int_equal(f->injected_vector, -1);
}

static void assert_fault(int vector)
{
    assert_int_equal(f->injected_vector, vector);
    assert_int_equal(f->reg[VCPU_REG_RIP], RIP0);
    f->injected_vector = -1;
}

static void handlers_cover_every_exit(void **state)
{
    (void)state;
    for (unsigned i = 0; i < VCPU_EXIT_COUNT; i++)
        assert_non_null(exit_handlers[i]);
    assert_ptr_equal(exit_handlers[VCPU_EXIT_CPUID], exit_cpuid);
    assert_ptr_equal(exit_handlers[VCPU_EXIT_FATAL], exit_fatal);
    /* A backend that cannot run guests is not chosen. */
    const struct vcpu_backend *before = vcpu_backend;
    fake.init_fails = true;
    assert_false(vcpu_backend_start(&fake_backend));
    assert_ptr_equal(vcpu_backend, before);
}

static void cpuid_and_hypercalls(void **state)
{
    (void)state;
    v->arch.regs.rax = KEEL_CPUID_BASE;
    assert_int_equal(take(VCPU_EXIT_CPUID, (struct exit_info){0}, 2), EXIT_RESUME);
    assert_stepped(2);
    assert_int_equal(v->arch.regs.rbx, KEEL_SIGNATURE_EBX);

    /* From ring 3 every function is EPERM; the backend said so in e->hc. */
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = KEEL_HC_EXIT;
    assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 3, .wide = true}}, 3), EXIT_RESUME);
    assert_stepped(3);
    assert_int_equal((int64_t)v->arch.regs.rax, -(int64_t)KEEL_EPERM);

    /* A 32-bit guest's upper halves are not part of the call: this is YIELD. */
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = 0xabcd00000000ull | KEEL_HC_YIELD;
    assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 0, .wide = false}}, 3), EXIT_YIELD);
    assert_stepped(3);
    assert_int_equal(v->arch.regs.rax, 0);

    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = KEEL_HC_EXIT;
    v->arch.regs.rbx = 7;
    assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 0, .wide = true}}, 3), EXIT_STOPPED);
    assert_int_equal(f->reg[VCPU_REG_RIP], RIP0); /* a stopped guest is not stepped */
    assert_string_equal(vm->stop_reason, "exited with code 7 via the exit hypercall");
}

/* KEEL_HC_STATS prints the VM's statistics and/or asks its vCPUs to clear them. */
static void stats_hypercall(void **state)
{
    (void)state;
    v->arch.stats.exits[1] = 3;
    vcpu_latency_clear(&v->arch.latency);
    for (uint32_t t = 100; t < 400; t += 100)
        latency_record(&v->arch.latency.exit[1], t);
    capture_reset();
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = KEEL_HC_STATS;
    v->arch.regs.rbx = KEEL_STATS_PRINT;
    assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 0, .wide = true}}, 3), EXIT_RESUME);
    assert_stepped(3);
    /* vm, vcpu, exit, hist and end lines: the count comes back in RAX. */
    assert_int_equal(v->arch.regs.rax, 5);
    assert_true(capture_contains("KEEL-STATS {\"type\":\"vm\",\"vm\":0,\"name\":\"fake\",\"dump\":1,"
                                 "\"why\":\"hypercall\""));
    assert_true(capture_contains("\"count\":3,\"timed\":3,\"total\":600,\"min\":100,"));
    assert_true(capture_contains("KEEL-STATS {\"type\":\"end\",\"vm\":0,\"dump\":1,\"lines\":4}"));
    assert_int_equal(v->arch.latency.reset_requested, 0);

    /* Reset only: nothing printed, the vCPU asked to clear its figures before its
     * next entry. */
    capture_reset();
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = KEEL_HC_STATS;
    v->arch.regs.rbx = KEEL_STATS_RESET;
    v->arch.recheck = 0;
    assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 0, .wide = true}}, 3), EXIT_RESUME);
    assert_int_equal(v->arch.regs.rax, 0);
    assert_false(capture_contains("KEEL-STATS"));
    assert_int_equal(v->arch.latency.reset_requested, 1);
    assert_int_equal(v->arch.recheck, 1);

    /* No flag, or an unknown one: EINVAL, nothing done. */
    static const uint64_t bad[] = {0, 4, KEEL_STATS_PRINT | 8};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        capture_reset();
        v->arch.regs.rax = KEEL_HC_STATS;
        v->arch.regs.rbx = bad[i];
        assert_int_equal(take(VCPU_EXIT_HYPERCALL, (struct exit_info){.hc = {.cpl = 0, .wide = true}}, 3),
                         EXIT_RESUME);
        assert_int_equal((int64_t)v->arch.regs.rax, -(int64_t)KEEL_EINVAL);
        assert_false(capture_contains("KEEL-STATS"));
    }
}

static void port_io_through_the_bus(void **state)
{
    (void)state;
    /* IN AL from an unclaimed port: all-ones in AL, the rest of RAX kept. */
    v->arch.regs.rax = 0x1122334455667788ull;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = 0x2f0, .size = 1, .in = true}}, 1),
                     EXIT_RESUME);
    assert_stepped(1);
    assert_int_equal(v->arch.regs.rax, 0x11223344556677ffull);
    /* IN EAX clears the upper half, as a 32-bit register write does. */
    f->reg[VCPU_REG_RIP] = RIP0;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = 0x2f0, .size = 4, .in = true}}, 1),
                     EXIT_RESUME);
    assert_int_equal(v->arch.regs.rax, 0xffffffffull);
    /* The debug-exit port stops the VM with the guest's code. */
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rax = 3;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = 0xf4, .size = 1}}, 2), EXIT_STOPPED);
    assert_int_equal(vm->exit_code, 7);
}

static void string_io_stops(void **state)
{
    (void)state;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = 0x3f8, .size = 1, .string = true}}, 2),
                     EXIT_STOPPED);
    assert_string_equal(vm->stop_reason, "string I/O (OUTS) at port 0x3f8 is not supported");
}

/* Long mode comes and goes through EFER.LMA, which the handler sets through the
 * backend; the backend's own work (VMX's entry control) is not the handler's business. */
static void cr0_paging_and_long_mode(void **state)
{
    (void)state;
    f->reg[VCPU_REG_CR0] = CR0_PE | CR0_ET;
    f->reg[VCPU_REG_EFER] = EFER_LME;
    v->arch.regs.rbx = CR0_PG | CR0_PE | CR0_ET;
    assert_int_equal(take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 0, .type = CR_MOV_TO, .gpr = 3}}, 3),
                     EXIT_RESUME);
    assert_stepped(3);
    assert_int_equal(f->reg[VCPU_REG_CR0], CR0_PG | CR0_PE | CR0_ET);
    assert_int_equal(f->reg[VCPU_REG_EFER], EFER_LME | EFER_LMA);

    /* Paging off again leaves long mode. */
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rbx = CR0_PE | CR0_ET;
    take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 0, .type = CR_MOV_TO, .gpr = 3}}, 3);
    assert_int_equal(f->reg[VCPU_REG_EFER], EFER_LME);

    /* Without CR4.PAE, enabling paging with LME is #GP and changes nothing. */
    f->reg[VCPU_REG_RIP] = RIP0;
    f->reg[VCPU_REG_CR4] = 0;
    v->arch.regs.rbx = CR0_PG | CR0_PE | CR0_ET;
    assert_int_equal(take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 0, .type = CR_MOV_TO, .gpr = 3}}, 3),
                     EXIT_RESUME);
    assert_fault(13);
    assert_int_equal(f->reg[VCPU_REG_CR0], CR0_PE | CR0_ET);
}

/* RSP (register 4) is the backend's, the others are in the saved registers. */
static void cr8_through_rsp_and_cr4_limits(void **state)
{
    (void)state;
    f->reg[VCPU_REG_RSP] = 9;
    assert_int_equal(take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 8, .type = CR_MOV_TO, .gpr = 4}}, 4),
                     EXIT_RESUME);
    assert_int_equal(vlapic_get_cr8(&v->lapic), 9);
    f->reg[VCPU_REG_RIP] = RIP0;
    take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 8, .type = CR_MOV_FROM, .gpr = 4}}, 4);
    take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 8, .type = CR_MOV_FROM, .gpr = 15}}, 4);
    assert_int_equal(f->reg[VCPU_REG_RSP], 9);
    assert_int_equal(v->arch.regs.r15, 9);

    /* A CR4 bit the backend says the CPU lacks is #GP. */
    f->reg[VCPU_REG_RIP] = RIP0;
    fake.cr4_allowed = CR4_PAE;
    v->arch.regs.rcx = CR4_PAE | CR4_PGE;
    take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 4, .type = CR_MOV_TO, .gpr = 1}}, 3);
    assert_fault(13);
    fake.cr4_allowed = CR4_PAE | CR4_PGE;
    take(VCPU_EXIT_CR, (struct exit_info){.cr = {.cr = 4, .type = CR_MOV_TO, .gpr = 1}}, 3);
    assert_stepped(3);
    assert_int_equal(f->reg[VCPU_REG_CR4], CR4_PAE | CR4_PGE);
}

static void msrs_in_backend_registers(void **state)
{
    (void)state;
    f->reg[VCPU_REG_FS_BASE] = 0xffff800000001000ull;
    v->arch.regs.rcx = MSR_FS_BASE;
    assert_int_equal(take(VCPU_EXIT_RDMSR, (struct exit_info){0}, 2), EXIT_RESUME);
    assert_stepped(2);
    assert_int_equal(v->arch.regs.rax, 0x1000);
    assert_int_equal(v->arch.regs.rdx, 0xffff8000);
    /* Non-canonical: #GP, the backend's copy untouched. */
    f->reg[VCPU_REG_RIP] = RIP0;
    v->arch.regs.rdx = 0x00008000;
    v->arch.regs.rax = 0;
    take(VCPU_EXIT_WRMSR, (struct exit_info){0}, 2);
    assert_fault(13);
    assert_int_equal(f->reg[VCPU_REG_FS_BASE], 0xffff800000001000ull);
    /* LSTAR is written through to the CPU and kept in the vCPU. */
    v->arch.regs.rcx = MSR_LSTAR;
    v->arch.regs.rdx = 0xffffffff;
    v->arch.regs.rax = 0x80001000;
    take(VCPU_EXIT_WRMSR, (struct exit_info){0}, 2);
    assert_stepped(2);
    assert_int_equal(wrmsr_last, MSR_LSTAR);
    assert_int_equal(v->arch.msr_lstar, 0xffffffff80001000ull);
}

static void hlt_xsetbv_and_undefined(void **state)
{
    (void)state;
    assert_int_equal(take(VCPU_EXIT_HLT, (struct exit_info){0}, 1), EXIT_YIELD);
    assert_stepped(1);
    f->reg[VCPU_REG_RIP] = RIP0;
    f->reg[VCPU_REG_RFLAGS] = 0x2;
    assert_int_equal(take(VCPU_EXIT_HLT, (struct exit_info){0}, 1), EXIT_STOPPED);
    assert_string_equal(vm->stop_reason, "halted with interrupts disabled (HLT at rip 0x2000)");

    vm->state = VM_RUNNING;
    take(VCPU_EXIT_UNDEFINED, (struct exit_info){0}, 3);
    assert_fault(6);
    take(VCPU_EXIT_RDPMC, (struct exit_info){0}, 2);
    assert_fault(13);

    /* XSETBV: #UD without CR4.OSXSAVE; with it, the backend's XCR0 components decide. */
    v->arch.regs.rax = 0x7;
    v->arch.regs.rdx = v->arch.regs.rcx = 0;
    take(VCPU_EXIT_XSETBV, (struct exit_info){0}, 3);
    assert_fault(6);
    f->reg[VCPU_REG_CR4] |= CR4_OSXSAVE;
    fake.xcr0_supported = 0x3;
    take(VCPU_EXIT_XSETBV, (struct exit_info){0}, 3);
    assert_fault(13);
    fake.xcr0_supported = 0x7;
    take(VCPU_EXIT_XSETBV, (struct exit_info){0}, 3);
    assert_stepped(3);
    assert_int_equal(v->arch.xcr0, 0x7);
    assert_int_equal(xsetbv_value, 0x7);
}

static void memory_interrupt_and_fatal(void **state)
{
    (void)state;
    assert_int_equal(take(VCPU_EXIT_MEMORY, (struct exit_info){.mem = {.gpa = 0x20000, .write = true}}, 3),
                     EXIT_STOPPED);
    assert_string_equal(vm->stop_reason, "EPT violation: write at guest-physical 0x20000 (outside its RAM, RAM is "
                                         "0x10000 bytes) at rip 0x2000");
    vm->state = VM_RUNNING;
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = NULL}, 0), EXIT_RESUME);
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = "host NMI"}, 0), EXIT_RESUME);
    assert_true(capture_contains("VM fake: host NMI"));
    assert_int_equal(take(VCPU_EXIT_SLICE_END, (struct exit_info){0}, 0), EXIT_YIELD);
    assert_int_equal(f->reg[VCPU_REG_RIP], RIP0);
    /* The scheduler's kick asks for the CPU back (a woken vCPU is owed it): the
     * interrupt exit yields, and only then. */
    cpu_block.sched_preempt = 1;
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = NULL}, 0), EXIT_YIELD);
    cpu_block.sched_preempt = 0;
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = NULL}, 0), EXIT_RESUME);
    /* A PAUSE loop gives the CPU away, stepping over the PAUSE. */
    assert_int_equal(take(VCPU_EXIT_PAUSE, (struct exit_info){0}, 2), EXIT_YIELD);
    assert_int_equal(f->reg[VCPU_REG_RIP], RIP0 + 2);
    f->reg[VCPU_REG_RIP] = RIP0;
    /* A stop from another CPU shows at the next interrupt exit. */
    vm->state = VM_STOPPED;
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = NULL}, 0), EXIT_STOPPED);
    vm->state = VM_RUNNING;
    assert_int_equal(take(VCPU_EXIT_FATAL, (struct exit_info){.why = "triple fault at rip 0x2000"}, 0), EXIT_STOPPED);
    assert_string_equal(vm->stop_reason, "triple fault at rip 0x2000");
}

static void out8(uint16_t port, uint8_t value)
{
    v->arch.regs.rax = value;
    f->reg[VCPU_REG_RIP] = RIP0;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = port, .size = 1}}, 1), EXIT_RESUME);
}

/* One pass before an entry, as the backend makes it when the vCPU has to look. */
static enum exit_action before_entry(void)
{
    v->arch.recheck = 0;
    f->blocked = false;
    return fake.handlers[VCPU_EXIT_EVENTS](v, &(struct exit_info){0});
}

/* PIT channel 0 in mode 2 at 1 kHz: IRQ 0 reaches the vCPU as the IOAPIC's pin 2
 * (the MADT's override) routes it, once the guest's LAPIC is on; its deadline bounds
 * the guest's run, and HLT with the timer running blocks until it fires. */
static void pit_irq0_through_the_ioapic(void **state)
{
    (void)state;
    struct vm_pc *pc = &vm->pc;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0x30); /* vector 0x30, fixed, edge, unmasked */
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2 + 1);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0); /* to APIC ID 0 */
    v->arch.recheck = 0;
    out8(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 */
    out8(0x40, 1193 & 0xff);
    out8(0x40, 1193 >> 8);
    /* Programming a timer device makes the vCPU look before its next entry. */
    assert_int_equal(v->arch.recheck, 1);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 0);
    uint64_t deadline = __atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED);
    assert_true(deadline > 900000 && deadline < 1100000);
    assert_int_equal(v->arch.wake_tsc, pc->tsc_at_zero + deadline + 1); /* ns_to_tsc is 1:1 here, one tick late */

    /* HLT with interrupts on and the PIT running: the vCPU waits off the CPU. */
    f->reg[VCPU_REG_RIP] = RIP0;
    assert_int_equal(take(VCPU_EXIT_HLT, (struct exit_info){0}, 1), EXIT_YIELD);
    assert_true(v->halted);
    assert_int_equal(before_entry(), EXIT_YIELD);
    assert_false(vcpu_runnable(v, deadline + pc->tsc_at_zero));
    assert_true(vcpu_runnable(v, deadline + 1 + pc->tsc_at_zero));

    /* The period passes: the interrupt goes in and the vCPU runs again. */
    fake_time_ns = deadline;
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_false(v->halted);
    assert_int_equal(f->nintr, 1);
    assert_int_equal(f->intr[0], 0x30);
    /* Blocked by an interrupt shadow: the next one waits for the window. */
    fake_time_ns = 2 * deadline + 10;
    f->reg[VCPU_REG_INTERRUPTIBILITY] = 0;
    vlapic_mmio_write(&v->lapic, APIC_EOI, 4, 0);
    v->arch.recheck = 0;
    f->blocked = true;
    assert_int_equal(fake.handlers[VCPU_EXIT_EVENTS](v, &(struct exit_info){0}), EXIT_RESUME);
    assert_int_equal(f->nintr, 1);
    assert_true(f->window);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 2);
    assert_false(f->window);
}

/* The order a kernel often uses: the PIT first, with IRQ 0 still masked everywhere
 * (its edges then wake nobody), the IOAPIC's pin unmasked afterwards. */
static void pit_first_then_ioapic(void **state)
{
    (void)state;
    struct vm_pc *pc = &vm->pc;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    out8(0x43, 0x34);
    out8(0x40, 1193 & 0xff);
    out8(0x40, 1193 >> 8);
    before_entry();
    assert_int_equal(__atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED), CLOCK_NEVER);
    fake_time_ns = 5000000; /* 5 ms of PIT edges nobody listens to */
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2 + 1);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0x31);
    vm_platform_programmed(vm, v); /* what exit_mmio does after the write */
    uint64_t deadline = __atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED);
    if (!(deadline > fake_time_ns && deadline <= fake_time_ns + 1100000))
        fail_msg("deadline %lu at %lu", (unsigned long)deadline, (unsigned long)fake_time_ns);
    unsigned got = 0;
    for (int i = 0; i < 10; i++) {
        fake_time_ns = __atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED);
        before_entry();
        got = f->nintr;
        vlapic_mmio_write(&v->lapic, APIC_EOI, 4, 0);
    }
    assert_true(got >= 9);
    assert_int_equal(f->intr[0], 0x31);
}

static uint8_t in8(uint16_t port)
{
    f->reg[VCPU_REG_RIP] = RIP0;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = port, .size = 1, .in = true}}, 1),
                     EXIT_RESUME);
    return (uint8_t)v->arch.regs.rax;
}

/* The platform guest's PIT use before its IRQ 0 check (tests/guests/platform/timing.c,
 * irq0.c), on a clock that runs on at every reading: six 50 ms countdowns of channel 2
 * through port 0x61, then channel 0 in mode 2 at 1000 Hz and IOAPIC pin 2 unmasked.
 * 30 ms of VM time must bring about 30 interrupts. (Compared with a clock reading
 * taken before the PIT was asked, a due PIT deadline, which is the PIT's own "now",
 * was never due: the edges piled up and none was delivered.) */
static void pit_irq0_on_a_running_clock(void **state)
{
    (void)state;
    struct vm_pc *pc = &vm->pc;
    fake_time_ns = 100000000;
    fake_time_step = 700;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    for (int i = 0; i < 6; i++) {
        out8(0x61, (uint8_t)((in8(0x61) & ~0x02) | 0x01)); /* speaker off, gate 2 on */
        out8(0x43, 0xb0);                                   /* channel 2, mode 0 */
        out8(0x42, 59659 & 0xff);
        out8(0x42, 59659 >> 8);
        unsigned polls = 0;
        while (!(in8(0x61) & 0x20))
            assert_true(++polls < 1000000);
    }
    out8(0x43, 0x34);
    out8(0x40, 0xa9);
    out8(0x40, 0x04);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2 + 1);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 2);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0x31);
    vm_platform_programmed(vm, v); /* what exit_mmio does after the write */
    uint64_t end = fake_time_ns + 30000000;
    while (fake_time_ns < end) {
        uint64_t next = __atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED);
        assert_int_not_equal(next, CLOCK_NEVER);
        fake_time_ns = MAX(fake_time_ns, next);
        before_entry();
        vlapic_mmio_write(&v->lapic, APIC_EOI, 4, 0);
    }
    assert_in_range(f->nintr, 28, 31); /* fewer than the 32 the fake backend records */
    assert_int_equal(f->intr[0], 0x31);
    assert_int_equal(pc->pit.irq_delivered, f->nintr);
}

/* The same IRQ 0 through the 8259 when the LAPIC is off: ExtINT, the vector from the
 * PIC's interrupt acknowledge. */
static void pit_irq0_through_the_pic(void **state)
{
    (void)state;
    out8(0x20, 0x11); /* ICW1: edge, cascade, ICW4 */
    out8(0x21, 0x20); /* ICW2: vectors 0x20-0x27 */
    out8(0x21, 0x04); /* ICW3 */
    out8(0x21, 0x01); /* ICW4: 8086 mode */
    out8(0x21, 0xfe); /* only IRQ 0 */
    out8(0x43, 0x34);
    out8(0x40, 0xa9);
    out8(0x40, 0x04);
    before_entry();
    uint64_t deadline = __atomic_load_n(&vm->pc.next_deadline, __ATOMIC_RELAXED);
    fake_time_ns = deadline;
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 1);
    assert_int_equal(f->intr[0], 0x20);
}

/* MOV to CR8 asks for a look before the entry only when the new TPR lets a waiting
 * vector through (the look costs a CR8 write about 300 Bochs ticks). */
static void cr8_write_looks_only_for_a_deliverable_vector(void **state)
{
    (void)state;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    struct exit_info to_cr8 = {.cr = {.cr = 8, .type = CR_MOV_TO, .gpr = 0}};
    v->arch.regs.rax = 0;
    v->arch.recheck = 0;
    take(VCPU_EXIT_CR, to_cr8, 4);
    assert_int_equal(v->arch.recheck, 0); /* nothing waiting */
    v->arch.regs.rax = 15;
    f->reg[VCPU_REG_RIP] = RIP0;
    take(VCPU_EXIT_CR, to_cr8, 4);
    struct apic_msg m = {.dest = 0, .vector = 0x50, .mode = APIC_DM_FIXED};
    assert_int_equal(apic_bus_send(&vm->pc.apic, &m, NULL), 1);
    v->arch.recheck = 0;
    v->arch.regs.rax = 6; /* class 6 still holds back vector 0x50 */
    f->reg[VCPU_REG_RIP] = RIP0;
    take(VCPU_EXIT_CR, to_cr8, 4);
    assert_int_equal(v->arch.recheck, 0);
    v->arch.regs.rax = 4; /* now it gets through */
    f->reg[VCPU_REG_RIP] = RIP0;
    take(VCPU_EXIT_CR, to_cr8, 4);
    assert_int_equal(v->arch.recheck, 1);
}

/* An access to a timer device's port asks for a look before the entry (its next event
 * may have moved), except a read of the PM timer's count, which moves nothing: the
 * look costs that read, which Linux makes often, about 700 Bochs ticks. */
static void timer_ports_look_when_an_event_may_move(void **state)
{
    (void)state;
    static const struct {
        uint16_t port;
        bool in, looks;
    } cases[] = {
        {ACPI_PM_BASE + ACPI_PM_TMR_OFF, true, false}, /* the PM timer's count */
        {ACPI_PM_BASE, true, true},                    /* PM1 status */
        {ACPI_PM_BASE + ACPI_PM_TMR_OFF, false, true}, /* a write, even to a read-only count */
        {0x71, true, true},                            /* the RTC's data (register C) */
        {0x43, false, true},                           /* the PIT's mode register */
        {0x20, true, true},                            /* the PIC (a poll acknowledges) */
        {0x4d0, true, false},                          /* the ELCR: no timer */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct exit_info io = {.io = {.port = cases[i].port, .size = 1, .in = cases[i].in}};
        v->arch.regs.rax = 0;
        v->arch.recheck = 0;
        f->reg[VCPU_REG_RIP] = RIP0;
        assert_int_equal(take(VCPU_EXIT_IO, io, 2), EXIT_RESUME);
        assert_int_equal(v->arch.recheck, cases[i].looks);
    }
}

/* An application processor: nothing runs until INIT and SIPI; then it starts at the
 * SIPI's page. */
static void ap_waits_for_init_sipi(void **state)
{
    (void)state;
    v->activity = VCPU_WAIT_SIPI;
    assert_int_equal(before_entry(), EXIT_YIELD);
    assert_false(vcpu_runnable(v, UINT64_MAX - 1));
    struct apic_msg init = {.dest = 0, .mode = APIC_DM_INIT, .level = true};
    assert_int_equal(apic_bus_send(&vm->pc.apic, &init, NULL), 1);
    assert_true(vcpu_runnable(v, 0)); /* the kick made it look */
    assert_int_equal(before_entry(), EXIT_YIELD);
    assert_int_equal(f->inits, 1);
    struct apic_msg sipi = {.dest = 0, .vector = 0x9a, .mode = APIC_DM_SIPI};
    assert_int_equal(apic_bus_send(&vm->pc.apic, &sipi, NULL), 1);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->sipi_vector, 0x9a);
    assert_int_equal(f->reg[VCPU_REG_CS_BASE], 0x9a000);
    assert_int_equal(v->activity, VCPU_ACTIVE);
}

static uint32_t io32(uint16_t port, bool in, uint32_t value)
{
    v->arch.regs.rax = value;
    f->reg[VCPU_REG_RIP] = RIP0;
    assert_int_equal(take(VCPU_EXIT_IO, (struct exit_info){.io = {.port = port, .size = 4, .in = in}}, 1), EXIT_RESUME);
    return (uint32_t)v->arch.regs.rax;
}

/* testdev = on puts QEMU's pc-testdev on the VM's bus next to the debug-exit port: its
 * scratch ports, its MMIO scratch page, and its interrupt lines, which reach the vCPU
 * through the IOAPIC (and IRQ n < 16 the PIC) as ISA IRQs do. Without it the ports are
 * unclaimed. */
static void testdev_only_when_asked_and_its_lines_interrupt(void **state)
{
    (void)state;
    struct vm_pc *pc = &vm->pc;
    assert_false(pc->has_testdev);
    assert_int_equal(io32(0xe0, true, 0), 0xffffffffu);
    assert_null(vm_bus_find(&vm->bus, BUS_MMIO, PC_TESTDEV_MMIO_BASE));

    static struct vm_config cfg = {.testdev = true};
    vm->cfg = &cfg;
    assert_true(vm_platform_restart(vm));
    assert_true(pc->has_testdev);
    io32(0xe0, false, 0x12345678);
    assert_int_equal(io32(0xe0, true, 0), 0x12345678);
    uint64_t val = 0xabcd;
    assert_int_equal(bus_action(vm_bus_access(&vm->bus, BUS_MMIO, PC_TESTDEV_MMIO_BASE + 0x100, 2, true, &val)),
                     BUS_DONE);
    val = 0;
    vm_bus_access(&vm->bus, BUS_MMIO, PC_TESTDEV_MMIO_BASE + 0x100, 2, false, &val);
    assert_int_equal(val & 0xffff, 0xabcd);
    assert_true(vm_bus_find(&vm->bus, BUS_PIO, DEBUG_EXIT_PORT) != NULL);

    /* Line 10, edge-triggered at IOAPIC pin 10 to vector 0x41 on APIC ID 0. */
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 10);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0x41);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 10 + 1);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 0);
    out8(0x2000 + 10, 1);
    assert_int_equal(v->arch.recheck, 1);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 1);
    assert_int_equal(f->intr[0], 0x41);
    out8(0x2000 + 10, 0);
    /* Line 20 is the IOAPIC's alone; masked, it interrupts nobody. */
    out8(0x2000 + 20, 1);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 1);
}

/* An NMI that arrives while NMIs are blocked (the guest is in its NMI handler, or an
 * event is being injected) waits for the NMI-window exit, not for a look before every
 * entry; the interrupt window (IF) has nothing to do with it. A CPU without NMI-window
 * exiting falls back to looking again at each entry. */
static void blocked_nmi_waits_for_the_nmi_window(void **state)
{
    (void)state;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    vlapic_mmio_write(&v->lapic, APIC_ICR_HI, 4, 0);
    vlapic_mmio_write(&v->lapic, APIC_ICR_LO, 4, 0x400); /* NMI to APIC ID 0: itself */
    assert_int_equal(v->arch.recheck, 1);
    v->arch.recheck = 0;
    f->blocked = true;
    assert_int_equal(fake.handlers[VCPU_EXIT_EVENTS](v, &(struct exit_info){0}), EXIT_RESUME);
    assert_true(v->nmi_pending);
    assert_int_equal(f->nmis, 0);
    assert_true(f->nmi_window);
    assert_false(f->window);
    assert_int_equal(v->arch.recheck, 0);

    /* The NMI-window exit (the backend sets recheck): the NMI goes in, the window closes. */
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nmis, 1);
    assert_false(v->nmi_pending);
    assert_false(f->nmi_window);

    fake.no_nmi_window = true;
    vlapic_mmio_write(&v->lapic, APIC_ICR_LO, 4, 0x400);
    v->arch.recheck = 0;
    f->blocked = true;
    assert_int_equal(fake.handlers[VCPU_EXIT_EVENTS](v, &(struct exit_info){0}), EXIT_RESUME);
    assert_int_equal(f->nmis, 1);
    assert_int_equal(v->arch.recheck, 1);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nmis, 2);
    assert_int_equal(v->arch.recheck, 0);
}

/* COM1 on IRQ 4 through the IOAPIC: a byte from the host (uart16550_receive, as an
 * attached console sends it) makes vCPU 0 poll the devices before its next entry; the
 * receive interrupt goes in, and the guest reads the byte. Its THRE interrupt comes
 * the same way. */
static void com1_interrupts_through_ioapic_pin_4(void **state)
{
    (void)state;
    struct vm_pc *pc = &vm->pc;
    vlapic_mmio_write(&v->lapic, APIC_SVR, 4, APIC_SVR_ENABLE | 0xff);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 4);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0x34);
    vioapic_write(&pc->ioapic, IOAPIC_IOREGSEL, 0x10 + 2 * 4 + 1);
    vioapic_write(&pc->ioapic, IOAPIC_IOWIN, 0);
    out8(0x3fc, 0x0b); /* DTR, RTS, OUT2 */
    out8(0x3f9, 0x01); /* ERBFI */
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 0);

    assert_true(uart16550_receive(&vm->com1, 'k'));
    assert_int_equal(v->arch.recheck, 1);
    assert_int_equal(__atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED), 0);
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 1);
    assert_int_equal(f->intr[0], 0x34);
    assert_true(__atomic_load_n(&pc->next_deadline, __ATOMIC_RELAXED) != 0);
    assert_int_equal(in8(0x3fa), 0x04);
    assert_int_equal(in8(0x3f8), 'k');
    assert_int_equal(in8(0x3fa), 0x01);
    vlapic_mmio_write(&v->lapic, APIC_EOI, 4, 0);

    out8(0x3f9, 0x02); /* ETBEI: THR is empty, so at once */
    assert_int_equal(before_entry(), EXIT_RESUME);
    assert_int_equal(f->nintr, 2);
    assert_int_equal(f->intr[1], 0x34);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(handlers_cover_every_exit), T(cpuid_and_hypercalls), T(stats_hypercall),     T(port_io_through_the_bus),
        T(string_io_stops),           T(cr0_paging_and_long_mode), T(cr8_through_rsp_and_cr4_limits),
        T(cr8_write_looks_only_for_a_deliverable_vector),
        T(timer_ports_look_when_an_event_may_move),
        T(msrs_in_backend_registers), T(hlt_xsetbv_and_undefined), T(memory_interrupt_and_fatal),
        T(pit_irq0_through_the_ioapic), T(pit_first_then_ioapic), T(pit_irq0_on_a_running_clock), T(pit_irq0_through_the_pic), T(ap_waits_for_init_sipi),
        T(testdev_only_when_asked_and_its_lines_interrupt), T(blocked_nmi_waits_for_the_nmi_window),
        T(com1_interrupts_through_ioapic_pin_4),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
