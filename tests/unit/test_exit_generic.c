/* The generic exit handlers over the fake CPU backend (tests/common/fake_backend.h):
 * the same decoded exits a VMX (or SVM) backend hands over, with guest state in plain
 * memory. Shows the handlers keep to the seam: they reach registers, CR0/CR4/EFER,
 * CPL and exception injection only through the backend, and tell it how the guest goes
 * on. The VMX side of the same exits is tests/unit/test_exit_handlers.c.
 * GS points at a fake per-CPU block (arch_prctl), so the real this_cpu() works. */
/* SOURCES: vmm/exit_handlers.c vmm/vcpu.c vmm/exit_cpuid.c vmm/hypercall.c vmm/exit_io.c vmm/exit_msr.c vmm/exit_cr.c vmm/exit_instructions.c vmm/exit_events.c vmm/exit_mmio.c vmm/vcpu_events.c arch/x86/guest_walk.c arch/x86/insn_decode.c arch/x86/insn_emulate.c tests/common/fake_backend.c arch/x86/exit_kinds.c vmm/dev/bus.c vmm/dev/console.c vmm/dev/uart16550.c vmm/dev/debug_exit.c vmm/dev/platform.c vmm/dev/apic_bus.c vmm/dev/vlapic.c vmm/dev/vioapic.c vmm/dev/pic8259.c vmm/dev/pit8254.c vmm/dev/rtc_cmos.c vmm/dev/acpi_pm.c vmm/dev/fw_cfg.c vmm/dev/pci_host.c vmm/lib/time_math.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
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

#include "vmm/exit_handlers.h"
#include "vmm/hypercall_abi.h"
#include "vmm/dev/platform.h"
#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/percpu.h"
#include "arch/x86/tsc.h"
#include "tests/common/fake_backend.h"
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
bool tsc_calibrated(void) { return true; }
uint64_t tsc_hz(void) { return 1000000000ull; }
void host_test_cpuid(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d)
{
    *b = *c = *d = 0;
    *a = 0x16;
}
/* VM time for the platform's devices: the tests move it by hand. */
static uint64_t fake_time_ns;
uint64_t time_ns(void) { return fake_time_ns; }
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
    vm->ram = calloc(1, RAM_SIZE);
    vm->ram_size = RAM_SIZE;
    strcpy(vm->name, "fake");
    assert_true(vm_platform_attach(vm));
    vm->state = VM_RUNNING;
    vm->vcpus[0] = v;
    vm->vcpu_count = 1;
    v->vm = vm;
    f = fake_vcpu(v);
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
    free(vm->ram);
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
    /* A stop from another CPU shows at the next interrupt exit. */
    vm->state = VM_STOPPED;
    assert_int_equal(take(VCPU_EXIT_INTERRUPT, (struct exit_info){.why = NULL}, 0), EXIT_STOPPED);
    vm->state = VM_RUNNING;
    assert_int_equal(take(VCPU_EXIT_FATAL, (struct exit_info){.why = "triple fault at rip 0x2000"}, 0), EXIT_STOPPED);
    assert_string_equal(vm->stop_reason, "triple fault at rip 0x2000");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(handlers_cover_every_exit), T(cpuid_and_hypercalls),     T(port_io_through_the_bus),
        T(string_io_stops),           T(cr0_paging_and_long_mode), T(cr8_through_rsp_and_cr4_limits),
        T(msrs_in_backend_registers), T(hlt_xsetbv_and_undefined), T(memory_interrupt_and_fatal),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
