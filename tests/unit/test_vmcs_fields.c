/* VMCS field list, width-checked accessors and the VMX failure reports, against a fake
 * VMCS standing in for VMREAD/VMWRITE.
 *
 * The compile-time half of the width check cannot be exercised by a test that has to
 * compile; build this file with -DVMCS_EXPECT_COMPILE_ERROR=1..3 to see each misuse
 * rejected by the compiler:
 *   gcc -std=gnu11 -I. -DKEEL_HOST_TEST -DVMCS_EXPECT_COMPILE_ERROR=1 -fsyntax-only tests/unit/test_vmcs_fields.c */
/* SOURCES: arch/x86/vmx/vmcs_fields.c arch/x86/vmx/vmx_errors.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arch/x86/vmx/vmcs.h"
#include "tests/unit/console_capture.h"

/* ---- fake VMCS: one slot per listed field, hardware-like width truncation ---- */
static struct {
    bool loaded;           /* a current VMCS exists */
    uint32_t enc[VMCS_FIELD_COUNT];
    uint64_t val[VMCS_FIELD_COUNT];
    unsigned used;
    unsigned vmreads, vmwrites;
} fake;

static void fake_reset(void)
{
    memset(&fake, 0, sizeof(fake));
    fake.loaded = true;
    capture_reset();
}

static uint64_t *slot(uint32_t full)
{
    for (unsigned i = 0; i < fake.used; i++)
        if (fake.enc[i] == full)
            return &fake.val[i];
    assert_true(fake.used < VMCS_FIELD_COUNT);
    fake.enc[fake.used] = full;
    fake.val[fake.used] = 0;
    return &fake.val[fake.used++];
}

static void set_instruction_error(uint32_t n) { *slot(VMCS_VM_INSTRUCTION_ERROR) = n; }

enum vmx_status vmx_vmread_safe(uint32_t field, uint64_t *value)
{
    fake.vmreads++;
    if (!fake.loaded)
        return VMX_FAIL_INVALID;
    if (!vmcs_field_known(field)) {
        set_instruction_error(VMXERR_UNSUPPORTED_COMPONENT);
        return VMX_FAIL_VALID;
    }
    uint64_t v = *slot(field & ~1u);
    *value = VMCS_ENC_IS_HIGH(field) ? v >> 32 : v & vmcs_access_mask(field);
    return VMX_OK;
}

enum vmx_status vmx_vmwrite_safe(uint32_t field, uint64_t value)
{
    fake.vmwrites++;
    if (!fake.loaded)
        return VMX_FAIL_INVALID;
    if (!vmcs_field_known(field)) {
        set_instruction_error(VMXERR_UNSUPPORTED_COMPONENT);
        return VMX_FAIL_VALID;
    }
    if (VMCS_ENC_TYPE(field) == VMCS_TYPE_READ_ONLY) {
        set_instruction_error(VMXERR_VMWRITE_READ_ONLY);
        return VMX_FAIL_VALID;
    }
    uint64_t *s = slot(field & ~1u);
    if (VMCS_ENC_IS_HIGH(field))
        *s = (*s & 0xffffffffull) | (value << 32);
    else
        *s = value & vmcs_access_mask(field);
    return VMX_OK;
}

#if VMCS_EXPECT_COMPILE_ERROR == 1
void wrong_width(void) { vmcs_write16(VMCS_GUEST_RIP, 0); }
#elif VMCS_EXPECT_COMPILE_ERROR == 2
uint64_t high_half_is_32_bit(void) { return vmcs_read64(VMCS_HIGH(VMCS_TSC_OFFSET)); }
#elif VMCS_EXPECT_COMPILE_ERROR == 3
void read_only(void) { vmcs_write32(VMCS_EXIT_REASON, 0); }
#endif

/* ---- the field list ---- */
struct listed {
    const char *name;
    uint32_t enc;
};
static const struct listed fields[] = {
#define LISTED(name, enc) {#name, enc},
    VMCS_FIELDS(LISTED)
#undef LISTED
};

