/* The VM-exit reason list: the VMX dispatcher's table built from it has a handler in
 * every slot, each reason goes where the SDM number says (a generic handler or a VMX
 * decoder), and every number (known or not) gets a printable name and a kind. */
/* SOURCES: arch/x86/vmx/vmx_exit_reasons.c arch/x86/vmx/vmx_exit.c arch/x86/vmx/vmx_guest.c arch/x86/exit_kinds.c arch/x86/vmx/vmcs_fields.c tests/common/fake_vmcs.c arch/x86/vmx/vmx_errors.c vmm/lib/string.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arch/x86/vmx/vmx_exit.h"
#include "arch/x86/trap.h"
#include "tests/common/fake_vmcs.h"

/* What vmx_exit.c calls besides the table; only the VMCALL test takes an exit, into a
 * stub. */
void fake_vmcs_misuse(const char *what, uint32_t field) { fail_msg("%s 0x%x", what, field); }
void trap_dispatch(struct trap_frame *f) { (void)f; fail(); }
uint64_t ept_leaf_entry(const struct ept *ept, gpa_t gpa, uint64_t *page_size)
{
    (void)ept, (void)gpa, (void)page_size;
    fail();
    return 0;
}

/* Stand-ins for the generic handlers, one per enum vcpu_exit, each with its own body
 * so none can be merged with another. */
#define GENERIC_STUB(id, name) \
    static enum exit_action stub_##name(struct vcpu *v, struct exit_info *e) \
    {                                                                        \
        (void)v, (void)e;                                                    \
        return (enum exit_action)(100 + VCPU_EXIT_##id);                     \
    }
VCPU_EXITS(GENERIC_STUB)
#undef GENERIC_STUB

static const vcpu_exit_fn generic[VCPU_EXIT_COUNT] = {
#define GENERIC_ENTRY(id, name) [VCPU_EXIT_##id] = stub_##name,
    VCPU_EXITS(GENERIC_ENTRY)
#undef GENERIC_ENTRY
};

/* Every function a slot can hold, by the name a reader looks for. */
static const struct {
    vcpu_exit_fn fn;
    const char *name;
} known[] = {
#define GENERIC_NAME(id, name) {stub_##name, "exit_" #name},
    VCPU_EXITS(GENERIC_NAME)
#undef GENERIC_NAME
#define VMX_NAME(fn) {fn, #fn}
    VMX_NAME(vmx_exit_exception_nmi), VMX_NAME(vmx_exit_external_interrupt), VMX_NAME(vmx_exit_triple_fault),
    VMX_NAME(vmx_exit_vmcall),        VMX_NAME(vmx_exit_cr_access),          VMX_NAME(vmx_exit_io),
    VMX_NAME(vmx_exit_entry_failure), VMX_NAME(vmx_exit_ept_violation),      VMX_NAME(vmx_exit_ept_misconfig),
    VMX_NAME(vmx_exit_unexpected),    VMX_NAME(vmx_exit_interrupt_window), VMX_NAME(vmx_exit_nmi_window),
#undef VMX_NAME
};

static int setup(void **state)
{
    (void)state;
    vmx_exit_init(generic, NULL);
    return 0;
}

static const char *handler_of(uint32_t reason)
{
    for (size_t i = 0; i < ARRAY_SIZE(known); i++)
        if (known[i].fn == vmx_exit_table.fn[reason])
            return known[i].name;
    return NULL;
}

static void table_is_dense_and_complete(void **state)
{
    (void)state;
    assert_int_equal(ARRAY_SIZE(vmx_exit_table.fn), VMX_EXIT_REASON_COUNT);
    assert_int_equal(VMX_EXIT_REASON_MAX, 77);
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        assert_non_null(vmx_exit_table.fn[r]);
        assert_non_null(handler_of(r));
    }
}

