/* The VMCS fields (Intel SDM vol. 3, appendix B), listed once.
 *
 * Each field appears exactly once, as X(NAME, encoding). Everything else about it is
 * derived from the encoding, so it cannot drift out of step with the name:
 *   bit 0       access type: 1 = the "high" 32 bits of a 64-bit field
 *   bits 9:1    index
 *   bits 11:10  type: 0 control, 1 read-only data (VM-exit information), 2 guest, 3 host
 *   bits 14:13  width: 0 16-bit, 1 64-bit, 2 32-bit, 3 natural-width
 * Only full accesses are listed; VMCS_HIGH(f) names the upper half of a 64-bit field,
 * which 64-bit code never needs. Duplicate names or encodings fail to compile (enum and
 * switch in vmcs_fields.c), as does a malformed encoding. */
#ifndef KEEL_ARCH_X86_VMCS_FIELDS_H
#define KEEL_ARCH_X86_VMCS_FIELDS_H

#include "vmm/lib/types.h"

#define VMCS_FIELDS(X)                                                         \
    /* 16-bit control fields */                                                \
    X(VMCS_VPID, 0x0000)                                                       \
    X(VMCS_POSTED_INTR_NOTIFICATION_VECTOR, 0x0002)                            \
    X(VMCS_EPTP_INDEX, 0x0004)                                                 \
    X(VMCS_HLAT_PREFIX_SIZE, 0x0006)                                           \
    X(VMCS_LAST_PID_POINTER_INDEX, 0x0008)                                     \
    /* 16-bit guest-state fields */                                            \
    X(VMCS_GUEST_ES_SELECTOR, 0x0800)                                          \
    X(VMCS_GUEST_CS_SELECTOR, 0x0802)                                          \
    X(VMCS_GUEST_SS_SELECTOR, 0x0804)                                          \
    X(VMCS_GUEST_DS_SELECTOR, 0x0806)                                          \
    X(VMCS_GUEST_FS_SELECTOR, 0x0808)                                          \
    X(VMCS_GUEST_GS_SELECTOR, 0x080a)                                          \
    X(VMCS_GUEST_LDTR_SELECTOR, 0x080c)                                        \
    X(VMCS_GUEST_TR_SELECTOR, 0x080e)                                          \
    X(VMCS_GUEST_INTERRUPT_STATUS, 0x0810)                                     \
    X(VMCS_GUEST_PML_INDEX, 0x0812)                                            \
    X(VMCS_GUEST_UINV, 0x0814)                                                 \
    /* 16-bit host-state fields */                                             \
    X(VMCS_HOST_ES_SELECTOR, 0x0c00)                                           \
    X(VMCS_HOST_CS_SELECTOR, 0x0c02)                                           \
    X(VMCS_HOST_SS_SELECTOR, 0x0c04)                                           \
    X(VMCS_HOST_DS_SELECTOR, 0x0c06)                                           \
    X(VMCS_HOST_FS_SELECTOR, 0x0c08)                                           \
    X(VMCS_HOST_GS_SELECTOR, 0x0c0a)                                           \
    X(VMCS_HOST_TR_SELECTOR, 0x0c0c)                                           \
    /* 64-bit control fields */                                                \
    X(VMCS_IO_BITMAP_A, 0x2000)                                                \
    X(VMCS_IO_BITMAP_B, 0x2002)                                                \
    X(VMCS_MSR_BITMAP, 0x2004)                                                 \
    X(VMCS_EXIT_MSR_STORE_ADDR, 0x2006)                                        \
    X(VMCS_EXIT_MSR_LOAD_ADDR, 0x2008)                                         \
    X(VMCS_ENTRY_MSR_LOAD_ADDR, 0x200a)                                        \
    X(VMCS_EXECUTIVE_VMCS_POINTER, 0x200c)                                     \
    X(VMCS_PML_ADDRESS, 0x200e)                                                \
    X(VMCS_TSC_OFFSET, 0x2010)                                                 \
    X(VMCS_VIRTUAL_APIC_ADDR, 0x2012)                                          \
    X(VMCS_APIC_ACCESS_ADDR, 0x2014)                                           \
    X(VMCS_POSTED_INTR_DESC_ADDR, 0x2016)                                      \
    X(VMCS_VM_FUNCTION_CONTROLS, 0x2018)                                       \
    X(VMCS_EPT_POINTER, 0x201a)                                                \
    X(VMCS_EOI_EXIT_BITMAP0, 0x201c)                                           \
    X(VMCS_EOI_EXIT_BITMAP1, 0x201e)                                           \
    X(VMCS_EOI_EXIT_BITMAP2, 0x2020)                                           \
    X(VMCS_EOI_EXIT_BITMAP3, 0x2022)                                           \
    X(VMCS_EPTP_LIST_ADDR, 0x2024)                                             \
    X(VMCS_VMREAD_BITMAP_ADDR, 0x2026)                                         \
    X(VMCS_VMWRITE_BITMAP_ADDR, 0x2028)                                        \
    X(VMCS_VE_INFO_ADDR, 0x202a)                                               \
    X(VMCS_XSS_EXITING_BITMAP, 0x202c)                                         \
    X(VMCS_ENCLS_EXITING_BITMAP, 0x202e)                                       \
    X(VMCS_SPP_TABLE_POINTER, 0x2030)                                          \
    X(VMCS_TSC_MULTIPLIER, 0x2032)                                             \
    X(VMCS_TERTIARY_PROC_CONTROLS, 0x2034)                                     \
    X(VMCS_ENCLV_EXITING_BITMAP, 0x2036)                                       \
    X(VMCS_LOW_PASID_DIR_ADDR, 0x2038)                                         \
    X(VMCS_HIGH_PASID_DIR_ADDR, 0x203a)                                        \
    X(VMCS_SHARED_EPT_POINTER, 0x203c)                                         \
    X(VMCS_PCONFIG_EXITING_BITMAP, 0x203e)                                     \
    X(VMCS_HLAT_POINTER, 0x2040)                                               \
    X(VMCS_PID_POINTER_TABLE_ADDR, 0x2042)                                     \
    X(VMCS_SECONDARY_EXIT_CONTROLS, 0x2044)                                    \
    /* 64-bit read-only data field */                                          \
    X(VMCS_GUEST_PHYSICAL_ADDRESS, 0x2400)                                     \
    /* 64-bit guest-state fields */                                            \
    X(VMCS_LINK_POINTER, 0x2800)                                               \
    X(VMCS_GUEST_IA32_DEBUGCTL, 0x2802)                                        \
    X(VMCS_GUEST_IA32_PAT, 0x2804)                                             \
    X(VMCS_GUEST_IA32_EFER, 0x2806)                                            \
    X(VMCS_GUEST_IA32_PERF_GLOBAL_CTRL, 0x2808)                                \
    X(VMCS_GUEST_PDPTE0, 0x280a)                                               \
    X(VMCS_GUEST_PDPTE1, 0x280c)                                               \
    X(VMCS_GUEST_PDPTE2, 0x280e)                                               \
    X(VMCS_GUEST_PDPTE3, 0x2810)                                               \
    X(VMCS_GUEST_IA32_BNDCFGS, 0x2812)                                         \
    X(VMCS_GUEST_IA32_RTIT_CTL, 0x2814)                                        \
    X(VMCS_GUEST_IA32_LBR_CTL, 0x2816)                                         \
    X(VMCS_GUEST_IA32_PKRS, 0x2818)                                            \
    /* 64-bit host-state fields */                                             \
    X(VMCS_HOST_IA32_PAT, 0x2c00)                                              \
    X(VMCS_HOST_IA32_EFER, 0x2c02)                                             \
    X(VMCS_HOST_IA32_PERF_GLOBAL_CTRL, 0x2c04)                                 \
    X(VMCS_HOST_IA32_PKRS, 0x2c06)                                             \
    /* 32-bit control fields */                                                \
    X(VMCS_PIN_BASED_CONTROLS, 0x4000)                                         \
    X(VMCS_PROC_BASED_CONTROLS, 0x4002)                                        \
    X(VMCS_EXCEPTION_BITMAP, 0x4004)                                           \
    X(VMCS_PF_ERROR_CODE_MASK, 0x4006)                                         \
    X(VMCS_PF_ERROR_CODE_MATCH, 0x4008)                                        \
    X(VMCS_CR3_TARGET_COUNT, 0x400a)                                           \
    X(VMCS_EXIT_CONTROLS, 0x400c)                                              \
    X(VMCS_EXIT_MSR_STORE_COUNT, 0x400e)                                       \
    X(VMCS_EXIT_MSR_LOAD_COUNT, 0x4010)                                        \
    X(VMCS_ENTRY_CONTROLS, 0x4012)                                             \
    X(VMCS_ENTRY_MSR_LOAD_COUNT, 0x4014)                                       \
    X(VMCS_ENTRY_INTR_INFO, 0x4016)                                            \
    X(VMCS_ENTRY_EXCEPTION_ERROR_CODE, 0x4018)                                 \
    X(VMCS_ENTRY_INSTRUCTION_LENGTH, 0x401a)                                   \
    X(VMCS_TPR_THRESHOLD, 0x401c)                                              \
    X(VMCS_PROC_BASED_CONTROLS2, 0x401e)                                       \
    X(VMCS_PLE_GAP, 0x4020)                                                    \
    X(VMCS_PLE_WINDOW, 0x4022)                                                 \
    X(VMCS_INSTRUCTION_TIMEOUT_CONTROL, 0x4024)                                \
    /* 32-bit read-only data fields */                                         \
    X(VMCS_VM_INSTRUCTION_ERROR, 0x4400)                                       \
    X(VMCS_EXIT_REASON, 0x4402)                                                \
    X(VMCS_EXIT_INTR_INFO, 0x4404)                                             \
    X(VMCS_EXIT_INTR_ERROR_CODE, 0x4406)                                       \
    X(VMCS_IDT_VECTORING_INFO, 0x4408)                                         \
    X(VMCS_IDT_VECTORING_ERROR_CODE, 0x440a)                                   \
    X(VMCS_EXIT_INSTRUCTION_LENGTH, 0x440c)                                    \
    X(VMCS_EXIT_INSTRUCTION_INFO, 0x440e)                                      \
    /* 32-bit guest-state fields */                                            \
    X(VMCS_GUEST_ES_LIMIT, 0x4800)                                             \
    X(VMCS_GUEST_CS_LIMIT, 0x4802)                                             \
    X(VMCS_GUEST_SS_LIMIT, 0x4804)                                             \
    X(VMCS_GUEST_DS_LIMIT, 0x4806)                                             \
    X(VMCS_GUEST_FS_LIMIT, 0x4808)                                             \
    X(VMCS_GUEST_GS_LIMIT, 0x480a)                                             \
    X(VMCS_GUEST_LDTR_LIMIT, 0x480c)                                           \
    X(VMCS_GUEST_TR_LIMIT, 0x480e)                                             \
    X(VMCS_GUEST_GDTR_LIMIT, 0x4810)                                           \
    X(VMCS_GUEST_IDTR_LIMIT, 0x4812)                                           \
    X(VMCS_GUEST_ES_ACCESS_RIGHTS, 0x4814)                                     \
    X(VMCS_GUEST_CS_ACCESS_RIGHTS, 0x4816)                                     \
    X(VMCS_GUEST_SS_ACCESS_RIGHTS, 0x4818)                                     \
    X(VMCS_GUEST_DS_ACCESS_RIGHTS, 0x481a)                                     \
    X(VMCS_GUEST_FS_ACCESS_RIGHTS, 0x481c)                                     \
    X(VMCS_GUEST_GS_ACCESS_RIGHTS, 0x481e)                                     \
    X(VMCS_GUEST_LDTR_ACCESS_RIGHTS, 0x4820)                                   \
    X(VMCS_GUEST_TR_ACCESS_RIGHTS, 0x4822)                                     \
    X(VMCS_GUEST_INTERRUPTIBILITY, 0x4824)                                     \
    X(VMCS_GUEST_ACTIVITY_STATE, 0x4826)                                       \
    X(VMCS_GUEST_SMBASE, 0x4828)                                               \
    X(VMCS_GUEST_IA32_SYSENTER_CS, 0x482a)                                     \
    X(VMCS_PREEMPTION_TIMER_VALUE, 0x482e)                                     \
    /* 32-bit host-state field */                                              \
    X(VMCS_HOST_IA32_SYSENTER_CS, 0x4c00)                                      \
    /* natural-width control fields */                                         \
    X(VMCS_CR0_GUEST_HOST_MASK, 0x6000)                                        \
    X(VMCS_CR4_GUEST_HOST_MASK, 0x6002)                                        \
    X(VMCS_CR0_READ_SHADOW, 0x6004)                                            \
    X(VMCS_CR4_READ_SHADOW, 0x6006)                                            \
    X(VMCS_CR3_TARGET0, 0x6008)                                                \
    X(VMCS_CR3_TARGET1, 0x600a)                                                \
    X(VMCS_CR3_TARGET2, 0x600c)                                                \
    X(VMCS_CR3_TARGET3, 0x600e)                                                \
    /* natural-width read-only data fields */                                  \
    X(VMCS_EXIT_QUALIFICATION, 0x6400)                                         \
    X(VMCS_IO_RCX, 0x6402)                                                     \
    X(VMCS_IO_RSI, 0x6404)                                                     \
    X(VMCS_IO_RDI, 0x6406)                                                     \
    X(VMCS_IO_RIP, 0x6408)                                                     \
    X(VMCS_GUEST_LINEAR_ADDRESS, 0x640a)                                       \
    /* natural-width guest-state fields */                                     \
    X(VMCS_GUEST_CR0, 0x6800)                                                  \
    X(VMCS_GUEST_CR3, 0x6802)                                                  \
    X(VMCS_GUEST_CR4, 0x6804)                                                  \
    X(VMCS_GUEST_ES_BASE, 0x6806)                                              \
    X(VMCS_GUEST_CS_BASE, 0x6808)                                              \
    X(VMCS_GUEST_SS_BASE, 0x680a)                                              \
    X(VMCS_GUEST_DS_BASE, 0x680c)                                              \
    X(VMCS_GUEST_FS_BASE, 0x680e)                                              \
    X(VMCS_GUEST_GS_BASE, 0x6810)                                              \
    X(VMCS_GUEST_LDTR_BASE, 0x6812)                                            \
    X(VMCS_GUEST_TR_BASE, 0x6814)                                              \
    X(VMCS_GUEST_GDTR_BASE, 0x6816)                                            \
    X(VMCS_GUEST_IDTR_BASE, 0x6818)                                            \
    X(VMCS_GUEST_DR7, 0x681a)                                                  \
    X(VMCS_GUEST_RSP, 0x681c)                                                  \
    X(VMCS_GUEST_RIP, 0x681e)                                                  \
    X(VMCS_GUEST_RFLAGS, 0x6820)                                               \
    X(VMCS_GUEST_PENDING_DBG_EXCEPTIONS, 0x6822)                               \
    X(VMCS_GUEST_IA32_SYSENTER_ESP, 0x6824)                                    \
    X(VMCS_GUEST_IA32_SYSENTER_EIP, 0x6826)                                    \
    X(VMCS_GUEST_IA32_S_CET, 0x6828)                                           \
    X(VMCS_GUEST_SSP, 0x682a)                                                  \
    X(VMCS_GUEST_IA32_INTERRUPT_SSP_TABLE_ADDR, 0x682c)                        \
    /* natural-width host-state fields */                                      \
    X(VMCS_HOST_CR0, 0x6c00)                                                   \
    X(VMCS_HOST_CR3, 0x6c02)                                                   \
    X(VMCS_HOST_CR4, 0x6c04)                                                   \
    X(VMCS_HOST_FS_BASE, 0x6c06)                                               \
    X(VMCS_HOST_GS_BASE, 0x6c08)                                               \
    X(VMCS_HOST_TR_BASE, 0x6c0a)                                               \
    X(VMCS_HOST_GDTR_BASE, 0x6c0c)                                             \
    X(VMCS_HOST_IDTR_BASE, 0x6c0e)                                             \
    X(VMCS_HOST_IA32_SYSENTER_ESP, 0x6c10)                                     \
    X(VMCS_HOST_IA32_SYSENTER_EIP, 0x6c12)                                     \
    X(VMCS_HOST_RSP, 0x6c14)                                                   \
    X(VMCS_HOST_RIP, 0x6c16)                                                   \
    X(VMCS_HOST_IA32_S_CET, 0x6c18)                                            \
    X(VMCS_HOST_SSP, 0x6c1a)                                                   \
    X(VMCS_HOST_IA32_INTERRUPT_SSP_TABLE_ADDR, 0x6c1c)

