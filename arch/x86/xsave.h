/* XSAVE state components and the architectural rules for XCR0 (Intel SDM vol. 1,
 * "Enabling the XSAVE Feature Set and XSAVE-Enabled Features", and the XSETBV
 * reference: each rule below is a #GP condition of XSETBV). Pure, so host tests use it. */
#ifndef KEEL_ARCH_X86_XSAVE_H
#define KEEL_ARCH_X86_XSAVE_H

#include "vmm/lib/types.h"

#define XCR0_X87 BIT(0)
#define XCR0_SSE BIT(1)
#define XCR0_AVX BIT(2)
#define XCR0_BNDREGS BIT(3)
#define XCR0_BNDCSR BIT(4)
#define XCR0_OPMASK BIT(5)
#define XCR0_ZMM_HI256 BIT(6)
#define XCR0_HI16_ZMM BIT(7)
#define XCR0_PKRU BIT(9)
#define XCR0_XTILECFG BIT(17)
#define XCR0_XTILEDATA BIT(18)
#define XCR0_MPX (XCR0_BNDREGS | XCR0_BNDCSR)
#define XCR0_AVX512 (XCR0_OPMASK | XCR0_ZMM_HI256 | XCR0_HI16_ZMM)
#define XCR0_AMX (XCR0_XTILECFG | XCR0_XTILEDATA)

/* Offsets in the legacy region of an XSAVE/FXSAVE image. */
#define XSAVE_FCW_OFFSET 0
#define XSAVE_MXCSR_OFFSET 24
#define FCW_POWER_ON 0x37f
#define MXCSR_POWER_ON 0x1f80

/* True when XSETBV may load `val` into XCR0 on a CPU whose XCR0-supported components
 * are `supported` (CPUID.(EAX=0DH,ECX=0):EDX:EAX). */
static inline bool xcr0_valid(uint64_t val, uint64_t supported)
{
    if (!(val & XCR0_X87) || (val & ~supported))
        return false;
    if ((val & XCR0_AVX) && !(val & XCR0_SSE))
        return false;
    /* MPX's two components go together. */
    if ((val & XCR0_MPX) && (val & XCR0_MPX) != XCR0_MPX)
        return false;
    /* AVX-512's three go together, and need AVX. */
    if ((val & XCR0_AVX512) && ((val & XCR0_AVX512) != XCR0_AVX512 || !(val & XCR0_AVX)))
        return false;
    /* AMX's two go together. */
    if ((val & XCR0_AMX) && (val & XCR0_AMX) != XCR0_AMX)
        return false;
    return true;
}

#endif