static void specific_handlers_sit_at_sdm_numbers(void **state)
{
    (void)state;
    const char *expect[VMX_EXIT_REASON_COUNT];
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
        expect[i] = "vmx_exit_unexpected";
    expect[0] = "vmx_exit_exception_nmi";
    expect[1] = "vmx_exit_external_interrupt";
    expect[2] = "vmx_exit_triple_fault";
    expect[10] = "exit_cpuid";
    expect[12] = "exit_hlt";
    expect[13] = "exit_wbinvd";
    expect[15] = "exit_rdpmc";
    expect[18] = "vmx_exit_vmcall";
    for (int r = 19; r <= 27; r++)
        expect[r] = "exit_undefined";
    expect[50] = expect[53] = expect[59] = "exit_undefined";
    expect[36] = expect[39] = "exit_undefined";
    expect[28] = "vmx_exit_cr_access";
    expect[30] = "vmx_exit_io";
    expect[31] = "exit_rdmsr";
    expect[32] = "exit_wrmsr";
    expect[33] = expect[34] = expect[41] = "vmx_exit_entry_failure";
    expect[48] = "vmx_exit_ept_violation";
    expect[49] = "vmx_exit_ept_misconfig";
    expect[7] = "vmx_exit_interrupt_window";
    expect[8] = "vmx_exit_nmi_window";
    expect[52] = "exit_timer";
    expect[40] = "exit_pause";
    expect[54] = "exit_wbinvd";
    expect[55] = "exit_xsetbv";
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        const char *got = handler_of(r);
        if (!got || strcmp(got, expect[r]) != 0)
            fail_msg("exit reason %u (%s) goes to %s, expected %s", r, exit_reason_name(r), got, expect[r]);
    }
}

static void qualification_flags(void **state)
{
    (void)state;
    static const uint32_t with[] = {EXIT_REASON_EXCEPTION_NMI, EXIT_REASON_CR_ACCESS, EXIT_REASON_DR_ACCESS,
                                    EXIT_REASON_IO_INSTRUCTION, EXIT_REASON_EPT_VIOLATION, EXIT_REASON_TASK_SWITCH,
                                    EXIT_REASON_ENTRY_INVALID_GUEST_STATE, EXIT_REASON_INVLPG, EXIT_REASON_VMCLEAR,
                                    EXIT_REASON_APIC_ACCESS, EXIT_REASON_INVEPT, EXIT_REASON_INVVPID};
    static const uint32_t without[] = {EXIT_REASON_EXTERNAL_INTERRUPT, EXIT_REASON_CPUID, EXIT_REASON_HLT,
                                       EXIT_REASON_RDMSR, EXIT_REASON_WRMSR, EXIT_REASON_EPT_MISCONFIG,
                                       EXIT_REASON_PREEMPTION_TIMER, EXIT_REASON_VMCALL, EXIT_REASON_XSETBV,
                                       EXIT_REASON_VMLAUNCH, EXIT_REASON_ENTRY_MACHINE_CHECK, EXIT_REASON_UNUSED_35};
    for (size_t i = 0; i < ARRAY_SIZE(with); i++)
        assert_true(vmx_exit_table.needs_qualification[with[i]]);
    for (size_t i = 0; i < ARRAY_SIZE(without); i++)
        assert_false(vmx_exit_table.needs_qualification[without[i]]);
}

static void numbers_match_the_sdm(void **state)
{
    (void)state;
    assert_int_equal(EXIT_REASON_EXCEPTION_NMI, 0);
    assert_int_equal(EXIT_REASON_TRIPLE_FAULT, 2);
    assert_int_equal(EXIT_REASON_CPUID, 10);
    assert_int_equal(EXIT_REASON_HLT, 12);
    assert_int_equal(EXIT_REASON_VMCALL, 18);
    assert_int_equal(EXIT_REASON_CR_ACCESS, 28);
    assert_int_equal(EXIT_REASON_IO_INSTRUCTION, 30);
    assert_int_equal(EXIT_REASON_ENTRY_INVALID_GUEST_STATE, 33);
    assert_int_equal(EXIT_REASON_EPT_VIOLATION, 48);
    assert_int_equal(EXIT_REASON_EPT_MISCONFIG, 49);
    assert_int_equal(EXIT_REASON_PREEMPTION_TIMER, 52);
    assert_int_equal(EXIT_REASON_XSETBV, 55);
    assert_int_equal(EXIT_REASON_XRSTORS, 64);
    assert_int_equal(EXIT_REASON_BUS_LOCK, 74);
    assert_int_equal(EXIT_REASON_TDCALL, 77);
}

