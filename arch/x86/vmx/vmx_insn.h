/* The VMX instructions as C functions.
 *
 * `_safe` forms return what the instruction reported (enum vmx_status) and leave the
 * decision to the caller: use them where failure is an expected outcome (probing,
 * tearing down after an error). Plain forms are for the normal path, where a failure
 * means Keel's own state is wrong: they report it through vmx_insn_failed and panic.
 *
 * Host unit tests (KEEL_HOST_TEST) get declarations of the `_safe` forms instead of the
 * inline assembly, so a test can stand in for the hardware with a fake VMCS. */
#ifndef KEEL_ARCH_X86_VMX_INSN_H
#define KEEL_ARCH_X86_VMX_INSN_H

#include "vmm/lib/types.h"
#include "arch/x86/vmx/vmx_errors.h"

/* INVEPT and INVVPID types (SDM vol. 3, INVEPT/INVVPID instruction reference). */
#define INVEPT_SINGLE_CONTEXT 1
#define INVEPT_ALL_CONTEXT 2
#define INVVPID_INDIVIDUAL_ADDRESS 0
#define INVVPID_SINGLE_CONTEXT 1
#define INVVPID_ALL_CONTEXT 2

#ifdef KEEL_HOST_TEST

enum vmx_status vmx_vmxon_safe(hpa_t vmxon_region);
enum vmx_status vmx_vmxoff_safe(void);
enum vmx_status vmx_vmclear_safe(hpa_t vmcs);
enum vmx_status vmx_vmptrld_safe(hpa_t vmcs);
enum vmx_status vmx_vmptrst_safe(hpa_t *vmcs);
enum vmx_status vmx_vmread_safe(uint32_t field, uint64_t *value);
enum vmx_status vmx_vmwrite_safe(uint32_t field, uint64_t value);
enum vmx_status vmx_invept_safe(uint64_t type, uint64_t eptp);
enum vmx_status vmx_invvpid_safe(uint64_t type, uint16_t vpid, uint64_t linear);

#else

static inline enum vmx_status vmx_status_from_flags(bool cf, bool zf)
{
    return cf ? VMX_FAIL_INVALID : zf ? VMX_FAIL_VALID : VMX_OK;
}