static void widths_come_from_the_encoding(void **state)
{
    (void)state;
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_GUEST_RIP), VMCS_WIDTH_NATURAL);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_GUEST_CS_SELECTOR), VMCS_WIDTH_16);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_EPT_POINTER), VMCS_WIDTH_64);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_PIN_BASED_CONTROLS), VMCS_WIDTH_32);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_VPID), VMCS_WIDTH_16);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_LINK_POINTER), VMCS_WIDTH_64);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_EXIT_QUALIFICATION), VMCS_WIDTH_NATURAL);
    assert_int_equal(VMCS_ENC_WIDTH(VMCS_HOST_IA32_SYSENTER_CS), VMCS_WIDTH_32);
    assert_int_equal(VMCS_ACCESS_WIDTH(VMCS_HIGH(VMCS_TSC_OFFSET)), VMCS_WIDTH_32);
    assert_int_equal(VMCS_ACCESS_WIDTH(VMCS_TSC_OFFSET), VMCS_WIDTH_64);
    assert_int_equal(VMCS_ENC_TYPE(VMCS_EXIT_REASON), VMCS_TYPE_READ_ONLY);
    assert_int_equal(VMCS_ENC_TYPE(VMCS_GUEST_PHYSICAL_ADDRESS), VMCS_TYPE_READ_ONLY);
    assert_int_equal(VMCS_ENC_TYPE(VMCS_HOST_RIP), VMCS_TYPE_HOST);
    assert_int_equal(VMCS_ENC_TYPE(VMCS_GUEST_RIP), VMCS_TYPE_GUEST);
    assert_int_equal(VMCS_ENC_TYPE(VMCS_EPT_POINTER), VMCS_TYPE_CONTROL);
    /* A few encodings straight from the SDM's appendix B. */
    assert_int_equal(VMCS_GUEST_RIP, 0x681e);
    assert_int_equal(VMCS_EPT_POINTER, 0x201a);
    assert_int_equal(VMCS_VM_INSTRUCTION_ERROR, 0x4400);
    assert_int_equal(VMCS_PREEMPTION_TIMER_VALUE, 0x482e);
    assert_int_equal(VMCS_HOST_IA32_EFER, 0x2c02);
    assert_int_equal(VMCS_PROC_BASED_CONTROLS2, 0x401e);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The names say what the field is; the encodings must agree on the width and type. */
static void names_agree_with_widths_and_types(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        const char *n = fields[i].name;
        uint32_t e = fields[i].enc;
        if (ends_with(n, "_SELECTOR"))
            assert_int_equal(VMCS_ENC_WIDTH(e), VMCS_WIDTH_16);
        if (ends_with(n, "_LIMIT") || ends_with(n, "_ACCESS_RIGHTS") || ends_with(n, "_COUNT"))
            assert_int_equal(VMCS_ENC_WIDTH(e), VMCS_WIDTH_32);
        if (ends_with(n, "_BASE") || ends_with(n, "_RIP") || ends_with(n, "_RSP") || ends_with(n, "_CR0") ||
            ends_with(n, "_CR3") || ends_with(n, "_CR4") || ends_with(n, "_READ_SHADOW") ||
            ends_with(n, "_GUEST_HOST_MASK"))
            assert_int_equal(VMCS_ENC_WIDTH(e), VMCS_WIDTH_NATURAL);
        if (strstr(n, "IA32_PAT") || strstr(n, "IA32_EFER") || strstr(n, "PDPTE") || ends_with(n, "_BITMAP_A") ||
            ends_with(n, "_BITMAP_B") || ends_with(n, "_POINTER"))
            assert_int_equal(VMCS_ENC_WIDTH(e), VMCS_WIDTH_64);
        if (strncmp(n, "VMCS_GUEST_", 11) == 0 && strcmp(n, "VMCS_GUEST_PHYSICAL_ADDRESS") != 0 &&
            strcmp(n, "VMCS_GUEST_LINEAR_ADDRESS") != 0)
            assert_int_equal(VMCS_ENC_TYPE(e), VMCS_TYPE_GUEST);
        if (strncmp(n, "VMCS_HOST_", 10) == 0)
            assert_int_equal(VMCS_ENC_TYPE(e), VMCS_TYPE_HOST);
        assert_int_equal(e & 1, 0);
    }
}

