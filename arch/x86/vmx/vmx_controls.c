/* Turning capability MSRs into VMX control words under Keel's policy. Pure functions
 * of the MSR values, so they are tested on the host. */
#include "arch/x86/vmx/vmx_controls.h"
#include "arch/x86/vmx/vmx_caps.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

#define VMX_CTL_NAME(name, bit, text) [bit] = text,
const char *const vmx_pin_ctl_names[32] = {VMX_PIN_CONTROLS(VMX_CTL_NAME)};
const char *const vmx_proc_ctl_names[32] = {VMX_PROC_CONTROLS(VMX_CTL_NAME)};
const char *const vmx_proc2_ctl_names[32] = {VMX_PROC2_CONTROLS(VMX_CTL_NAME)};
const char *const vmx_exit_ctl_names[32] = {VMX_EXIT_CONTROLS(VMX_CTL_NAME)};
const char *const vmx_entry_ctl_names[32] = {VMX_ENTRY_CONTROLS(VMX_CTL_NAME)};
#undef VMX_CTL_NAME

/* Keel's policy, the one place that says which controls every VMCS gets.
 *  - pin: interrupts and NMIs always reach the host; virtual NMIs let NMI-window
 *    exiting inject NMIs; the preemption timer is the scheduler tick.
 *  - proc: HLT gives the CPU back; I/O and MSR bitmaps decide what traps; MONITOR/MWAIT
 *    exit because a guest must never sleep on the physical CPU. MOV CR8 exits because
 *    without it a 64-bit guest writes the host's local-APIC TPR, which would mask
 *    Keel's own interrupts; RDPMC exits because the counters are the host's.
 *  - proc2: EPT and VPID are what isolation and tagged TLBs are built on; WBINVD
 *    exiting puts a guest's cache flush (felt by every VM on the socket) through Keel,
 *    where it is counted like INVD; the rest only saves #UD in guests or allows
 *    real-mode guests. All but EPT and VPID are taken when offered.
 *  - exit: a 64-bit host, interrupts acknowledged on exit (the vector is in the exit
 *    information), PAT and EFER swapped by hardware; saving the timer value lets a
 *    vCPU keep its slice across exits. Debug controls are saved so the guest's DR7
 *    and IA32_DEBUGCTL survive exits (the host gets DR7 = 0x400 and DEBUGCTL = 0).
 *  - entry: PAT, EFER and the debug controls loaded (IA-32e mode guest is set per
 *    vCPU). */
#define KEEL_PIN_REQUIRED \
    (VMX_PIN_CTL_EXTERNAL_INTERRUPT_EXITING | VMX_PIN_CTL_NMI_EXITING | VMX_PIN_CTL_VIRTUAL_NMIS | VMX_PIN_CTL_PREEMPTION_TIMER)
#define KEEL_PIN_OPTIONAL 0u
#define KEEL_PROC_REQUIRED                                                                         \
    (VMX_PROC_CTL_HLT_EXITING | VMX_PROC_CTL_IO_BITMAPS | VMX_PROC_CTL_MSR_BITMAPS |                  \
     VMX_PROC_CTL_SECONDARY_CONTROLS | VMX_PROC_CTL_MWAIT_EXITING | VMX_PROC_CTL_MONITOR_EXITING |    \
     VMX_PROC_CTL_CR8_LOAD_EXITING | VMX_PROC_CTL_CR8_STORE_EXITING | VMX_PROC_CTL_RDPMC_EXITING)
#define KEEL_PROC_OPTIONAL 0u
#define KEEL_PROC2_REQUIRED (VMX_PROC2_CTL_ENABLE_EPT | VMX_PROC2_CTL_ENABLE_VPID)
#define KEEL_PROC2_OPTIONAL \
    (VMX_PROC2_CTL_UNRESTRICTED_GUEST | VMX_PROC2_CTL_ENABLE_RDTSCP | VMX_PROC2_CTL_ENABLE_INVPCID | VMX_PROC2_CTL_ENABLE_XSAVES | \
     VMX_PROC2_CTL_WBINVD_EXITING | VMX_PROC2_CTL_PAUSE_LOOP_EXITING)
#define KEEL_EXIT_REQUIRED                                                                         \
    (VMX_EXIT_CTL_HOST_ADDRESS_SPACE_SIZE | VMX_EXIT_CTL_ACK_INTERRUPT_ON_EXIT | VMX_EXIT_CTL_SAVE_IA32_PAT | \
     VMX_EXIT_CTL_LOAD_IA32_PAT | VMX_EXIT_CTL_SAVE_IA32_EFER | VMX_EXIT_CTL_LOAD_IA32_EFER |       \
     VMX_EXIT_CTL_SAVE_DEBUG_CONTROLS)
#define KEEL_EXIT_OPTIONAL VMX_EXIT_CTL_SAVE_PREEMPTION_TIMER
#define KEEL_ENTRY_REQUIRED \
    (VMX_ENTRY_CTL_LOAD_IA32_PAT | VMX_ENTRY_CTL_LOAD_IA32_EFER | VMX_ENTRY_CTL_LOAD_DEBUG_CONTROLS)
