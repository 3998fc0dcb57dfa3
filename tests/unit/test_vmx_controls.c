/* VMX control words from capability MSRs: Keel's policy against a measured Bochs 2.7
 * corei7_skylake_x, and against CPUs derived from it that lack a required control,
 * force a control on, or report a contradictory MSR. */
/* SOURCES: arch/x86/vmx/vmx_controls.c vmm/lib/printf.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "arch/x86/vmx/vmx_caps.h"
#include "arch/x86/vmx/vmx_controls.h"

/* Every capability MSR as Keel read it at boot under Bochs 2.7 with
 * cpu: model=corei7_skylake_x (pin/proc/exit/entry are the TRUE_ variants, BASIC bit 55
 * being set). The tests that take a bit away start from these. */
#define BOCHS_BASIC 0x00d810000000002bull
#define BOCHS_PINBASED 0x0000007f00000016ull
#define BOCHS_PROCBASED 0xf7f9fffe04006172ull  /* no monitor trap flag */
#define BOCHS_PROCBASED2 0x02177fff00000000ull
#define BOCHS_EXIT 0x007fffff00036dfbull       /* up to save preemption timer */
#define BOCHS_ENTRY 0x0000ffff000011fbull      /* up to load IA32_EFER */
#define BOCHS_MISC 0x00000000600401e0ull
#define BOCHS_EPT_VPID 0x00000f0106334141ull
#define BOCHS_CR0_FIXED0 0x80000021ull
#define BOCHS_CR0_FIXED1 0xffffffffull
#define BOCHS_CR4_FIXED0 0x2000ull
#define BOCHS_CR4_FIXED1 0x3727ffull

static struct vmx_caps bochs_skylake(void)
{
    struct vmx_caps c = {0};
    c.basic = BOCHS_BASIC;
    c.pinbased = BOCHS_PINBASED;
    c.procbased = BOCHS_PROCBASED;
    c.procbased2 = BOCHS_PROCBASED2;
    c.exit = BOCHS_EXIT;
    c.entry = BOCHS_ENTRY;
    c.ept_vpid = BOCHS_EPT_VPID;
    c.misc = BOCHS_MISC;
    c.cr0_fixed0 = BOCHS_CR0_FIXED0;
    c.cr0_fixed1 = BOCHS_CR0_FIXED1;
    c.cr4_fixed0 = BOCHS_CR4_FIXED0;
    c.cr4_fixed1 = BOCHS_CR4_FIXED1;
    return c;
}

static uint64_t without_allowed1(uint64_t cap, uint32_t bits) { return cap & ~((uint64_t)bits << 32); }

/* Keel printed "pin 0x0000007f proc 0xb6186df2 proc2 0x001010ea exit 0x007fefff entry
 * 0x0000d1ff" with unrestricted guest at boot on that Bochs: the host build must agree. */
static void bochs_gets_policy_and_all_optional_features(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    assert_true(vmx_has_true_ctls(&caps));
    assert_int_equal(vmx_vmcs_revision(&caps), 0x2b);
    assert_int_equal(vmx_preemption_timer_rate(&caps), 0);
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    /* default1 0x16 + external-interrupt, NMI, virtual NMIs, preemption timer */
    assert_int_equal(c.pin, 0x0000007f);
    /* TRUE default1 0x04006172 + HLT, MWAIT, RDPMC, CR8 load/store, I/O bitmaps, MSR
     * bitmaps, MONITOR, secondary */
    assert_int_equal(c.proc, 0xb6186df2);
    assert_false(c.proc & VMX_PROC_CTL_TPR_SHADOW);
    assert_false(c.proc & VMX_PROC_CTL_CR3_LOAD_EXITING);
    assert_false(c.proc & VMX_PROC_CTL_MONITOR_TRAP_FLAG);
    /* EPT, VPID + unrestricted guest, RDTSCP, WBINVD exiting, INVPCID, XSAVES, PAUSE-loop exiting */
    assert_int_equal(c.proc2, 0x001014ea);
    /* default1 + save debug controls, host 64-bit, ack interrupt, PAT/EFER save+load,
     * save preemption timer */
    assert_int_equal(c.exit, 0x007fefff);
    /* default1 + load debug controls, load PAT, load EFER; IA-32e mode guest is left to
     * the vCPU */
    assert_int_equal(c.entry, 0x0000d1ff);
    assert_false(c.entry & VMX_ENTRY_CTL_IA32E_MODE_GUEST);
    assert_true(c.unrestricted_guest);
    assert_true(c.rdtscp);
    assert_true(c.invpcid);
    assert_true(c.xsaves);
    assert_true(c.save_preemption_timer);
    /* NMI-window exiting is offered, but only turned on per vCPU while an NMI waits. */
    assert_true(c.nmi_window);
    assert_false(c.proc & VMX_PROC_CTL_NMI_WINDOW_EXITING);
    caps.procbased = without_allowed1(BOCHS_PROCBASED, VMX_PROC_CTL_NMI_WINDOW_EXITING);
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), 0);
    assert_false(c.nmi_window);
}