static void names_and_encodings_unique(void **state)
{
    (void)state;
    assert_int_equal(ARRAY_SIZE(fields), VMCS_FIELD_COUNT);
    for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
        assert_string_equal(vmcs_field_name(fields[i].enc), fields[i].name);
        assert_true(vmcs_field_known(fields[i].enc));
        for (size_t j = i + 1; j < ARRAY_SIZE(fields); j++) {
            assert_string_not_equal(fields[i].name, fields[j].name);
            assert_int_not_equal(fields[i].enc, fields[j].enc);
        }
    }
}

static void high_halves_and_unknown_encodings(void **state)
{
    (void)state;
    assert_string_equal(vmcs_field_name(VMCS_HIGH(VMCS_IO_BITMAP_A)), "VMCS_IO_BITMAP_A_HIGH");
    assert_string_equal(vmcs_field_name(0x201b), "VMCS_EPT_POINTER_HIGH");
    assert_true(vmcs_field_known(0x201b));
    /* High access exists only for 64-bit fields. */
    static const uint32_t unknown[] = {0x0001, 0x4001, 0x681f, 0x482c, 0x2403, 0x1000, 0x8000, 0xffffffffu, 0x6c1e};
    for (size_t i = 0; i < ARRAY_SIZE(unknown); i++) {
        assert_string_equal(vmcs_field_name(unknown[i]), "unknown VMCS field");
        assert_false(vmcs_field_known(unknown[i]));
    }
    assert_string_equal(vmcs_width_name(VMCS_WIDTH_NATURAL), "natural-width");
    assert_string_equal(vmcs_width_name(7), "invalid width");
}

/* ---- accessors ---- */
static void accessors_round_trip(void **state)
{
    (void)state;
    fake_reset();
    vmcs_writenat(VMCS_GUEST_RIP, 0xffffffff80001000ull);
    vmcs_write16(VMCS_GUEST_CS_SELECTOR, 0x10);
    vmcs_write64(VMCS_EPT_POINTER, 0x123456789000ull | 0x5e);
    vmcs_write32(VMCS_PIN_BASED_CONTROLS, 0x7f);
    assert_int_equal(vmcs_readnat(VMCS_GUEST_RIP), 0xffffffff80001000ull);
    assert_int_equal(vmcs_read16(VMCS_GUEST_CS_SELECTOR), 0x10);
    assert_int_equal(vmcs_read64(VMCS_EPT_POINTER), 0x12345678905eull);
    assert_int_equal(vmcs_read32(VMCS_PIN_BASED_CONTROLS), 0x7f);
    /* A 64-bit field is one access on x86-64; its high half is a separate 32-bit one. */
    unsigned before = fake.vmreads;
    assert_int_equal(vmcs_read32(VMCS_HIGH(VMCS_EPT_POINTER)), 0x1234);
    assert_int_equal(fake.vmreads - before, 1);
    vmcs_write32(VMCS_HIGH(VMCS_TSC_OFFSET), 0xfffffffe);
    assert_int_equal(vmcs_read64(VMCS_TSC_OFFSET), 0xfffffffe00000000ull);

    uint16_t sel = 0;
    uint32_t ctl = 0;
    uint64_t rip = 0;
    assert_int_equal(vmcs_read16_safe(VMCS_GUEST_CS_SELECTOR, &sel), VMX_OK);
    assert_int_equal(sel, 0x10);
    assert_int_equal(vmcs_read32_safe(VMCS_PIN_BASED_CONTROLS, &ctl), VMX_OK);
    assert_int_equal(ctl, 0x7f);
    assert_int_equal(vmcs_writenat_safe(VMCS_GUEST_RSP, 0x8000), VMX_OK);
    assert_int_equal(vmcs_readnat_safe(VMCS_GUEST_RSP, &rip), VMX_OK);
    assert_int_equal(rip, 0x8000);
}