/* VMXON, VMCLEAR and VMPTRLD take a memory operand holding the physical address. */
static inline enum vmx_status vmx_vmxon_safe(hpa_t vmxon_region)
{
    bool cf, zf;
    __asm__ volatile("vmxon %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(vmxon_region) : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmxoff_safe(void)
{
    bool cf, zf;
    __asm__ volatile("vmxoff" : "=@ccc"(cf), "=@ccz"(zf) : : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmclear_safe(hpa_t vmcs)
{
    bool cf, zf;
    __asm__ volatile("vmclear %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(vmcs) : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmptrld_safe(hpa_t vmcs)
{
    bool cf, zf;
    __asm__ volatile("vmptrld %[pa]" : "=@ccc"(cf), "=@ccz"(zf) : [pa] "m"(vmcs) : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmptrst_safe(hpa_t *vmcs)
{
    bool cf, zf;
    __asm__ volatile("vmptrst %[pa]" : [pa] "=m"(*vmcs), "=@ccc"(cf), "=@ccz"(zf) : : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmread_safe(uint32_t field, uint64_t *value)
{
    bool cf, zf;
    uint64_t v;
    __asm__ volatile("vmread %[f], %[v]"
                     : [v] "=rm"(v), "=@ccc"(cf), "=@ccz"(zf)
                     : [f] "r"((uint64_t)field)
                     : "memory");
    *value = v;
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_vmwrite_safe(uint32_t field, uint64_t value)
{
    bool cf, zf;
    __asm__ volatile("vmwrite %[v], %[f]"
                     : "=@ccc"(cf), "=@ccz"(zf)
                     : [f] "r"((uint64_t)field), [v] "rm"(value)
                     : "memory");
    return vmx_status_from_flags(cf, zf);
}

/* Both take a 128-bit descriptor in memory and the type in a register. */
static inline enum vmx_status vmx_invept_safe(uint64_t type, uint64_t eptp)
{
    struct { uint64_t eptp, reserved; } desc = {eptp, 0};
    bool cf, zf;
    __asm__ volatile("invept %[d], %[t]" : "=@ccc"(cf), "=@ccz"(zf) : [d] "m"(desc), [t] "r"(type) : "memory");
    return vmx_status_from_flags(cf, zf);
}

static inline enum vmx_status vmx_invvpid_safe(uint64_t type, uint16_t vpid, uint64_t linear)
{
    struct { uint64_t vpid, linear; } desc = {vpid, linear}; /* bits 63:16 of the first word are reserved */
    bool cf, zf;
    __asm__ volatile("invvpid %[d], %[t]" : "=@ccc"(cf), "=@ccz"(zf) : [d] "m"(desc), [t] "r"(type) : "memory");
    return vmx_status_from_flags(cf, zf);
}

#endif /* KEEL_HOST_TEST */

static inline enum vmx_status vmx_invept_single_safe(uint64_t eptp) { return vmx_invept_safe(INVEPT_SINGLE_CONTEXT, eptp); }
static inline enum vmx_status vmx_invept_all_safe(void) { return vmx_invept_safe(INVEPT_ALL_CONTEXT, 0); }
static inline enum vmx_status vmx_invvpid_addr_safe(uint16_t vpid, gva_t linear)
{
    return vmx_invvpid_safe(INVVPID_INDIVIDUAL_ADDRESS, vpid, linear);
}
static inline enum vmx_status vmx_invvpid_single_safe(uint16_t vpid) { return vmx_invvpid_safe(INVVPID_SINGLE_CONTEXT, vpid, 0); }
static inline enum vmx_status vmx_invvpid_all_safe(void) { return vmx_invvpid_safe(INVVPID_ALL_CONTEXT, 0, 0); }

/* Plain forms: failure is fatal and reported with the operand. */
#define VMX_CHECKED(insn, call, arg)                    \
    do {                                                \
        enum vmx_status st_ = (call);                   \
        if (__builtin_expect(st_ != VMX_OK, 0))         \
            vmx_insn_failed(insn, st_, (uint64_t)(arg)); \
    } while (0)

static inline void vmx_vmxon(hpa_t region) { VMX_CHECKED("VMXON", vmx_vmxon_safe(region), region); }
static inline void vmx_vmxoff(void) { VMX_CHECKED("VMXOFF", vmx_vmxoff_safe(), 0); }
static inline void vmx_vmclear(hpa_t vmcs) { VMX_CHECKED("VMCLEAR", vmx_vmclear_safe(vmcs), vmcs); }
static inline void vmx_vmptrld(hpa_t vmcs) { VMX_CHECKED("VMPTRLD", vmx_vmptrld_safe(vmcs), vmcs); }
static inline hpa_t vmx_vmptrst(void)
{
    hpa_t pa = 0;
    VMX_CHECKED("VMPTRST", vmx_vmptrst_safe(&pa), 0);
    return pa;
}
#ifdef KEEL_HOST_TEST
static inline uint64_t vmx_vmread(uint32_t field)
{
    uint64_t v = 0;
    VMX_CHECKED("VMREAD", vmx_vmread_safe(field, &v), field);
    return v;
}
static inline void vmx_vmwrite(uint32_t field, uint64_t value) { VMX_CHECKED("VMWRITE", vmx_vmwrite_safe(field, value), field); }
#define vmx_vmread_on_exit vmx_vmread
#define vmx_vmwrite_on_exit vmx_vmwrite
#else
/* VMREAD and VMWRITE sit on the exit path several times per exit: one JBE (CF or ZF)
 * checks both failure kinds, and the failure path runs the instruction again through
 * the _safe form to learn which one it was. */
static inline uint64_t vmx_vmread(uint32_t field)
{
    uint64_t v;
    __asm__ goto("vmread %[f], %[v]\n\tjbe %l[failed]" : [v] "=r"(v) : [f] "r"((uint64_t)field) : "cc" : failed);
    return v;
failed:
    VMX_CHECKED("VMREAD", vmx_vmread_safe(field, &v), field);
    return v;
}
static inline void vmx_vmwrite(uint32_t field, uint64_t value)
{
    __asm__ goto("vmwrite %[v], %[f]\n\tjbe %l[failed]" : : [f] "r"((uint64_t)field), [v] "rm"(value)
                 : "cc", "memory" : failed);
    return;
failed:
    VMX_CHECKED("VMWRITE", vmx_vmwrite_safe(field, value), field);
}
/* Between a VM exit and the next entry the current VMCS is the one the CPU just left,
 * so VMREAD and VMWRITE of a field Keel uses cannot fail (the failures are "no current
 * VMCS", an unsupported field and a read-only one; vmcs.h rules out the last two at
 * build time). The run loop's few accesses per exit go without the status check. */
static inline uint64_t vmx_vmread_on_exit(uint32_t field)
{
    uint64_t v;
    __asm__ volatile("vmread %[f], %[v]" : [v] "=r"(v) : [f] "r"((uint64_t)field) : "cc");
    return v;
}
static inline void vmx_vmwrite_on_exit(uint32_t field, uint64_t value)
{
    __asm__ volatile("vmwrite %[v], %[f]" : : [f] "r"((uint64_t)field), [v] "rm"(value) : "cc", "memory");
}
#endif
static inline void vmx_invept_single(uint64_t eptp) { VMX_CHECKED("INVEPT single-context", vmx_invept_single_safe(eptp), eptp); }
static inline void vmx_invept_all(void) { VMX_CHECKED("INVEPT all-context", vmx_invept_all_safe(), 0); }
static inline void vmx_invvpid_addr(uint16_t vpid, gva_t linear)
{
    VMX_CHECKED("INVVPID individual-address", vmx_invvpid_addr_safe(vpid, linear), linear);
}
static inline void vmx_invvpid_single(uint16_t vpid) { VMX_CHECKED("INVVPID single-context", vmx_invvpid_single_safe(vpid), vpid); }
static inline void vmx_invvpid_all(void) { VMX_CHECKED("INVVPID all-context", vmx_invvpid_all_safe(), 0); }

#undef VMX_CHECKED

#endif
