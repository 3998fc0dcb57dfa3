/* Fuzzes the hypercall handler (vmm/hypercall.c: exit_hypercall, reached through the
 * VMX backend's exit path) and the console path behind it (vmm/dev/console.c vmm/lib/console_buffer.c), against a
 * fake VMCS as tests/unit/test_exit_handlers.c does.
 * The fuzzer plays the guest: it picks the guest's mode and ring, the size and contents
 * of its RAM, and up to eight VMCALLs with every register the ABI reads.
 *
 * Input: byte 0: bits 1:0 the mode (64-bit, 32-bit protected, compatibility, real),
 * bits 3:2 the CPL, bit 4 a calibrated TSC, bit 5 a conforming code segment of DPL 0
 * (otherwise CS.DPL is the CPL, as in a non-conforming one); byte 1: RAM pages - 1 (mod 16); byte 2:
 * calls - 1 (mod 8); then per call RAX, RBX, RCX, RDX (8 bytes each, little-endian) and
 * the instruction length (1 byte); the rest is the start of guest RAM.
 *
 * Guest RAM is flush against an inaccessible page at its end, and the memory before it
 * is poisoned for ASan, so any access outside RAM crashes. After each call: RAM changed
 * only where a successful VM_INFO call wrote its structure, and holds the right values
 * there; no register but RAX changed; the result is one the ABI defines for the call
 * and the guest's mode (the function number all of RAX for a 64-bit guest, EAX
 * otherwise; success only for buffers wholly inside RAM, EPERM from ring > 0, EINVAL
 * for an unknown function, 32-bit results for 32-bit guests); the VM stopped only through EXIT with the
 * guest's code; RIP moved past the VMCALL unless the VM stopped; no exception was
 * injected; console lines appeared only for a successful console write.
 * SOURCES: vmm/hypercall.c vmm/vcpu.c vmm/dev/console.c vmm/lib/console_buffer.c arch/x86/vmx/vmx_guest.c arch/x86/vmx/vmx_exit.c arch/x86/vmx/vmx_exit_reasons.c arch/x86/vmx/vmcs_fields.c tests/common/fake_vmcs.c arch/x86/vmx/vmx_errors.c vmm/stats.c vmm/lib/histogram.c vmm/lib/string.c vmm/lib/printf.c tests/fuzz/console_sink.c
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <asm/prctl.h>
#include <sanitizer/asan_interface.h>

#include "arch/x86/cpu.h"
#include "arch/x86/msr.h"
#include "arch/x86/percpu.h"
#include "arch/x86/vmx/vmx_controls.h"
#include "arch/x86/tsc.h"
#include "tests/common/fake_vmcs.h"
#include "tests/fuzz/console_sink.h"
#include "vmm/exit_handlers.h"
#include "arch/x86/vmx/vmx_exit.h"
#include "arch/x86/vmx/vmx_guest.h"
#include "arch/x86/vmx/vmx_exit_reasons.h"
#include "vmm/vcpu.h"
#include "arch/x86/trap.h"
#include "vmm/hypercall_abi.h"

#define PAGE 4096u
#define RAM_MAX (16 * PAGE)
#define MAX_CALLS 8
#define CALL_BYTES 33
#define RIP0 0x1000ull
#define HOST_CPU 5
#define VM_ID 3
#define TSC_HZ 2400000000ull
#define FILL 0xcc

#define AR_CODE64 0xa09bu
#define AR_CODE32 0xc09bu
#define AR_DATA 0xc093u

/* ---- fake VMCS (tests/common/fake_vmcs.c) ---- */
#define vget fake_vmcs_get
#define vset fake_vmcs_set

void fake_vmcs_misuse(const char *what, uint32_t field)
{
    FUZZ_CHECK(0, "%s 0x%x", what, field);
}

/* ---- the rest of Keel, as far as a hypercall reaches ---- */
static int stops;

void vm_stop(struct vm *vm, const char *fmt, ...)
{
    (void)fmt;
    vm->state = VM_STOPPED;
    stops++;
}

void vm_stop_with_code(struct vm *vm, uint32_t code, const char *why)
{
    (void)why;
    FUZZ_CHECK(vm->state == VM_RUNNING, "a stopped VM stopped again");
    vm->has_exit_code = true;
    vm->exit_code = code;
    vm->state = VM_STOPPED;
    stops++;
}