enum vmcs_field {
#define VMCS_FIELD_ENUM(name, enc) name = (enc),
    VMCS_FIELDS(VMCS_FIELD_ENUM)
#undef VMCS_FIELD_ENUM
};

/* How many fields the list holds (full accesses only). */
enum {
#define VMCS_FIELD_ONE(name, enc) +1
    VMCS_FIELD_COUNT = 0 VMCS_FIELDS(VMCS_FIELD_ONE)
#undef VMCS_FIELD_ONE
};

/* Width code in bits 14:13 of an encoding. */
enum vmcs_width {
    VMCS_WIDTH_16 = 0,
    VMCS_WIDTH_64 = 1,
    VMCS_WIDTH_32 = 2,
    VMCS_WIDTH_NATURAL = 3,
};

/* Type code in bits 11:10 of an encoding. */
enum vmcs_field_type {
    VMCS_TYPE_CONTROL = 0,
    VMCS_TYPE_READ_ONLY = 1, /* VM-exit information: VMWRITE fails unless MISC bit 29 */
    VMCS_TYPE_GUEST = 2,
    VMCS_TYPE_HOST = 3,
};

/* These are macros, not functions, so they stay integer constant expressions and the
 * accessors in vmcs.h can check constant fields at compile time. */
#define VMCS_ENC_WIDTH(enc) ((((uint32_t)(enc)) >> 13) & 3u)
#define VMCS_ENC_TYPE(enc) ((((uint32_t)(enc)) >> 10) & 3u)
#define VMCS_ENC_IS_HIGH(enc) ((((uint32_t)(enc)) & 1u) != 0)
#define VMCS_HIGH(field) ((uint32_t)(field) | 1u)
/* The width VMREAD/VMWRITE of this encoding moves: the high half of a 64-bit field is
 * a 32-bit access; everything else is the field's own width. */
#define VMCS_ACCESS_WIDTH(enc) \
    ((VMCS_ENC_WIDTH(enc) == VMCS_WIDTH_64 && VMCS_ENC_IS_HIGH(enc)) ? (unsigned)VMCS_WIDTH_32 : VMCS_ENC_WIDTH(enc))

/* The bits a VMREAD of this encoding can return (a 64-bit host, so 64-bit and natural
 * width are whole). */
static inline uint64_t vmcs_access_mask(uint32_t enc)
{
    switch (VMCS_ACCESS_WIDTH(enc)) {
    case VMCS_WIDTH_16: return 0xffff;
    case VMCS_WIDTH_32: return 0xffffffff;
    default: return ~0ull;
    }
}

/* "VMCS_GUEST_RIP", or "VMCS_TSC_OFFSET_HIGH" for the high half of a 64-bit field;
 * "unknown VMCS field" for an encoding not in the list (never NULL, so it can go
 * straight into a message). */
const char *vmcs_field_name(uint32_t enc);
/* True when `enc` is a listed field or the high half of a listed 64-bit field. */
bool vmcs_field_known(uint32_t enc);
/* "16-bit", "64-bit", "32-bit" or "natural-width". */
const char *vmcs_width_name(unsigned width);

#endif
