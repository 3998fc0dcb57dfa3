/* The five VMX control words (SDM vol. 3, "VM-Execution Control Fields", "VM-Exit
 * Control Fields", "VM-Entry Control Fields"): one X-macro list per word gives the bit
 * masks and the SDM names, and Keel's policy turns a CPU's capability MSRs into the
 * values to write into every VMCS.
 *
 * Bits the lists leave out are reserved; some of them are "default1" and have to be
 * set, which the capability MSR's allowed-0 half takes care of. */
#ifndef KEEL_ARCH_X86_VMX_CONTROLS_H
#define KEEL_ARCH_X86_VMX_CONTROLS_H

#include "vmm/lib/types.h"

struct vmx_caps;

/* X(NAME, bit, "SDM name") */
#define VMX_PIN_CONTROLS(X)                                          \
    X(EXTERNAL_INTERRUPT_EXITING, 0, "external-interrupt exiting")   \
    X(NMI_EXITING, 3, "NMI exiting")                                 \
    X(VIRTUAL_NMIS, 5, "virtual NMIs")                               \
    X(PREEMPTION_TIMER, 6, "activate VMX-preemption timer")          \
    X(POSTED_INTERRUPTS, 7, "process posted interrupts")

#define VMX_PROC_CONTROLS(X)                                         \
    X(INTERRUPT_WINDOW_EXITING, 2, "interrupt-window exiting")       \
    X(TSC_OFFSETTING, 3, "use TSC offsetting")                       \
    X(HLT_EXITING, 7, "HLT exiting")                                 \
    X(INVLPG_EXITING, 9, "INVLPG exiting")                           \
    X(MWAIT_EXITING, 10, "MWAIT exiting")                            \
    X(RDPMC_EXITING, 11, "RDPMC exiting")                            \
    X(RDTSC_EXITING, 12, "RDTSC exiting")                            \
    X(CR3_LOAD_EXITING, 15, "CR3-load exiting")                      \
    X(CR3_STORE_EXITING, 16, "CR3-store exiting")                    \
    X(TERTIARY_CONTROLS, 17, "activate tertiary controls")           \
    X(CR8_LOAD_EXITING, 19, "CR8-load exiting")                      \
    X(CR8_STORE_EXITING, 20, "CR8-store exiting")                    \
    X(TPR_SHADOW, 21, "use TPR shadow")                              \
    X(NMI_WINDOW_EXITING, 22, "NMI-window exiting")                  \
    X(MOV_DR_EXITING, 23, "MOV-DR exiting")                          \
    X(UNCONDITIONAL_IO_EXITING, 24, "unconditional I/O exiting")     \
    X(IO_BITMAPS, 25, "use I/O bitmaps")                             \
    X(MONITOR_TRAP_FLAG, 27, "monitor trap flag")                    \
    X(MSR_BITMAPS, 28, "use MSR bitmaps")                            \
    X(MONITOR_EXITING, 29, "MONITOR exiting")                        \
    X(PAUSE_EXITING, 30, "PAUSE exiting")                            \
    X(SECONDARY_CONTROLS, 31, "activate secondary controls")

#define VMX_PROC2_CONTROLS(X)                                                   \
    X(VIRTUALIZE_APIC_ACCESSES, 0, "virtualize APIC accesses")                  \
    X(ENABLE_EPT, 1, "enable EPT")                                              \
    X(DESCRIPTOR_TABLE_EXITING, 2, "descriptor-table exiting")                  \
    X(ENABLE_RDTSCP, 3, "enable RDTSCP")                                        \
    X(VIRTUALIZE_X2APIC, 4, "virtualize x2APIC mode")                           \
    X(ENABLE_VPID, 5, "enable VPID")                                            \
    X(WBINVD_EXITING, 6, "WBINVD exiting")                                      \
    X(UNRESTRICTED_GUEST, 7, "unrestricted guest")                              \
    X(APIC_REGISTER_VIRT, 8, "APIC-register virtualization")                    \
    X(VIRTUAL_INTR_DELIVERY, 9, "virtual-interrupt delivery")                   \
    X(PAUSE_LOOP_EXITING, 10, "PAUSE-loop exiting")                             \
    X(RDRAND_EXITING, 11, "RDRAND exiting")                                     \
    X(ENABLE_INVPCID, 12, "enable INVPCID")                                     \
    X(ENABLE_VMFUNC, 13, "enable VM functions")                                 \
    X(VMCS_SHADOWING, 14, "VMCS shadowing")                                     \
    X(ENCLS_EXITING, 15, "enable ENCLS exiting")                                \
    X(RDSEED_EXITING, 16, "RDSEED exiting")                                     \
    X(ENABLE_PML, 17, "enable PML")                                             \
    X(EPT_VIOLATION_VE, 18, "EPT-violation #VE")                                \
    X(CONCEAL_FROM_PT, 19, "conceal VMX from PT")                               \
    X(ENABLE_XSAVES, 20, "enable XSAVES/XRSTORS")                               \
    X(PASID_TRANSLATION, 21, "PASID translation")                               \
    X(MODE_BASED_EPT_EXEC, 22, "mode-based execute control for EPT")            \
    X(SUBPAGE_WRITE_PERMS, 23, "sub-page write permissions for EPT")            \
    X(PT_GUEST_PHYSICAL, 24, "Intel PT uses guest physical addresses")          \
    X(TSC_SCALING, 25, "use TSC scaling")                                       \
    X(USER_WAIT_PAUSE, 26, "enable user wait and pause")                        \
    X(ENABLE_PCONFIG, 27, "enable PCONFIG")                                     \
    X(ENCLV_EXITING, 28, "enable ENCLV exiting")                                \
    X(BUS_LOCK_DETECTION, 30, "VMM bus-lock detection")                         \
    X(INSTRUCTION_TIMEOUT, 31, "instruction timeout")