static bool calibrated;
bool tsc_calibrated(void) { return calibrated; }
/* Only VMCALL exits happen here. */
void trap_dispatch(struct trap_frame *f) { (void)f; abort(); }
uint64_t ept_leaf_entry(const struct ept *ept, gpa_t gpa, uint64_t *page_size)
{
    (void)ept, (void)gpa, (void)page_size;
    abort();
}
static const vcpu_exit_fn only_hypercalls[VCPU_EXIT_COUNT] = {[VCPU_EXIT_HYPERCALL] = exit_hypercall};
uint64_t tsc_hz(void) { return TSC_HZ; }

static struct percpu cpu_block;
static struct vm vm_block;
static struct vcpu vcpu_block;
static uint8_t *area;      /* RAM_MAX bytes, then a PROT_NONE page */
static uint8_t before[RAM_MAX];

/* The STATS hypercall names exit reasons through the backend. */
static const struct vcpu_backend fuzz_backend = {.name = "fuzz", .exit_reason_name = exit_reason_name};

static void setup(void)
{
    vcpu_backend = &fuzz_backend;
    uint8_t *m = mmap(NULL, PAGE + RAM_MAX + PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    FUZZ_CHECK(m != MAP_FAILED, "cannot map guest RAM");
    area = m + PAGE;
    FUZZ_CHECK(mprotect(area, RAM_MAX, PROT_READ | PROT_WRITE) == 0, "mprotect");
    cpu_block.self = &cpu_block;
    cpu_block.cpu_id = HOST_CPU;
    vmx_exit_init(only_hypercalls, &keel_hypercalls);
    FUZZ_CHECK(syscall(SYS_arch_prctl, ARCH_SET_GS, &cpu_block) == 0, "arch_prctl");
}

static void set_mode(unsigned mode, unsigned cpl, bool conforming)
{
    fake_vmcs_reset();
    switch (mode) {
    case 0: /* 64-bit */
        vset(VMCS_ENTRY_CONTROLS, VMX_ENTRY_CTL_IA32E_MODE_GUEST);
        vset(VMCS_GUEST_CS_ACCESS_RIGHTS, AR_CODE64);
        vset(VMCS_GUEST_IA32_EFER, EFER_LME | EFER_LMA);
        vset(VMCS_GUEST_CR0, CR0_PG | CR0_PE);
        break;
    case 1: /* 32-bit protected mode */
        vset(VMCS_GUEST_CS_ACCESS_RIGHTS, AR_CODE32);
        vset(VMCS_GUEST_CR0, CR0_PE);
        break;
    case 2: /* compatibility mode: IA-32e, CS.L clear */
        vset(VMCS_ENTRY_CONTROLS, VMX_ENTRY_CTL_IA32E_MODE_GUEST);
        vset(VMCS_GUEST_CS_ACCESS_RIGHTS, AR_CODE32);
        vset(VMCS_GUEST_IA32_EFER, EFER_LME | EFER_LMA);
        vset(VMCS_GUEST_CR0, CR0_PG | CR0_PE);
        break;
    default: /* real mode (unrestricted guest) */
        vset(VMCS_GUEST_CS_ACCESS_RIGHTS, 0x93);
        break;
    }
    vset(VMCS_GUEST_SS_ACCESS_RIGHTS, AR_DATA | (cpl << 5));
    uint64_t cs = fake_vmcs_get(VMCS_GUEST_CS_ACCESS_RIGHTS);
    vset(VMCS_GUEST_CS_ACCESS_RIGHTS, conforming ? cs | 0x4 : cs | (cpl << 5));
    vset(VMCS_GUEST_RFLAGS, 0x2);
}

static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* [gpa, gpa + len) wholly inside RAM. */
static bool in_ram(uint64_t gpa, uint64_t len, uint64_t size)
{
    return gpa < size && len <= size - gpa;
}

static void check_vm_info(const uint8_t *ram, uint64_t gpa, uint64_t ram_size)
{
    struct keel_vm_info info;
    memcpy(&info, ram + gpa, sizeof info);
    FUZZ_CHECK(info.abi_version == KEEL_ABI_VERSION && info.vm_id == VM_ID && info.vcpu_id == 0 &&
                   info.host_cpu == HOST_CPU && info.memory_bytes == ram_size &&
                   info.tsc_hz == (calibrated ? TSC_HZ : 0),
               "VM_INFO wrote wrong values");
    FUZZ_CHECK(strncmp(info.name, vm_block.name, sizeof info.name) == 0 && info.name[sizeof info.name - 1] == 0,
               "VM_INFO name");
}

/* One VMCALL and every check on its outcome. */
static void one_call(const uint8_t *c, unsigned mode, unsigned cpl, uint64_t ram_size)
{
    struct vcpu *v = &vcpu_block;
    struct vm *vm = &vm_block;
    uint8_t *ram = vm->mem.hva;
    v->arch.regs.rax = rd64(c);
    v->arch.regs.rbx = rd64(c + 8);
    v->arch.regs.rcx = rd64(c + 16);
    v->arch.regs.rdx = rd64(c + 24);
    uint32_t len = c[32];
    const struct guest_regs regs = v->arch.regs;
    bool wide = mode == 0;
    uint64_t a1 = wide ? regs.rbx : (uint32_t)regs.rbx;
    uint64_t a2 = wide ? regs.rcx : (uint32_t)regs.rcx;
    /* The function number is all of RAX for a 64-bit guest, EAX otherwise. */
    uint64_t fn = wide ? regs.rax : (uint32_t)regs.rax;

    vset(VMCS_EXIT_REASON, EXIT_REASON_VMCALL);
    vset(VMCS_EXIT_INSTRUCTION_LENGTH, len);
    vset(VMCS_GUEST_RIP, RIP0);
    vset(VMCS_ENTRY_INTR_INFO, 0);
    memcpy(before, ram, ram_size);
    unsigned lines0 = sink_lines();
    uint32_t uart0 = vm->console.len;

    enum exit_action act = vmx_handle_exit(v);

    FUZZ_CHECK(vget(VMCS_ENTRY_INTR_INFO) == 0, "a hypercall injected an event");
    struct guest_regs now = v->arch.regs;
    now.rax = regs.rax;
    FUZZ_CHECK(memcmp(&now, &regs, sizeof now) == 0, "a hypercall changed a register other than RAX");
    FUZZ_CHECK(vm->console.len <= VM_CONSOLE_LINE_MAX, "console line length %u", vm->console.len);

    if (act == EXIT_STOPPED) {
        FUZZ_CHECK(cpl == 0 && fn == KEEL_HC_EXIT, "the VM stopped on function 0x%lx from ring %u",
                   (unsigned long)regs.rax, cpl);
        FUZZ_CHECK(vm->state == VM_STOPPED && vm->has_exit_code && vm->exit_code == (uint32_t)regs.rbx,
                   "EXIT stopped the VM without the guest's code");
        FUZZ_CHECK(memcmp(before, ram, ram_size) == 0, "EXIT changed guest RAM");
        return;
    }
    FUZZ_CHECK(vm->state == VM_RUNNING && stops == 0, "the VM stopped, yet the handler returned %d", act);
    FUZZ_CHECK(vget(VMCS_GUEST_RIP) == RIP0 + len, "RIP 0x%lx after a VMCALL of %u bytes",
               (unsigned long)vget(VMCS_GUEST_RIP), len);
    FUZZ_CHECK(act == EXIT_RESUME || act == EXIT_YIELD, "handler returned %d", act);
    if (act == EXIT_YIELD) {
        FUZZ_CHECK(cpl == 0 && fn == KEEL_HC_YIELD && v->arch.regs.rax == 0, "YIELD for function 0x%lx from ring %u",
                   (unsigned long)regs.rax, cpl);
        FUZZ_CHECK(memcmp(before, ram, ram_size) == 0, "YIELD changed guest RAM");
        return;
    }

    uint64_t rax = v->arch.regs.rax;
    FUZZ_CHECK(wide || rax >> 32 == 0, "a 32-bit guest got RAX 0x%lx", (unsigned long)rax);
    int64_t ret = wide ? (int64_t)rax : (int32_t)rax;
    if (ret < 0)
        FUZZ_CHECK(ret == -(int64_t)KEEL_EINVAL || ret == -(int64_t)KEEL_EFAULT || ret == -(int64_t)KEEL_EPERM,
                   "undocumented error %ld", (long)ret);
    if (cpl != 0)
        FUZZ_CHECK(ret == -(int64_t)KEEL_EPERM, "ring %u got %ld, not EPERM", cpl, (long)ret);
    else
        FUZZ_CHECK(ret != -(int64_t)KEEL_EPERM, "ring 0 got EPERM");
    if (cpl == 0 && fn != KEEL_HC_CONSOLE_WRITE && fn != KEEL_HC_VM_INFO && fn != KEEL_HC_STATS)
        FUZZ_CHECK(ret == -(int64_t)KEEL_EINVAL, "unknown function 0x%lx returned %ld, not EINVAL",
                   (unsigned long)fn, (long)ret);

    bool vm_info_ok = fn == KEEL_HC_VM_INFO && ret == 0;
    if (vm_info_ok) {
        FUZZ_CHECK(cpl == 0 && a2 >= sizeof(struct keel_vm_info) && in_ram(a1, sizeof(struct keel_vm_info), ram_size),
                   "VM_INFO succeeded for a buffer of 0x%lx bytes at 0x%lx", (unsigned long)a2, (unsigned long)a1);
        check_vm_info(ram, a1, ram_size);
        FUZZ_CHECK(memcmp(before, ram, a1) == 0 &&
                       memcmp(before + a1 + sizeof(struct keel_vm_info), ram + a1 + sizeof(struct keel_vm_info),
                              ram_size - a1 - sizeof(struct keel_vm_info)) == 0,
                   "VM_INFO wrote outside its structure");
    } else {
        FUZZ_CHECK(memcmp(before, ram, ram_size) == 0, "function 0x%lx (result %ld) changed guest RAM",
                   (unsigned long)regs.rax, (long)ret);
    }
    if (fn == KEEL_HC_VM_INFO && ret == -(int64_t)KEEL_EFAULT)
        FUZZ_CHECK(!in_ram(a1, sizeof(struct keel_vm_info), ram_size), "VM_INFO refused a buffer inside RAM");

    bool wrote = fn == KEEL_HC_CONSOLE_WRITE && ret > 0;
    if (fn == KEEL_HC_CONSOLE_WRITE && ret >= 0)
        FUZZ_CHECK(cpl == 0 && (uint64_t)ret == a2 && a2 <= KEEL_CONSOLE_MAX && in_ram(a1, a2, ram_size),
                   "CONSOLE_WRITE returned %ld for %lu bytes at 0x%lx", (long)ret, (unsigned long)a2,
                   (unsigned long)a1);
    if (fn == KEEL_HC_CONSOLE_WRITE && ret == -(int64_t)KEEL_EFAULT)
        FUZZ_CHECK(a2 <= KEEL_CONSOLE_MAX && !in_ram(a1, a2, ram_size), "CONSOLE_WRITE refused a buffer inside RAM");
    /* STATS prints the VM's statistics dump (KEEL-STATS lines) when it succeeds. */
    bool dumped = fn == KEEL_HC_STATS && ret > 0;
    if (!wrote && !dumped)
        FUZZ_CHECK(sink_lines() == lines0 && vm->console.len == uart0, "console output from function 0x%lx (result %ld)",
                   (unsigned long)regs.rax, (long)ret);
    if (ret > 0)
        FUZZ_CHECK(wrote || dumped, "function 0x%lx returned %ld", (unsigned long)regs.rax, (long)ret);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!area)
        setup();
    if (size < 3)
        return 0;
    sink_reset();
    unsigned mode = data[0] & 3, cpl = data[0] >> 2 & 3;
    calibrated = data[0] & 16;
    uint64_t ram_size = (1 + data[1] % 16) * (uint64_t)PAGE;
    unsigned calls = 1 + data[2] % MAX_CALLS;
    size_t pos = 3;

    struct vm *vm = &vm_block;
    struct vcpu *v = &vcpu_block;
    memset(vm, 0, sizeof *vm);
    memset(v, 0, sizeof *v);
    vm->id = VM_ID;
    memcpy(vm->name, "fuzzvm", 7);
    vm_console_init(&vm->console, vm->name);
    vm->state = VM_RUNNING;
    vm->vcpus[0] = v;
    vm->vcpu_count = 1;
    vm->mem.hva = area + RAM_MAX - ram_size;
    vm->ram_size = ram_size;
    vm->mem.size = ram_size;
    v->vm = vm;
    stops = 0;
    set_mode(mode, cpl, data[0] & 32);
    ASAN_POISON_MEMORY_REGION(area, RAM_MAX - ram_size);

    size_t call_bytes = MIN((size_t)calls * CALL_BYTES, size - pos);
    calls = (unsigned)(call_bytes / CALL_BYTES);
    const uint8_t *c = data + pos;
    pos += (size_t)calls * CALL_BYTES;
    memset(vm->mem.hva, FILL, ram_size);
    memcpy(vm->mem.hva, data + pos, MIN(size - pos, ram_size));

    for (unsigned i = 0; i < calls && vm->state == VM_RUNNING; i++)
        one_call(c + (size_t)i * CALL_BYTES, mode, cpl, ram_size);
    vm_console_flush(&vm->console);

    ASAN_UNPOISON_MEMORY_REGION(area, RAM_MAX - ram_size);
    return 0;
}
