/* Width-checked access to the current VMCS.
 *
 * vmcs_read16/32/64/nat and vmcs_write16/32/64/nat only accept a field of that width
 * (the width is read from the encoding, see vmcs_fields.h). With a constant field, the
 * usual case, a mismatch is a compile error; with a field computed at run time it is a
 * panic naming the field before any VMREAD/VMWRITE happens. Writes to read-only
 * (VM-exit information) fields are refused the same way: Keel does not use the
 * "VMWRITE to any field" feature.
 *
 * On x86-64 a 64-bit field is one VMREAD/VMWRITE of the full encoding; VMCS_HIGH(f) is
 * a 32-bit access to its upper half. Natural-width fields are 64 bits wide here.
 *
 * The `_safe` variants return the instruction's status (enum vmx_status) and store the
 * value through a pointer of the field's C type; a width mismatch is still a bug and is
 * treated like in the plain form. */
#ifndef KEEL_ARCH_X86_VMCS_H
#define KEEL_ARCH_X86_VMCS_H

#include "vmm/lib/types.h"
#include "arch/x86/vmx/vmcs_fields.h"
#include "arch/x86/vmx/vmx_insn.h"

/* Compile-time half of the check. __builtin_constant_p is folded while parsing, so for
 * a non-constant field __builtin_choose_expr picks 1 and the assertion holds; for a
 * constant it checks the width (and, for writes, that the field is writable). */
#define VMCS_STATIC_CHECK(field, width, write)                                                 \
    ((void)sizeof(struct {                                                                     \
        _Static_assert(__builtin_choose_expr(__builtin_constant_p(field),                      \
                                             VMCS_ACCESS_WIDTH(field) == (unsigned)(width), 1), \
                       "VMCS field accessed with the wrong width");                            \
        _Static_assert(__builtin_choose_expr(__builtin_constant_p(field),                      \
                                             !(write) || VMCS_ENC_TYPE(field) != VMCS_TYPE_READ_ONLY, 1), \
                       "VMCS field is read-only");                                             \
        char vmcs_check_;                                                                      \
    }))
#define VMCS_CHECKED_FIELD(field, width, write) (VMCS_STATIC_CHECK(field, width, write), (uint32_t)(field))

/* Run-time half; folds away when the field is a constant. */
static inline void vmcs_check_access(uint32_t field, enum vmcs_width width, bool write)
{
    if (VMCS_ACCESS_WIDTH(field) != (unsigned)width || (write && VMCS_ENC_TYPE(field) == VMCS_TYPE_READ_ONLY))
        vmcs_bad_access(field, width, write);
}

static inline uint64_t vmcs_read_checked(uint32_t field, enum vmcs_width width)
{
    vmcs_check_access(field, width, false);
    return vmx_vmread(field);
}

static inline void vmcs_write_checked(uint32_t field, enum vmcs_width width, uint64_t value)
{
    vmcs_check_access(field, width, true);
    vmx_vmwrite(field, value);
}

static inline enum vmx_status vmcs_read_safe_checked(uint32_t field, enum vmcs_width width, uint64_t *value)
{
    vmcs_check_access(field, width, false);
    *value = 0;
    return vmx_vmread_safe(field, value);
}

static inline enum vmx_status vmcs_write_safe_checked(uint32_t field, enum vmcs_width width, uint64_t value)
{
    vmcs_check_access(field, width, true);
    return vmx_vmwrite_safe(field, value);
}

#define VMCS_READ_AS(type, f, w) ((type)vmcs_read_checked(VMCS_CHECKED_FIELD(f, w, false), w))
#define VMCS_WRITE_AS(type, f, w, v) vmcs_write_checked(VMCS_CHECKED_FIELD(f, w, true), w, (type)(v))

#define vmcs_read16(f) VMCS_READ_AS(uint16_t, f, VMCS_WIDTH_16)
#define vmcs_read32(f) VMCS_READ_AS(uint32_t, f, VMCS_WIDTH_32)
#define vmcs_read64(f) VMCS_READ_AS(uint64_t, f, VMCS_WIDTH_64)
#define vmcs_readnat(f) VMCS_READ_AS(uint64_t, f, VMCS_WIDTH_NATURAL)