static void required_preemption_timer_save_is_named(void **state)
{
    (void)state;
    uint32_t out = 0xdead;
    char err[200];
    uint64_t cap = without_allowed1(BOCHS_EXIT, VMX_EXIT_CTL_SAVE_PREEMPTION_TIMER);
    assert_int_equal(vmx_control_compute("VM-exit control", cap, VMX_EXIT_CTL_SAVE_PREEMPTION_TIMER, 0,
                                         vmx_exit_ctl_names, &out, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "VM-exit control bit 22 'save VMX-preemption timer value' cannot be set on this CPU");
    assert_int_equal(out, 0);
}

static void missing_required_exit_control_is_named(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.exit = without_allowed1(caps.exit, VMX_EXIT_CTL_LOAD_IA32_PAT);
    struct vmx_controls c;
    memset(&c, 0xff, sizeof(c));
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "VM-exit control bit 19 'load IA32_PAT' cannot be set on this CPU");
    assert_int_equal(c.pin, 0);
    assert_int_equal(c.exit, 0);
    assert_false(c.unrestricted_guest);
}

static void missing_ept_is_named(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.procbased2 = without_allowed1(caps.procbased2, VMX_PROC2_CTL_ENABLE_EPT);
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "secondary processor-based VM-execution control bit 1 'enable EPT' cannot be set on this CPU");
}

static void missing_secondary_controls_stop_at_the_primary_word(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.procbased = without_allowed1(caps.procbased, VMX_PROC_CTL_SECONDARY_CONTROLS);
    caps.procbased2 = 0; /* vmx_detect does not read the MSR then */
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "primary processor-based VM-execution control bit 31 'activate secondary controls' "
                             "cannot be set on this CPU");
}

static void missing_preemption_timer_is_named(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.pinbased = without_allowed1(caps.pinbased, VMX_PIN_CTL_PREEMPTION_TIMER);
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "pin-based VM-execution control bit 6 'activate VMX-preemption timer' cannot be set on this CPU");
}

static void several_missing_bits_are_counted(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.entry = without_allowed1(caps.entry, VMX_ENTRY_CTL_LOAD_IA32_PAT | VMX_ENTRY_CTL_LOAD_IA32_EFER);
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_string_equal(err, "VM-entry control bit 14 'load IA32_PAT' cannot be set on this CPU (and 1 more required bit)");
}

static void optional_features_only_when_allowed(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.procbased2 = without_allowed1(caps.procbased2, VMX_PROC2_CTL_UNRESTRICTED_GUEST | VMX_PROC2_CTL_ENABLE_XSAVES);
    caps.exit = without_allowed1(caps.exit, VMX_EXIT_CTL_SAVE_PREEMPTION_TIMER);
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), 0);
    assert_int_equal(c.proc2, VMX_PROC2_CTL_ENABLE_EPT | VMX_PROC2_CTL_ENABLE_VPID | VMX_PROC2_CTL_ENABLE_RDTSCP |
                                  VMX_PROC2_CTL_ENABLE_INVPCID | VMX_PROC2_CTL_WBINVD_EXITING |
                                  VMX_PROC2_CTL_PAUSE_LOOP_EXITING);
    assert_false(c.unrestricted_guest);
    assert_false(c.xsaves);
    assert_true(c.rdtscp);
    assert_true(c.invpcid);
    assert_int_equal(c.exit, 0x003fefff);
    assert_false(c.save_preemption_timer);
}

/* Without TRUE MSRs the plain ones force the default1 bits, CR3-load/store exiting
 * included: Keel gets them whether it wants them or not. */