#define VMX_EXIT_CONTROLS(X)                                                    \
    X(SAVE_DEBUG_CONTROLS, 2, "save debug controls")                            \
    X(HOST_ADDRESS_SPACE_SIZE, 9, "host address-space size")                    \
    X(LOAD_PERF_GLOBAL_CTRL, 12, "load IA32_PERF_GLOBAL_CTRL")                  \
    X(ACK_INTERRUPT_ON_EXIT, 15, "acknowledge interrupt on exit")               \
    X(SAVE_IA32_PAT, 18, "save IA32_PAT")                                       \
    X(LOAD_IA32_PAT, 19, "load IA32_PAT")                                       \
    X(SAVE_IA32_EFER, 20, "save IA32_EFER")                                     \
    X(LOAD_IA32_EFER, 21, "load IA32_EFER")                                     \
    X(SAVE_PREEMPTION_TIMER, 22, "save VMX-preemption timer value")             \
    X(CLEAR_BNDCFGS, 23, "clear IA32_BNDCFGS")                                  \
    X(CONCEAL_FROM_PT, 24, "conceal VMX from PT")                               \
    X(CLEAR_RTIT_CTL, 25, "clear IA32_RTIT_CTL")                                \
    X(CLEAR_LBR_CTL, 26, "clear IA32_LBR_CTL")                                  \
    X(CLEAR_UINV, 27, "clear UINV")                                             \
    X(LOAD_CET_STATE, 28, "load CET state")                                     \
    X(LOAD_PKRS, 29, "load PKRS")                                               \
    X(SAVE_PERF_GLOBAL_CTRL, 30, "save IA32_PERF_GLOBAL_CTRL")                  \
    X(SECONDARY_CONTROLS, 31, "activate secondary controls")

#define VMX_ENTRY_CONTROLS(X)                                                   \
    X(LOAD_DEBUG_CONTROLS, 2, "load debug controls")                            \
    X(IA32E_MODE_GUEST, 9, "IA-32e mode guest")                                 \
    X(ENTRY_TO_SMM, 10, "entry to SMM")                                         \
    X(DEACTIVATE_DUAL_MONITOR, 11, "deactivate dual-monitor treatment")         \
    X(LOAD_PERF_GLOBAL_CTRL, 13, "load IA32_PERF_GLOBAL_CTRL")                  \
    X(LOAD_IA32_PAT, 14, "load IA32_PAT")                                       \
    X(LOAD_IA32_EFER, 15, "load IA32_EFER")                                     \
    X(LOAD_BNDCFGS, 16, "load IA32_BNDCFGS")                                    \
    X(CONCEAL_FROM_PT, 17, "conceal VMX from PT")                               \
    X(LOAD_RTIT_CTL, 18, "load IA32_RTIT_CTL")                                  \
    X(LOAD_UINV, 19, "load UINV")                                               \
    X(LOAD_CET_STATE, 20, "load CET state")                                     \
    X(LOAD_LBR_CTL, 21, "load guest IA32_LBR_CTL")                              \
    X(LOAD_PKRS, 22, "load PKRS")