/* The exit path's forms (vmx_insn.h: vmx_vmread_on_exit): same width checks, no
 * status check. Only for the run loop's accesses between an exit and the next entry. */
#define vmcs_read32_on_exit(f) ((uint32_t)(VMCS_STATIC_CHECK(f, VMCS_WIDTH_32, false), vmx_vmread_on_exit(f)))
#define vmcs_readnat_on_exit(f) ((uint64_t)(VMCS_STATIC_CHECK(f, VMCS_WIDTH_NATURAL, false), vmx_vmread_on_exit(f)))
/* A 32-bit field as 64 bits: VMREAD clears the destination's bits above the field, so
 * the value needs no zero-extending before it indexes or adds to a 64-bit one. */
#define vmcs_read32_wide_on_exit(f) ((uint64_t)(VMCS_STATIC_CHECK(f, VMCS_WIDTH_32, false), vmx_vmread_on_exit(f)))
#define vmcs_write32_on_exit(f, v) (VMCS_STATIC_CHECK(f, VMCS_WIDTH_32, true), vmx_vmwrite_on_exit(f, (uint32_t)(v)))
#define vmcs_writenat_on_exit(f, v) (VMCS_STATIC_CHECK(f, VMCS_WIDTH_NATURAL, true), vmx_vmwrite_on_exit(f, (uint64_t)(v)))

#define vmcs_write16(f, v) VMCS_WRITE_AS(uint16_t, f, VMCS_WIDTH_16, v)
#define vmcs_write32(f, v) VMCS_WRITE_AS(uint32_t, f, VMCS_WIDTH_32, v)
#define vmcs_write64(f, v) VMCS_WRITE_AS(uint64_t, f, VMCS_WIDTH_64, v)
#define vmcs_writenat(f, v) VMCS_WRITE_AS(uint64_t, f, VMCS_WIDTH_NATURAL, v)

/* `out` must point to the field's C type (uint16_t * for a 16-bit field, ...): the
 * assignment to out_ makes any other pointer type a compile error under -Werror. */
#define VMCS_READ_SAFE_AS(type, f, w, out)                                                \
    ({                                                                                    \
        type *out_ = (out);                                                               \
        uint64_t val_;                                                                    \
        enum vmx_status st_ = vmcs_read_safe_checked(VMCS_CHECKED_FIELD(f, w, false), w, &val_); \
        *out_ = (type)val_;                                                               \
        st_;                                                                              \
    })
#define VMCS_WRITE_SAFE_AS(type, f, w, v) vmcs_write_safe_checked(VMCS_CHECKED_FIELD(f, w, true), w, (type)(v))

#define vmcs_read16_safe(f, out) VMCS_READ_SAFE_AS(uint16_t, f, VMCS_WIDTH_16, out)
#define vmcs_read32_safe(f, out) VMCS_READ_SAFE_AS(uint32_t, f, VMCS_WIDTH_32, out)
#define vmcs_read64_safe(f, out) VMCS_READ_SAFE_AS(uint64_t, f, VMCS_WIDTH_64, out)
#define vmcs_readnat_safe(f, out) VMCS_READ_SAFE_AS(uint64_t, f, VMCS_WIDTH_NATURAL, out)

#define vmcs_write16_safe(f, v) VMCS_WRITE_SAFE_AS(uint16_t, f, VMCS_WIDTH_16, v)
#define vmcs_write32_safe(f, v) VMCS_WRITE_SAFE_AS(uint32_t, f, VMCS_WIDTH_32, v)
#define vmcs_write64_safe(f, v) VMCS_WRITE_SAFE_AS(uint64_t, f, VMCS_WIDTH_64, v)
#define vmcs_writenat_safe(f, v) VMCS_WRITE_SAFE_AS(uint64_t, f, VMCS_WIDTH_NATURAL, v)

#endif
