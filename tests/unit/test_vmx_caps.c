/* Judging VT-x capabilities against the values Bochs 2.7 reports for
 * corei7_skylake_x, and against synthetic CPUs that lack something Keel needs. */
/* SOURCES: arch/x86/vmx/vmx_caps.c vmm/lib/printf.c tests/unit/console_capture.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arch/x86/vmx/vmx_caps.h"
#include "tests/unit/console_capture.h"

/* Measured under Bochs (see shared notes): BASIC, PROCBASED2 allowed-1, EPT_VPID_CAP, MISC. */
static struct vmx_caps bochs_skylake(void)
{
    struct vmx_caps c = {0};
    c.basic = 0x00d810000000002bull;
    c.pinbased = 0x0000007f00000016ull;         /* allowed-1 includes the preemption timer */
    c.procbased = 0xf7f9fffe04006172ull; /* secondary controls allowed, no monitor trap flag */
    c.procbased2 = 0x02177fff00000000ull;
    c.ept_vpid = 0x00000f0106334141ull;
    c.misc = 0x600401e0;
    return c;
}

static void bochs_has_everything(void **state)
{
    (void)state;
    struct vmx_caps c = bochs_skylake();
    char buf[256];
    assert_int_equal(vmx_caps_missing(&c, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "");
    assert_int_equal(vmx_vmcs_revision(&c), 0x2b);
    assert_true(vmx_has_true_ctls(&c));
    assert_int_equal(vmx_preemption_timer_rate(&c), 0);
}

static void bochs_summary_lines(void **state)
{
    (void)state;
    struct vmx_caps c = bochs_skylake();
    char buf[256];
    vmx_caps_summary(&c, buf, sizeof(buf));
    assert_string_equal(buf, "VMCS revision 0x2b (TRUE controls), VPID yes, unrestricted guest yes, "
                             "preemption timer yes (rate 2^0), monitor trap flag no");
    vmx_caps_ept_summary(&c, buf, sizeof(buf));
    assert_string_equal(buf, "EPT 4-level, memory types WB UC, pages 4K/2M/1G, A/D bits yes, "
                             "INVEPT single all, INVVPID single all");
}

static void missing_ept_is_named(void **state)
{
    (void)state;
    struct vmx_caps c = bochs_skylake();
    c.procbased2 &= ~((uint64_t)VMX_PROC2_EPT << 32);
    char buf[256];
    assert_int_equal(vmx_caps_missing(&c, buf, sizeof(buf)), 1);
    assert_string_equal(buf, "EPT");
}

static void missing_secondary_controls_takes_ept_and_vpid(void **state)
{
    (void)state;
    struct vmx_caps c = bochs_skylake();
    c.procbased &= ~((uint64_t)VMX_PROC_SECONDARY << 32);
    char buf[256];
    assert_int_equal(vmx_caps_missing(&c, buf, sizeof(buf)), 3);
    assert_string_equal(buf, "secondary processor-based controls, EPT, VPID");
    vmx_caps_ept_summary(&c, buf, sizeof(buf));
    assert_string_equal(buf, "EPT not supported");
}

static void missing_preemption_timer_and_wb(void **state)
{
    (void)state;
    struct vmx_caps c = bochs_skylake();
    c.pinbased &= ~((uint64_t)VMX_PIN_PREEMPTION_TIMER << 32);
    c.ept_vpid &= ~EPT_CAP_WB;
    char buf[256];
    assert_int_equal(vmx_caps_missing(&c, buf, sizeof(buf)), 2);
    assert_string_equal(buf, "EPT write-back memory type, VMX-preemption timer");
}

static void small_buffer_is_truncated_not_overrun(void **state)
{
    (void)state;
    struct vmx_caps c = {0};
    char buf[8];
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(vmx_caps_missing(&c, buf, sizeof(buf)), 9);
    assert_int_equal(buf[7], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bochs_has_everything),
        cmocka_unit_test(bochs_summary_lines),
        cmocka_unit_test(missing_ept_is_named),
        cmocka_unit_test(missing_secondary_controls_takes_ept_and_vpid),
        cmocka_unit_test(missing_preemption_timer_and_wb),
        cmocka_unit_test(small_buffer_is_truncated_not_overrun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
