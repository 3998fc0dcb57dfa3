/* Judging VT-x capabilities. Pure functions of the MSR values, so they are tested on
 * the host against the values Bochs reports. */
#include "arch/x86/vmx/vmx_caps.h"
#include "vmm/lib/console.h"
#include "vmm/lib/string.h"

struct requirement {
    const char *name;
    bool (*present)(const struct vmx_caps *c);
};

static bool has_secondary(const struct vmx_caps *c) { return vmx_allowed1(c->procbased, VMX_PROC_SECONDARY); }
static bool has_ept(const struct vmx_caps *c) { return has_secondary(c) && vmx_allowed1(c->procbased2, VMX_PROC2_EPT); }
static bool has_ept_walk4(const struct vmx_caps *c) { return (c->ept_vpid & EPT_CAP_WALK4) != 0; }
static bool has_ept_wb(const struct vmx_caps *c) { return (c->ept_vpid & EPT_CAP_WB) != 0; }
static bool has_invept(const struct vmx_caps *c) { return (c->ept_vpid & EPT_CAP_INVEPT) && (c->ept_vpid & (EPT_CAP_INVEPT_SINGLE | EPT_CAP_INVEPT_ALL)); }
static bool has_vpid(const struct vmx_caps *c) { return has_secondary(c) && vmx_allowed1(c->procbased2, VMX_PROC2_VPID); }
static bool has_invvpid(const struct vmx_caps *c) { return (c->ept_vpid & VPID_CAP_INVVPID) != 0; }
static bool has_preempt(const struct vmx_caps *c) { return vmx_allowed1(c->pinbased, VMX_PIN_PREEMPTION_TIMER); }
static bool has_wb_vmcs(const struct vmx_caps *c) { return ((c->basic >> 50) & 0xf) == 6; }

/* What Keel cannot work without: EPT isolation, tagged TLBs, and the preemption timer
 * as the scheduler tick. Unrestricted guest is optional (only real-mode guests need it). */
static const struct requirement requirements[] = {
    {"secondary processor-based controls", has_secondary},
    {"EPT", has_ept},
    {"EPT 4-level page walk", has_ept_walk4},
    {"EPT write-back memory type", has_ept_wb},
    {"INVEPT", has_invept},
    {"VPID", has_vpid},
    {"INVVPID", has_invvpid},
    {"VMX-preemption timer", has_preempt},
    {"write-back VMCS memory", has_wb_vmcs},
};

int vmx_caps_missing(const struct vmx_caps *c, char *buf, size_t size)
{
    int missing = 0;
    size_t used = 0;
    if (size)
        buf[0] = 0;
    for (size_t i = 0; i < ARRAY_SIZE(requirements); i++) {
        if (requirements[i].present(c))
            continue;
        if (used < size) {
            int n = ksnprintf(buf + used, size - used, "%s%s", missing ? ", " : "", requirements[i].name);
            used += n > 0 ? (size_t)n : 0;
        }
        missing++;
    }
    return missing;
}

void vmx_caps_summary(const struct vmx_caps *c, char *buf, size_t size)
{
    ksnprintf(buf, size, "VMCS revision 0x%x%s, VPID %s, unrestricted guest %s, preemption timer %s (rate 2^%u), monitor trap flag %s",
              vmx_vmcs_revision(c), vmx_has_true_ctls(c) ? " (TRUE controls)" : "",
              has_vpid(c) ? "yes" : "no",
              has_secondary(c) && vmx_allowed1(c->procbased2, VMX_PROC2_UNRESTRICTED) ? "yes" : "no",
              has_preempt(c) ? "yes" : "no", vmx_preemption_timer_rate(c),
              vmx_allowed1(c->procbased, VMX_PROC_MONITOR_TRAP) ? "yes" : "no");
}

void vmx_caps_ept_summary(const struct vmx_caps *c, char *buf, size_t size)
{
    uint64_t e = c->ept_vpid;
    if (!has_ept(c)) {
        ksnprintf(buf, size, "EPT not supported");
        return;
    }
    ksnprintf(buf, size, "EPT %s, memory types%s%s, pages 4K%s%s, A/D bits %s, INVEPT%s%s, INVVPID%s%s",
              (e & EPT_CAP_WALK4) ? "4-level" : "without 4-level walk", (e & EPT_CAP_WB) ? " WB" : "",
              (e & EPT_CAP_UC) ? " UC" : "", (e & EPT_CAP_2M) ? "/2M" : "", (e & EPT_CAP_1G) ? "/1G" : "",
              (e & EPT_CAP_AD) ? "yes" : "no", (e & EPT_CAP_INVEPT_SINGLE) ? " single" : "",
              (e & EPT_CAP_INVEPT_ALL) ? " all" : "", (e & VPID_CAP_INVVPID_SINGLE) ? " single" : "",
              (e & VPID_CAP_INVVPID_ALL) ? " all" : "");
}
