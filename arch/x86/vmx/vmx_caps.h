/* What this machine's VT-x can do: read from the capability MSRs on every CPU,
 * judged against what Keel needs, and summarised once at boot. */
#ifndef KEEL_ARCH_X86_VMX_CAPS_H
#define KEEL_ARCH_X86_VMX_CAPS_H

#include "vmm/lib/types.h"

struct percpu;

struct vmx_caps {
    uint64_t basic;
    uint64_t pinbased, procbased, procbased2, exit, entry; /* TRUE_ variants when offered */
    uint64_t misc;
    uint64_t ept_vpid;
    uint64_t cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

/* Secondary processor-based controls (allowed-1 half of the MSR). */
#define VMX_PROC2_EPT BIT(1)
#define VMX_PROC2_VPID BIT(5)
#define VMX_PROC2_UNRESTRICTED BIT(7)
#define VMX_PROC_SECONDARY BIT(31)
#define VMX_PROC_MONITOR_TRAP BIT(27)
#define VMX_PIN_PREEMPTION_TIMER BIT(6)
#define VMX_PIN_POSTED_INTERRUPTS BIT(7)

#define EPT_CAP_WALK4 BIT(6)
#define EPT_CAP_UC BIT(8)
#define EPT_CAP_WB BIT(14)
#define EPT_CAP_2M BIT(16)
#define EPT_CAP_1G BIT(17)
#define EPT_CAP_INVEPT BIT(20)
#define EPT_CAP_AD BIT(21)
#define EPT_CAP_INVEPT_SINGLE BIT(25)
#define EPT_CAP_INVEPT_ALL BIT(26)
#define VPID_CAP_INVVPID BIT(32)
#define VPID_CAP_INVVPID_SINGLE BIT(41)
#define VPID_CAP_INVVPID_ALL BIT(42)

static inline uint32_t vmx_vmcs_revision(const struct vmx_caps *c) { return (uint32_t)(c->basic & 0x7fffffff); }
static inline bool vmx_has_true_ctls(const struct vmx_caps *c) { return c->basic & BIT(55); }
/* A control can be 1 when its bit is set in the high half of the capability MSR. */
static inline bool vmx_allowed1(uint64_t cap, uint64_t bit) { return (cap >> 32) & bit; }
static inline unsigned vmx_preemption_timer_rate(const struct vmx_caps *c) { return c->misc & 0x1f; }

/* Names every feature Keel requires that `c` lacks, comma-separated, into buf; returns
 * how many are missing (0: this CPU can run Keel's guests). */
int vmx_caps_missing(const struct vmx_caps *c, char *buf, size_t size);
/* One-line descriptions for the boot summary. */
void vmx_caps_summary(const struct vmx_caps *c, char *buf, size_t size);
void vmx_caps_ept_summary(const struct vmx_caps *c, char *buf, size_t size);

/* Checks CPUID and IA32_FEATURE_CONTROL on the calling CPU (enabling and locking VMX
 * when firmware left the MSR unlocked), reads the capability MSRs into the boot CPU's
 * copy or compares them with it, records the state in p->vmx_state and prints one line. */
void vmx_detect_this_cpu(struct percpu *p);
/* The capabilities read on the boot CPU. */
const struct vmx_caps *vmx_boot_caps(void);
/* Prints the boot summary (once, on the boot CPU, after vmx_detect_this_cpu). */
void vmx_report_summary(void);

#endif