static void numbers_unique_and_in_order(void **state)
{
    (void)state;
    static const uint32_t numbers[] = {
#define NUMBER(num, name, desc, kind, handler, needs_qual) num,
        VMX_EXIT_REASONS(NUMBER)
#undef NUMBER
    };
    assert_int_equal(ARRAY_SIZE(numbers), VMX_EXIT_REASON_COUNT);
    for (size_t i = 0; i < ARRAY_SIZE(numbers); i++)
        assert_int_equal(numbers[i], i);
}

static void names_and_descriptions_unique(void **state)
{
    (void)state;
    for (uint32_t a = 0; a <= VMX_EXIT_REASON_MAX; a++) {
        const char *na = exit_reason_name(a), *da = exit_reason_description(a);
        assert_true(strlen(na) > 0 && strcmp(na, "UNKNOWN") != 0);
        assert_true(strlen(da) > 0 && strcmp(da, "Unknown exit reason") != 0);
        for (uint32_t b = a + 1; b <= VMX_EXIT_REASON_MAX; b++) {
            assert_string_not_equal(na, exit_reason_name(b));
            assert_string_not_equal(da, exit_reason_description(b));
        }
    }
    assert_string_equal(exit_reason_name(EXIT_REASON_CPUID), "CPUID");
    assert_string_equal(exit_reason_name(48), "EPT_VIOLATION");
    assert_string_equal(exit_reason_description(48), "EPT violation");
    assert_string_equal(exit_reason_description(52), "VMX-preemption timer expired");
    assert_string_equal(exit_reason_name(35), "UNUSED_35");
}

static void raw_field_and_unknown_numbers(void **state)
{
    (void)state;
    /* A failed VM entry reports 0x80000021: the flag does not hide the reason. */
    assert_string_equal(exit_reason_name(EXIT_REASON_ENTRY_FAILURE | 33), "ENTRY_INVALID_GUEST_STATE");
    assert_string_equal(exit_reason_description(EXIT_REASON_ENTRY_FAILURE | 34), "VM-entry failure due to MSR loading");
    assert_string_equal(exit_reason_name(EXIT_REASON_PENDING_MTF | 1), "EXTERNAL_INTERRUPT");
    assert_int_equal(EXIT_REASON_BASIC(0x80000021u), 33);

    static const uint32_t unknown[] = {78, 79, 0xffff, 0x10000 /* bit 16 is always 0 */, 0x10000 | 10,
                                       BIT(30) | 10, 0xffffffffu};
    for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
        assert_string_equal(exit_reason_name(unknown[i]), "UNKNOWN");
        assert_string_equal(exit_reason_description(unknown[i]), "Unknown exit reason");
    }
}

/* Every reason that has a handler of its own has a kind that says what it is; the
 * shared handlers imply the kind, so the two tables cannot drift apart. */
/* A backend given no hypercall table (vmx_exit_init's NULL) hands a VMCALL from CPL 0
 * to the HYPERCALL handler, as it does one from CPL 3. */
static void vmcall_without_hypercall_table(void **state)
{
    (void)state;
    static struct vcpu_arch arch;
    struct vcpu *v = (struct vcpu *)(void *)&arch;
    for (uint32_t dpl = 0; dpl <= 3; dpl += 3) {
        fake_vmcs_reset();
        fake_vmcs_set(VMCS_EXIT_REASON, EXIT_REASON_VMCALL);
        fake_vmcs_set(VMCS_GUEST_SS_ACCESS_RIGHTS, 0xc093 | dpl << 5);
        fake_vmcs_set(VMCS_GUEST_CS_ACCESS_RIGHTS, 0xc09b | dpl << 5);
        arch.regs.rax = 2;
        struct latency *spent_on = NULL;
        assert_int_equal(vmx_dispatch_exit(v, &spent_on), 100 + VCPU_EXIT_HYPERCALL);
        assert_ptr_equal(spent_on, &arch.latency.exit[EXIT_REASON_VMCALL]);
    }
    assert_int_equal(arch.stats.exits[EXIT_REASON_VMCALL], 2);
}

