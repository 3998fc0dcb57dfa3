/* The VM-exit reason list: a dispatcher table built from it has a handler in every
 * slot, the specific handlers sit where the SDM numbers say, and every number (known
 * or not) gets a printable name. */
/* SOURCES: vmm/exit_reasons.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "vmm/exit_reasons.h"

/* Stand-ins for the lead's handlers. Each records its own name, so the test proves
 * which function a slot holds (and identical bodies cannot be merged). */
static const char *called;
#define STUB(fn) \
    __attribute__((weak)) void fn(void) { called = #fn; }
STUB(handle_exception_nmi)
STUB(handle_external_interrupt)
STUB(handle_triple_fault)
STUB(handle_cpuid)
STUB(handle_hlt)
STUB(handle_invd)
STUB(handle_vmcall)
STUB(handle_vmx_instruction)
STUB(handle_monitor_mwait)
STUB(handle_cr_access)
STUB(handle_io)
STUB(handle_rdmsr)
STUB(handle_wrmsr)
STUB(handle_entry_failure)
STUB(handle_ept_violation)
STUB(handle_ept_misconfig)
STUB(handle_preemption_timer)
STUB(handle_wbinvd)
STUB(handle_xsetbv)
STUB(handle_rdpmc)
STUB(handle_unexpected_exit)

/* Built exactly the way the dispatcher builds its table. */
struct exit_handler {
    void (*fn)(void);
    bool needs_qualification;
};
static const struct exit_handler exit_table[] = {VMX_EXIT_REASONS(VMX_EXIT_HANDLER_ENTRY)};

static const char *handler_of(uint32_t reason)
{
    called = NULL;
    exit_table[reason].fn();
    return called;
}

static void table_is_dense_and_complete(void **state)
{
    (void)state;
    assert_int_equal(ARRAY_SIZE(exit_table), VMX_EXIT_REASON_COUNT);
    assert_int_equal(VMX_EXIT_REASON_MAX, 77);
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        assert_non_null(exit_table[r].fn);
        assert_non_null(handler_of(r));
    }
}

static void specific_handlers_sit_at_sdm_numbers(void **state)
{
    (void)state;
    const char *expect[VMX_EXIT_REASON_COUNT];
    for (size_t i = 0; i < ARRAY_SIZE(expect); i++)
        expect[i] = "handle_unexpected_exit";
    expect[0] = "handle_exception_nmi";
    expect[1] = "handle_external_interrupt";
    expect[2] = "handle_triple_fault";
    expect[10] = "handle_cpuid";
    expect[12] = "handle_hlt";
    expect[13] = "handle_invd";
    expect[15] = "handle_rdpmc";
    expect[18] = "handle_vmcall";
    for (int r = 19; r <= 27; r++)
        expect[r] = "handle_vmx_instruction";
    expect[50] = expect[53] = expect[59] = "handle_vmx_instruction";
    expect[36] = expect[39] = "handle_monitor_mwait";
    expect[28] = "handle_cr_access";
    expect[30] = "handle_io";
    expect[31] = "handle_rdmsr";
    expect[32] = "handle_wrmsr";
    expect[33] = expect[34] = expect[41] = "handle_entry_failure";
    expect[48] = "handle_ept_violation";
    expect[49] = "handle_ept_misconfig";
    expect[52] = "handle_preemption_timer";
    expect[54] = "handle_wbinvd";
    expect[55] = "handle_xsetbv";
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        const char *got = handler_of(r);
        if (strcmp(got, expect[r]) != 0)
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
        assert_true(exit_table[with[i]].needs_qualification);
    for (size_t i = 0; i < ARRAY_SIZE(without); i++)
        assert_false(exit_table[without[i]].needs_qualification);
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
#define NUMBER(num, name, desc, handler, needs_qual) num,
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
static void kinds_follow_the_handlers(void **state)
{
    (void)state;
    static const struct {
        const char *handler;
        enum exit_kind kind;
    } by_handler[] = {
        {"handle_cpuid", EXIT_KIND_CPUID},        {"handle_io", EXIT_KIND_IO},
        {"handle_rdmsr", EXIT_KIND_MSR_READ},     {"handle_wrmsr", EXIT_KIND_MSR_WRITE},
        {"handle_vmcall", EXIT_KIND_HYPERCALL},   {"handle_hlt", EXIT_KIND_HLT},
        {"handle_cr_access", EXIT_KIND_CR_ACCESS}, {"handle_xsetbv", EXIT_KIND_XSETBV},
        {"handle_vmx_instruction", EXIT_KIND_PRIVILEGED}, {"handle_monitor_mwait", EXIT_KIND_PRIVILEGED},
        {"handle_invd", EXIT_KIND_PRIVILEGED},    {"handle_wbinvd", EXIT_KIND_PRIVILEGED},
        {"handle_rdpmc", EXIT_KIND_PRIVILEGED},   {"handle_ept_violation", EXIT_KIND_MEMORY},
        {"handle_ept_misconfig", EXIT_KIND_MEMORY}, {"handle_external_interrupt", EXIT_KIND_INTERRUPT},
        {"handle_preemption_timer", EXIT_KIND_TIMER}, {"handle_triple_fault", EXIT_KIND_FAULT},
        {"handle_exception_nmi", EXIT_KIND_FAULT}, {"handle_entry_failure", EXIT_KIND_ENTRY_FAILURE},
        {"handle_unexpected_exit", EXIT_KIND_OTHER},
    };
    for (uint32_t r = 0; r <= VMX_EXIT_REASON_MAX; r++) {
        const char *h = handler_of(r);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