#define KEEL_ENTRY_OPTIONAL 0u

struct control_policy {
    const char *ctl_name;
    size_t cap_offset; /* uint64_t in struct vmx_caps */
    size_t out_offset; /* uint32_t in struct vmx_controls */
    uint32_t required, optional;
    const char *const *names;
};

static const struct control_policy policy[] = {
    {"pin-based VM-execution control", offsetof(struct vmx_caps, pinbased), offsetof(struct vmx_controls, pin),
     KEEL_PIN_REQUIRED, KEEL_PIN_OPTIONAL, vmx_pin_ctl_names},
    {"primary processor-based VM-execution control", offsetof(struct vmx_caps, procbased),
     offsetof(struct vmx_controls, proc), KEEL_PROC_REQUIRED, KEEL_PROC_OPTIONAL, vmx_proc_ctl_names},
    {"secondary processor-based VM-execution control", offsetof(struct vmx_caps, procbased2),
     offsetof(struct vmx_controls, proc2), KEEL_PROC2_REQUIRED, KEEL_PROC2_OPTIONAL, vmx_proc2_ctl_names},
    {"VM-exit control", offsetof(struct vmx_caps, exit), offsetof(struct vmx_controls, exit), KEEL_EXIT_REQUIRED,
     KEEL_EXIT_OPTIONAL, vmx_exit_ctl_names},
    {"VM-entry control", offsetof(struct vmx_caps, entry), offsetof(struct vmx_controls, entry),
     KEEL_ENTRY_REQUIRED, KEEL_ENTRY_OPTIONAL, vmx_entry_ctl_names},
};

static unsigned lowest_bit(uint32_t v) { return (unsigned)__builtin_ctz(v); }

int vmx_control_compute(const char *ctl_name, uint64_t cap_msr, uint32_t required, uint32_t optional,
                        const char *const names[32], uint32_t *out, char *err, size_t errsz)
{
    uint32_t allowed0 = (uint32_t)cap_msr;         /* 1 here: the control must be 1 */
    uint32_t allowed1 = (uint32_t)(cap_msr >> 32); /* 0 here: the control must be 0 */
    if (!ctl_name)
        ctl_name = "VMX control";
    if (errsz)
        err[0] = 0;
    *out = 0;

    uint32_t contradictory = allowed0 & ~allowed1;
    if (contradictory) {
        ksnprintf(err, errsz, "%s capability MSR 0x%016llx is malformed: bit %u must be 1 but is not allowed to be 1",
                  ctl_name, (unsigned long long)cap_msr, lowest_bit(contradictory));
        return -1;
    }

    uint32_t missing = required & ~allowed1;
    if (missing) {
        unsigned bit = lowest_bit(missing);
        const char *name = names ? names[bit] : NULL;
        int more = -1; /* no libgcc in the core, so no __builtin_popcount */
        for (uint32_t m = missing; m; m &= m - 1)
            more++;
        char extra[64] = "";
        if (more)
            ksnprintf(extra, sizeof(extra), " (and %d more required bit%s)", more, more == 1 ? "" : "s");
        ksnprintf(err, errsz, "%s bit %u '%s' cannot be set on this CPU%s", ctl_name, bit, name ? name : "reserved",
                  extra);
        return -1;
    }

    *out = allowed0 | required | (optional & allowed1);
    return 0;
}

int vmx_controls_compute(const struct vmx_caps *caps, struct vmx_controls *out, char *err, size_t errsz)
{
    memset(out, 0, sizeof(*out));
    if (errsz)
        err[0] = 0;
    if (!caps) {
        ksnprintf(err, errsz, "VMX capabilities unknown (VT-x not detected on the boot CPU)");
        return -1;
    }
    struct vmx_controls c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < ARRAY_SIZE(policy); i++) {
        const struct control_policy *p = &policy[i];
        uint64_t cap;
        memcpy(&cap, (const char *)caps + p->cap_offset, sizeof(cap));
        uint32_t word;
        if (vmx_control_compute(p->ctl_name, cap, p->required, p->optional, p->names, &word, err, errsz) != 0)
            return -1;
        memcpy((char *)&c + p->out_offset, &word, sizeof(word));
    }
    c.unrestricted_guest = c.proc2 & VMX_PROC2_CTL_UNRESTRICTED_GUEST;
    c.rdtscp = c.proc2 & VMX_PROC2_CTL_ENABLE_RDTSCP;
    c.invpcid = c.proc2 & VMX_PROC2_CTL_ENABLE_INVPCID;
    c.xsaves = c.proc2 & VMX_PROC2_CTL_ENABLE_XSAVES;
    c.save_preemption_timer = c.exit & VMX_EXIT_CTL_SAVE_PREEMPTION_TIMER;
    /* Allowed-1 and virtual NMIs on (SDM vol. 3, 25.6.2: it needs them). */
    c.nmi_window = (uint32_t)(caps->procbased >> 32) & VMX_PROC_CTL_NMI_WINDOW_EXITING &&
                   (c.pin & VMX_PIN_CTL_VIRTUAL_NMIS);
    *out = c;
    return 0;
}