/* With a table, the run loop calls the slot itself, and the exit is counted before the
 * call (the EXIT hypercall stops the VM and prints its report from inside it). */
static uint64_t counted_at_call;
static enum exit_action probe_narrow(struct vcpu *v)
{
    counted_at_call = vcpu_arch(v)->stats.exits[EXIT_REASON_VMCALL];
    return EXIT_STOPPED;
}

static enum exit_action probe_wide(struct vcpu *v)
{
    counted_at_call = vcpu_arch(v)->stats.exits[EXIT_REASON_VMCALL];
    return EXIT_YIELD;
}

/* One VMCALL exit with the given segments and mode; what the dispatch answered. */
static enum exit_action vmcall_from(struct vcpu_arch *arch, uint32_t ss_ar, uint32_t cs_ar, bool ia32e,
                                    uint64_t rax)
{
    fake_vmcs_reset();
    fake_vmcs_set(VMCS_EXIT_REASON, EXIT_REASON_VMCALL);
    fake_vmcs_set(VMCS_GUEST_SS_ACCESS_RIGHTS, ss_ar);
    fake_vmcs_set(VMCS_GUEST_CS_ACCESS_RIGHTS, cs_ar);
    fake_vmcs_set(VMCS_ENTRY_CONTROLS, ia32e ? VMX_ENTRY_CTL_IA32E_MODE_GUEST : 0);
    arch->regs.rax = rax;
    struct latency *spent_on = NULL;
    enum exit_action act = vmx_dispatch_exit((struct vcpu *)(void *)arch, &spent_on);
    assert_ptr_equal(spent_on, &arch->latency.exit[EXIT_REASON_VMCALL]);
    return act;
}

static void vmcall_through_hypercall_table(void **state)
{
    (void)state;
    struct vcpu_hypercalls table;
    for (unsigned i = 0; i < VCPU_HYPERCALL_SLOTS; i++) {
        table.narrow[i] = probe_narrow;
        table.wide[i] = probe_wide;
    }
    vmx_exit_init(generic, &table);
    static struct vcpu_arch arch;
    /* 32-bit code (CS.D): EAX alone is the number. */
    assert_int_equal(vmcall_from(&arch, 0xc093, 0xc09b, false, 0xabcd000000000004ull), EXIT_STOPPED);
    assert_int_equal(counted_at_call, 1);
    /* CS.L outside IA-32e mode is still 32-bit code. */
    assert_int_equal(vmcall_from(&arch, 0xc093, 0xa09b, false, 4), EXIT_STOPPED);
    /* 64-bit code: the wide table, and the whole of RAX is the number. */
    assert_int_equal(vmcall_from(&arch, 0x0093, 0xa09b, true, 4), EXIT_YIELD);
    assert_int_equal(counted_at_call, 3);
    assert_int_equal(vmcall_from(&arch, 0x0093, 0xa09b, true, 0x100000004ull), 100 + VCPU_EXIT_HYPERCALL);
    /* Real mode's CS (type 3, DPL 0) is CPL 0. */
    assert_int_equal(vmcall_from(&arch, 0x0093, 0x0093, false, 4), EXIT_STOPPED);
    /* A number past the slots goes to the HYPERCALL handler (the stub here). */
    assert_int_equal(vmcall_from(&arch, 0xc093, 0xc09b, false, VCPU_HYPERCALL_SLOTS), 100 + VCPU_EXIT_HYPERCALL);
    /* CPL 3 in a non-conforming segment, and a conforming segment of DPL 0 (whose CPL
     * may be 3: only SS says): both go to the handler, which reads SS. */
    assert_int_equal(vmcall_from(&arch, 0xc0f3, 0xc0fb, false, 4), 100 + VCPU_EXIT_HYPERCALL);
    assert_int_equal(vmcall_from(&arch, 0xc0f3, 0xc09f, false, 4), 100 + VCPU_EXIT_HYPERCALL);
    assert_int_equal(vmcall_from(&arch, 0x0093, 0xa09f, true, 4), 100 + VCPU_EXIT_HYPERCALL);
    assert_int_equal(counted_at_call, 5); /* the real-mode call was the last */
    assert_int_equal(arch.stats.exits[EXIT_REASON_VMCALL], 9);
    vmx_exit_init(generic, NULL);
}