static void safe_accessors_report_failure(void **state)
{
    (void)state;
    fake_reset();
    fake.loaded = false;
    uint64_t v = 0x55;
    assert_int_equal(vmcs_readnat_safe(VMCS_GUEST_RIP, &v), VMX_FAIL_INVALID);
    assert_int_equal(v, 0);
    assert_int_equal(vmcs_write64_safe(VMCS_EPT_POINTER, 1), VMX_FAIL_INVALID);

    fake.loaded = true;
    uint32_t f = 0x482c; /* not a field: the hardware answers VMfailValid, error 12 */
    uint32_t got = 1;
    assert_int_equal(vmcs_read32_safe(f, &got), VMX_FAIL_VALID);
    assert_int_equal(vmx_vmread(VMCS_VM_INSTRUCTION_ERROR), VMXERR_UNSUPPORTED_COMPONENT);
    assert_string_equal(capture_last(), "");
}

static void runtime_width_mismatch_panics_before_vmread(void **state)
{
    (void)state;
    fake_reset();
    uint32_t field = VMCS_GUEST_RIP; /* not a constant: checked at run time */
    expect_panic((void)vmcs_read16(field));
    assert_string_equal(capture_panic_message(), "VMCS: 16-bit read of natural-width field VMCS_GUEST_RIP (0x681e)");
    assert_int_equal(fake.vmreads, 0);

    field = VMCS_EPT_POINTER;
    expect_panic(vmcs_write32(field, 1));
    assert_string_equal(capture_panic_message(), "VMCS: 32-bit write of 64-bit field VMCS_EPT_POINTER (0x201a)");
    field = VMCS_HIGH(VMCS_EPT_POINTER);
    expect_panic((void)vmcs_read64(field));
    assert_string_equal(capture_panic_message(), "VMCS: 64-bit read of 32-bit field VMCS_EPT_POINTER_HIGH (0x201b)");
    uint16_t sel;
    field = VMCS_EXIT_QUALIFICATION;
    expect_panic(vmcs_read16_safe(field, &sel));
    assert_string_equal(capture_panic_message(), "VMCS: 16-bit read of natural-width field VMCS_EXIT_QUALIFICATION (0x6400)");
    assert_int_equal(fake.vmreads + fake.vmwrites, 0);
}

static void runtime_write_to_read_only_panics(void **state)
{
    (void)state;
    fake_reset();
    uint32_t field = VMCS_EXIT_REASON;
    expect_panic(vmcs_write32(field, 1));
    assert_string_equal(capture_panic_message(), "VMCS: write to read-only field VMCS_EXIT_REASON (0x4402)");
    assert_int_equal(fake.vmwrites, 0);
    /* Reading it is fine. */
    assert_int_equal(vmcs_read32(field), 0);
}

/* ---- VMX failure reports ---- */
/* capture_last() sees only finished lines, so these also check each report ends in '\n'. */
static void failed_vmwrite_names_field_and_error(void **state)
{
    (void)state;
    fake_reset();
    expect_panic(vmx_vmwrite(0x482c, 1));
    assert_string_equal(capture_last(), "VMX: VMWRITE(0x482c unknown VMCS field) failed: VMfailValid, VM-instruction error "
                                        "12 (VMREAD/VMWRITE from/to unsupported VMCS component)");
    assert_string_equal(capture_panic_message(), "VMX instruction VMWRITE failed");

    fake_reset();
    expect_panic(vmx_vmwrite(VMCS_GUEST_PHYSICAL_ADDRESS, 1));
    assert_string_equal(capture_last(), "VMX: VMWRITE(0x2400 VMCS_GUEST_PHYSICAL_ADDRESS) failed: VMfailValid, "
                                        "VM-instruction error 13 (VMWRITE to read-only VMCS component)");
}