static void allowed0_bits_are_forced_on(void **state)
{
    (void)state;
    struct vmx_caps caps = bochs_skylake();
    caps.basic &= ~BIT(55);
    caps.procbased = 0xf7f9fffe0401e172ull;
    struct vmx_controls c;
    char err[200];
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), 0);
    assert_int_equal(c.proc, 0xb619edf2);
    assert_true(c.proc & VMX_PROC_CTL_CR3_LOAD_EXITING);
    assert_true(c.proc & VMX_PROC_CTL_CR3_STORE_EXITING);

    /* Directly: a must-be-1 bit outside required/optional still comes out set. */
    uint32_t out;
    uint64_t cap = 0x000000ff00000010ull;
    assert_int_equal(vmx_control_compute("test control", cap, BIT(0), BIT(1), NULL, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 0x13);
}

static void optional_bits_outside_allowed1_stay_clear(void **state)
{
    (void)state;
    uint32_t out;
    char err[100];
    uint64_t cap = 0x0000000500000000ull; /* bits 0 and 2 may be 1 */
    assert_int_equal(vmx_control_compute("test control", cap, 0, 0xffffffffu, NULL, &out, err, sizeof(err)), 0);
    assert_int_equal(out, 0x5);
    assert_string_equal(err, "");
}

static void contradictory_msr_is_rejected(void **state)
{
    (void)state;
    uint32_t out = 1;
    char err[200];
    /* bit 3 must be 1 (allowed-0) but may not be 1 (allowed-1) */
    uint64_t cap = 0x000000f700000008ull;
    assert_int_equal(vmx_control_compute("VM-entry control", cap, 0, 0, vmx_entry_ctl_names, &out, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "VM-entry control capability MSR 0x000000f700000008 is malformed: bit 3 must be 1 but "
                             "is not allowed to be 1");
    assert_int_equal(out, 0);

    struct vmx_caps caps = bochs_skylake();
    caps.pinbased = 0x0000006900000016ull; /* default1 bits 1, 2, 4 not allowed-1 */
    struct vmx_controls c;
    assert_int_equal(vmx_controls_compute(&caps, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "pin-based VM-execution control capability MSR"));
    assert_non_null(strstr(err, "bit 1 must be 1"));
}

static void reserved_or_unnamed_bits(void **state)
{
    (void)state;
    uint32_t out;
    char err[200];
    /* bit 1 of the pin-based word is reserved: no name */
    assert_int_equal(vmx_control_compute("pin-based VM-execution control", 0, BIT(1), 0, vmx_pin_ctl_names, &out, err,
                                         sizeof(err)),
                     -1);
    assert_string_equal(err, "pin-based VM-execution control bit 1 'reserved' cannot be set on this CPU");
    assert_int_equal(vmx_control_compute(NULL, 0, BIT(31), 0, NULL, &out, err, sizeof(err)), -1);
    assert_string_equal(err, "VMX control bit 31 'reserved' cannot be set on this CPU");
}

static void small_and_missing_error_buffers(void **state)
{
    (void)state;
    uint32_t out;
    char err[8];
    memset(err, 'x', sizeof(err));
    assert_int_equal(vmx_control_compute("VM-exit control", 0, BIT(9), 0, vmx_exit_ctl_names, &out, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "VM-exit");
    assert_int_equal(vmx_control_compute("VM-exit control", 0, BIT(9), 0, vmx_exit_ctl_names, &out, NULL, 0), -1);
    struct vmx_controls c;
    assert_int_equal(vmx_controls_compute(NULL, &c, NULL, 0), -1);
    char big[100];
    assert_int_equal(vmx_controls_compute(NULL, &c, big, sizeof(big)), -1);
    assert_string_equal(big, "VMX capabilities unknown (VT-x not detected on the boot CPU)");
}

static void names_and_masks_agree_with_the_sdm(void **state)
{
    (void)state;
    assert_int_equal(VMX_PROC_CTL_SECONDARY_CONTROLS, 0x80000000u);
    assert_int_equal(VMX_PROC2_CTL_ENABLE_EPT, VMX_PROC2_EPT);
    assert_int_equal(VMX_PROC2_CTL_ENABLE_VPID, VMX_PROC2_VPID);
    assert_int_equal(VMX_PROC2_CTL_UNRESTRICTED_GUEST, VMX_PROC2_UNRESTRICTED);
    assert_int_equal(VMX_PROC_CTL_MONITOR_TRAP_FLAG, VMX_PROC_MONITOR_TRAP);
    assert_int_equal(VMX_PIN_CTL_PREEMPTION_TIMER, VMX_PIN_PREEMPTION_TIMER);
    assert_int_equal(VMX_PIN_CTL_POSTED_INTERRUPTS, VMX_PIN_POSTED_INTERRUPTS);
    assert_int_equal(VMX_ENTRY_CTL_IA32E_MODE_GUEST, BIT(9));
    assert_int_equal(VMX_EXIT_CTL_HOST_ADDRESS_SPACE_SIZE, BIT(9));
    assert_string_equal(vmx_exit_ctl_names[22], "save VMX-preemption timer value");
    assert_string_equal(vmx_proc_ctl_names[25], "use I/O bitmaps");
    assert_string_equal(vmx_proc2_ctl_names[1], "enable EPT");
    assert_string_equal(vmx_pin_ctl_names[5], "virtual NMIs");
    assert_string_equal(vmx_entry_ctl_names[15], "load IA32_EFER");
    assert_null(vmx_pin_ctl_names[1]);
    assert_null(vmx_proc_ctl_names[0]);
    assert_null(vmx_proc2_ctl_names[29]);

    /* Every named bit has a mask equal to 1 << bit, and each word's names are unique. */
    const char *const *tables[] = {vmx_pin_ctl_names, vmx_proc_ctl_names, vmx_proc2_ctl_names, vmx_exit_ctl_names,
                                   vmx_entry_ctl_names};
    for (size_t t = 0; t < 5; t++)
        for (int i = 0; i < 32; i++)
            for (int j = i + 1; j < 32; j++)
                if (tables[t][i] && tables[t][j])
                    assert_string_not_equal(tables[t][i], tables[t][j]);
#define CHECK_MASK(prefix, names)                               \
    do {                                                        \
        static const struct { uint32_t mask; unsigned bit; const char *text; } m[] = {prefix}; \
        for (size_t i = 0; i < ARRAY_SIZE(m); i++) {            \
            assert_int_equal(m[i].mask, 1u << m[i].bit);        \
            assert_string_equal(names[m[i].bit], m[i].text);    \
        }                                                       \
    } while (0)
#define PIN(name, bit, text) {VMX_PIN_CTL_##name, bit, text},
#define PROC(name, bit, text) {VMX_PROC_CTL_##name, bit, text},
#define PROC2(name, bit, text) {VMX_PROC2_CTL_##name, bit, text},
#define EXIT(name, bit, text) {VMX_EXIT_CTL_##name, bit, text},
#define ENTRY(name, bit, text) {VMX_ENTRY_CTL_##name, bit, text},
    CHECK_MASK(VMX_PIN_CONTROLS(PIN), vmx_pin_ctl_names);
    CHECK_MASK(VMX_PROC_CONTROLS(PROC), vmx_proc_ctl_names);
    CHECK_MASK(VMX_PROC2_CONTROLS(PROC2), vmx_proc2_ctl_names);
    CHECK_MASK(VMX_EXIT_CONTROLS(EXIT), vmx_exit_ctl_names);
    CHECK_MASK(VMX_ENTRY_CONTROLS(ENTRY), vmx_entry_ctl_names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bochs_gets_policy_and_all_optional_features),
        cmocka_unit_test(required_preemption_timer_save_is_named),
        cmocka_unit_test(missing_required_exit_control_is_named),
        cmocka_unit_test(missing_ept_is_named),
        cmocka_unit_test(missing_secondary_controls_stop_at_the_primary_word),
        cmocka_unit_test(missing_preemption_timer_is_named),
        cmocka_unit_test(several_missing_bits_are_counted),
        cmocka_unit_test(optional_features_only_when_allowed),
        cmocka_unit_test(allowed0_bits_are_forced_on),
        cmocka_unit_test(optional_bits_outside_allowed1_stay_clear),
        cmocka_unit_test(contradictory_msr_is_rejected),
        cmocka_unit_test(reserved_or_unnamed_bits),
        cmocka_unit_test(small_and_missing_error_buffers),
        cmocka_unit_test(names_and_masks_agree_with_the_sdm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
