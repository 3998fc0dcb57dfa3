/* Instructions that run with guest-chosen operands in Keel (XSETBV, WRMSR write-through)
 * are validated first; these variants make a check that misses a CPU rule cost the
 * guest a #GP instead of costing Keel a CPU. Each records (faulting RIP, resume RIP) in
 * the __extable section; an exception at a listed RIP resumes at its fixup, which
 * reports failure, instead of being fatal. */
#ifndef KEEL_ARCH_X86_EXTABLE_H
#define KEEL_ARCH_X86_EXTABLE_H

#include "vmm/lib/types.h"

struct extable_entry {
    uint64_t insn, fixup;
};

/* The fixup for a faulting RIP, 0 when the fault is not an expected one. */
uint64_t extable_fixup(uint64_t rip);

/* The instruction with its fault recorded: the fixup clears %[ok] and resumes after it,
 * so the _safe functions below return true when it completed, false when it faulted. */
#define EXTABLE_ASM(insn)                                                          \
    "1: " insn "\n"                                                                \
    "2:\n"                                                                         \
    ".pushsection .text.fixup, \"ax\"\n"                                           \
    "3: xorl %k[ok], %k[ok]\n"                                                     \
    "   jmp 2b\n"                                                                  \
    ".popsection\n"                                                                \
    ".pushsection __extable, \"a\"\n"                                              \
    "   .balign 8\n"                                                               \
    "   .quad 1b, 3b\n"                                                            \
    ".popsection"

/* XSETBV and WRMSR take the same operands: ECX selects, EDX:EAX is the value. */
#define DEFINE_SAFE_ECX_EDX_EAX(name, insn)                                                    \
    static inline bool name(uint32_t ecx, uint64_t val)                                        \
    {                                                                                          \
        uint32_t ok = 1;                                                                       \
        __asm__ volatile(EXTABLE_ASM(insn)                                                     \
                         : [ok] "+r"(ok)                                                       \
                         : "c"(ecx), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))            \
                         : "memory");                                                          \
        return ok;                                                                             \
    }
DEFINE_SAFE_ECX_EDX_EAX(xsetbv_safe, "xsetbv")
DEFINE_SAFE_ECX_EDX_EAX(wrmsr_safe, "wrmsr")
#undef DEFINE_SAFE_ECX_EDX_EAX

#endif
