/* Keel's hypercall ABI, shared by Keel and guests (include it from guest code too:
 * it needs only <stdint.h>). Documented for users in docs/hypercalls.md.
 *
 * A guest calls Keel with VMCALL: function number in EAX/RAX, arguments in
 * EBX/RBX, ECX/RCX, EDX/RDX (the upper halves are ignored for 32-bit guests). The result
 * comes back in EAX/RAX: >= 0 on success, a negative KEEL_E* on failure. Other
 * registers are preserved. VMCALL from guest ring > 0 fails with KEEL_EPERM.
 *
 * Discovery: CPUID leaf 0x40000000 returns EAX = highest hypervisor leaf and the
 * signature "KeelKeelKeel" in EBX, ECX, EDX; leaf 0x40000001 returns EAX = ABI version;
 * leaf 0x40000010 the TSC and bus rates. */
#ifndef KEEL_VMM_HYPERCALL_ABI_H
#define KEEL_VMM_HYPERCALL_ABI_H

#include <stdint.h>

#define KEEL_CPUID_BASE 0x40000000u
#define KEEL_CPUID_ABI 0x40000001u
/* TSC and bus (LAPIC timer) rates in kHz, in EAX and EBX: VMware's timing leaf, which
 * other hypervisors also offer; both 0 when Keel has not calibrated its TSC. */
#define KEEL_CPUID_TIMING 0x40000010u
#define KEEL_CPUID_MAX KEEL_CPUID_TIMING
#define KEEL_SIGNATURE_EBX 0x6c65654bu /* "Keel" */
#define KEEL_SIGNATURE_ECX 0x6c65654bu
#define KEEL_SIGNATURE_EDX 0x6c65654bu
#define KEEL_ABI_VERSION 2u

/* Function numbers. */
#define KEEL_HC_CONSOLE_WRITE 1u /* (gpa buf, len <= KEEL_CONSOLE_MAX) -> bytes written */
#define KEEL_HC_VM_INFO 2u       /* (gpa out, size >= sizeof(struct keel_vm_info)) -> 0 */
#define KEEL_HC_YIELD 3u         /* () -> 0, after other vCPUs on this CPU have run */
#define KEEL_HC_EXIT 4u          /* (code) -> does not return: the VM stops with `code` */
#define KEEL_HC_STATS 5u         /* (flags KEEL_STATS_*) -> lines printed (0 if only reset) */

/* KEEL_HC_STATS flags: print the VM's exit statistics on Keel's console as JSON Lines,
 * then (or only) start them afresh. */
#define KEEL_STATS_PRINT 1u
#define KEEL_STATS_RESET 2u

#define KEEL_CONSOLE_MAX 4096u

/* Errors (returned negated). */
#define KEEL_EINVAL 1u  /* unknown function or bad argument */
#define KEEL_EFAULT 2u  /* a buffer is not wholly inside the VM's RAM */
#define KEEL_EPERM 3u   /* called from guest ring > 0 */

struct keel_vm_info {
    uint32_t abi_version;
    uint32_t vm_id;
    uint32_t vcpu_id;
    uint32_t host_cpu;   /* physical CPU the vCPU ran on when it called */
    uint64_t memory_bytes;
    uint64_t tsc_hz;     /* 0 when Keel could not calibrate the TSC */
    char name[32];       /* NUL-terminated */
    /* Since ABI 2: the scheduler's view of the calling vCPU. Times in TSC ticks since
     * the VM started: on a CPU (its guest time and Keel's on its exits), runnable but
     * waiting for one, and blocked (HLT, waiting for SIPI). */
    uint32_t weight;     /* its share under contention (keel.cfg weight) */
    uint32_t migrations; /* moves from one host CPU to another */
    uint64_t run_tsc;
    uint64_t wait_tsc;
    uint64_t blocked_tsc;
};

#endif