static void kinds_follow_the_handlers(void **state)
{
    (void)state;
    static const struct {
        const char *handler;
        enum exit_kind kind;
    } by_handler[] = {
        {"exit_cpuid", EXIT_KIND_CPUID},        {"vmx_exit_io", EXIT_KIND_IO},
        {"exit_rdmsr", EXIT_KIND_MSR_READ},     {"exit_wrmsr", EXIT_KIND_MSR_WRITE},
        {"vmx_exit_vmcall", EXIT_KIND_HYPERCALL},   {"exit_hlt", EXIT_KIND_HLT},
        {"vmx_exit_cr_access", EXIT_KIND_CR_ACCESS}, {"exit_xsetbv", EXIT_KIND_XSETBV},
        {"exit_undefined", EXIT_KIND_PRIVILEGED}, {"exit_undefined", EXIT_KIND_PRIVILEGED},
        {"exit_wbinvd", EXIT_KIND_PRIVILEGED},    {"exit_wbinvd", EXIT_KIND_PRIVILEGED},
        {"exit_rdpmc", EXIT_KIND_PRIVILEGED},   {"vmx_exit_ept_violation", EXIT_KIND_MEMORY},
        {"vmx_exit_ept_misconfig", EXIT_KIND_MEMORY}, {"vmx_exit_external_interrupt", EXIT_KIND_INTERRUPT},
        {"exit_timer", EXIT_KIND_TIMER}, {"vmx_exit_interrupt_window", EXIT_KIND_INTERRUPT}, {"vmx_exit_nmi_window", EXIT_KIND_INTERRUPT}, {"vmx_exit_triple_fault", EXIT_KIND_FAULT},
        {"vmx_exit_exception_nmi", EXIT_KIND_FAULT}, {"vmx_exit_entry_failure", EXIT_KIND_ENTRY_FAILURE},
        {"vmx_exit_unexpected", EXIT_KIND_OTHER}, {"exit_pause", EXIT_KIND_PAUSE},
    };
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        const char *h = handler_of(r);
        assert_non_null(h);
        size_t i = 0;
        while (i < ARRAY_SIZE(by_handler) && strcmp(by_handler[i].handler, h) != 0)
            i++;
        if (i == ARRAY_SIZE(by_handler))
            fail_msg("exit reason %u goes to %s, which has no kind in this test", r, h);
        if (exit_reason_kind(r) != by_handler[i].kind)
            fail_msg("exit reason %u (%s, %s) has kind %s, expected %s", r, exit_reason_name(r), h,
                     exit_kind_name(exit_reason_kind(r)), exit_kind_name(by_handler[i].kind));
    }
    /* Flag bits do not change the kind; an unknown reason is "other". */
    assert_int_equal(exit_reason_kind(EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_ENTRY_INVALID_GUEST_STATE),
                     EXIT_KIND_ENTRY_FAILURE);
    assert_int_equal(exit_reason_kind(0x1234), EXIT_KIND_OTHER);
    for (int k = 0; k < EXIT_KIND_COUNT; k++)
        assert_non_null(exit_kind_name((enum exit_kind)k));
    assert_string_equal(exit_kind_name(EXIT_KIND_COUNT), "other");
    assert_string_equal(exit_kind_name(EXIT_KIND_CPUID), "cpuid");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_is_dense_and_complete),
        cmocka_unit_test(specific_handlers_sit_at_sdm_numbers),
        cmocka_unit_test(qualification_flags),
        cmocka_unit_test(numbers_match_the_sdm),
        cmocka_unit_test(numbers_unique_and_in_order),
        cmocka_unit_test(names_and_descriptions_unique),
        cmocka_unit_test(raw_field_and_unknown_numbers),
        cmocka_unit_test(kinds_follow_the_handlers),
        cmocka_unit_test(vmcall_without_hypercall_table),
        cmocka_unit_test(vmcall_through_hypercall_table),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