static void failure_reports_per_status(void **state)
{
    (void)state;
    fake_reset();
    set_instruction_error(VMXERR_ENTRY_INVALID_CONTROL);
    expect_panic(vmx_insn_failed("VMPTRLD", VMX_FAIL_VALID, 0x1000));
    assert_string_equal(capture_last(), "VMX: VMPTRLD(0x1000) failed: VMfailValid, VM-instruction error 7 (VM entry "
                                        "with invalid control field(s))");

    expect_panic(vmx_insn_failed("VMCLEAR", VMX_FAIL_INVALID, 0x2000));
    assert_string_equal(capture_last(), "VMX: VMCLEAR(0x2000) failed: VMfailInvalid (no current VMCS, or an invalid operand)");
    assert_string_equal(capture_panic_message(), "VMX instruction VMCLEAR failed");

    fake.loaded = false; /* the error number itself cannot be read */
    expect_panic(vmx_insn_failed("INVEPT single-context", VMX_FAIL_VALID, 0x5000));
    assert_string_equal(capture_last(), "VMX: INVEPT single-context(0x5000) failed: VMfailValid, VM-instruction error "
                                        "unreadable");

    fake.loaded = true;
    set_instruction_error(99);
    expect_panic(vmx_insn_failed(NULL, VMX_FAIL_VALID, 0));
    assert_string_equal(capture_last(), "VMX: VMX instruction(0x0) failed: VMfailValid, VM-instruction error 99 (unknown "
                                        "VM-instruction error)");
    expect_panic(vmx_insn_failed("VMXON", (enum vmx_status)7, 0));
    assert_string_equal(capture_last(), "VMX: VMXON(0x0) failed: invalid status");
}

static void instruction_error_names(void **state)
{
    (void)state;
    assert_string_equal(vmx_instruction_error_name(7), "VM entry with invalid control field(s)");
    assert_string_equal(vmx_instruction_error_name(8), "VM entry with invalid host-state field(s)");
    assert_string_equal(vmx_instruction_error_name(28), "Invalid operand to INVEPT/INVVPID");
    assert_string_equal(vmx_instruction_error_name(1), "VMCALL executed in VMX root operation");
    static const uint32_t undefined[] = {0, 14, 21, 27, 29, 1000, 0xffffffffu};
    for (size_t i = 0; i < ARRAY_SIZE(undefined); i++)
        assert_string_equal(vmx_instruction_error_name(undefined[i]), "unknown VM-instruction error");

    static const struct { uint32_t n; const char *text; } errs[] = {
#define ERR(n, name, text) {n, text},
        VMX_INSTRUCTION_ERRORS(ERR)
#undef ERR
    };
    assert_int_equal(ARRAY_SIZE(errs), 25);
    for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
        assert_true(errs[i].n >= 1 && errs[i].n <= 28);
        assert_string_equal(vmx_instruction_error_name(errs[i].n), errs[i].text);
        for (size_t j = i + 1; j < ARRAY_SIZE(errs); j++) {
            assert_int_not_equal(errs[i].n, errs[j].n);
            assert_string_not_equal(errs[i].text, errs[j].text);
        }
    }
    assert_string_equal(vmx_status_name(VMX_OK), "VMsucceed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(widths_come_from_the_encoding),
        cmocka_unit_test(names_agree_with_widths_and_types),
        cmocka_unit_test(names_and_encodings_unique),
        cmocka_unit_test(high_halves_and_unknown_encodings),
        cmocka_unit_test(accessors_round_trip),
        cmocka_unit_test(safe_accessors_report_failure),
        cmocka_unit_test(runtime_width_mismatch_panics_before_vmread),
        cmocka_unit_test(runtime_write_to_read_only_panics),
        cmocka_unit_test(failed_vmwrite_names_field_and_error),
        cmocka_unit_test(failure_reports_per_status),
        cmocka_unit_test(instruction_error_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