/* Masks: VMX_PIN_CTL_NMI_EXITING, VMX_PROC_CTL_HLT_EXITING, VMX_PROC2_CTL_ENABLE_EPT,
 * VMX_EXIT_CTL_LOAD_IA32_EFER, VMX_ENTRY_CTL_IA32E_MODE_GUEST, ... (unsigned values;
 * bit 31 does not fit an int, which GCC accepts outside -pedantic). */
#define VMX_CTL_MASK_ENUM(prefix, name, bit) prefix##name = 1u << (bit),
#define VMX_PIN_CTL_ENUM(name, bit, text) VMX_CTL_MASK_ENUM(VMX_PIN_CTL_, name, bit)
#define VMX_PROC_CTL_ENUM(name, bit, text) VMX_CTL_MASK_ENUM(VMX_PROC_CTL_, name, bit)
#define VMX_PROC2_CTL_ENUM(name, bit, text) VMX_CTL_MASK_ENUM(VMX_PROC2_CTL_, name, bit)
#define VMX_EXIT_CTL_ENUM(name, bit, text) VMX_CTL_MASK_ENUM(VMX_EXIT_CTL_, name, bit)
#define VMX_ENTRY_CTL_ENUM(name, bit, text) VMX_CTL_MASK_ENUM(VMX_ENTRY_CTL_, name, bit)
enum vmx_pin_ctl { VMX_PIN_CONTROLS(VMX_PIN_CTL_ENUM) };
enum vmx_proc_ctl { VMX_PROC_CONTROLS(VMX_PROC_CTL_ENUM) };
enum vmx_proc2_ctl { VMX_PROC2_CONTROLS(VMX_PROC2_CTL_ENUM) };
enum vmx_exit_ctl { VMX_EXIT_CONTROLS(VMX_EXIT_CTL_ENUM) };
enum vmx_entry_ctl { VMX_ENTRY_CONTROLS(VMX_ENTRY_CTL_ENUM) };
#undef VMX_PIN_CTL_ENUM
#undef VMX_PROC_CTL_ENUM
#undef VMX_PROC2_CTL_ENUM
#undef VMX_EXIT_CTL_ENUM
#undef VMX_ENTRY_CTL_ENUM
#undef VMX_CTL_MASK_ENUM

/* SDM names indexed by bit number; NULL for reserved bits. */
extern const char *const vmx_pin_ctl_names[32];
extern const char *const vmx_proc_ctl_names[32];
extern const char *const vmx_proc2_ctl_names[32];
extern const char *const vmx_exit_ctl_names[32];
extern const char *const vmx_entry_ctl_names[32];

/* The control values for every VMCS Keel builds, and which optional features they
 * turned on. Per-vCPU bits (IA-32e mode guest, interrupt/NMI-window exiting, ...) are
 * not in here: the vCPU code sets them on top. */
struct vmx_controls {
    uint32_t pin, proc, proc2, exit, entry;
    bool unrestricted_guest;    /* proc2: real-mode and unpaged guests can run */
    bool rdtscp;                /* proc2: RDTSCP does not #UD in the guest */
    bool invpcid;               /* proc2: INVPCID does not #UD in the guest */
    bool xsaves;                /* proc2: XSAVES/XRSTORS allowed; VMCS_XSS_EXITING_BITMAP must be written */
    bool save_preemption_timer; /* exit: the timer value is saved on every VM exit */
    bool nmi_window;            /* proc: NMI-window exiting may be turned on per vCPU */
};

/* One control word from its capability MSR: allowed-0 bits (low dword) are forced to
 * 1, `required` bits must be allowed-1 (high dword), `optional` bits are set where
 * allowed-1. `ctl_name` ("VM-exit control") and `names` (may be NULL) only make the
 * error readable, e.g. "VM-exit control bit 22 'save VMX-preemption timer value'
 * cannot be set on this CPU". Returns 0 with *out set, or -1 with the reason in err
 * (always terminated when errsz > 0) and *out = 0; an MSR that demands a bit it does
 * not allow is rejected as malformed. */
int vmx_control_compute(const char *ctl_name, uint64_t cap_msr, uint32_t required, uint32_t optional,
                        const char *const names[32], uint32_t *out, char *err, size_t errsz);

/* All five words from Keel's policy (in vmx_controls.c) and the capability MSRs in
 * `caps` (which hold the TRUE variants when the CPU has them). Returns 0, or -1 with
 * the first word that cannot be satisfied explained in err and *out zeroed. */
int vmx_controls_compute(const struct vmx_caps *caps, struct vmx_controls *out, char *err, size_t errsz);

#endif
