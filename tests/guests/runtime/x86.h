/* Thin wrappers around x86 instructions the guests use (ring 0). Width-neutral: the
 * 32-bit guests and the 64-bit hello64 both use it. Control registers are as wide as the
 * mode (MOV to/from CRn takes a 64-bit register in long mode), hence uintptr_t, which
 * is uint32_t in the 32-bit build. */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#include <stdint.h>

struct cpuid_regs {
    uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
    struct cpuid_regs r;
    __asm__ volatile("cpuid"
                     : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                     : "a"(leaf), "c"(subleaf));
    return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline void wrmsr(uint32_t msr, uint64_t val)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)val), "d"((uint32_t)(val >> 32))
                     : "memory");
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint16_t inw(uint16_t port)
{
    uint16_t v;
    __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline uint32_t inl(uint16_t port)
{
    uint32_t v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
    __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
    __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}

/* read_cr0, read_cr2, read_cr3, read_cr4: the register number is part of the
 * instruction, so there is one reader per register. */
#define GUEST_DEFINE_READ_CR(n)                                 \
    static inline uintptr_t read_cr##n(void)                    \
    {                                                           \
        uintptr_t v;                                            \
        __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v));       \
        return v;                                               \
    }
GUEST_DEFINE_READ_CR(0)
GUEST_DEFINE_READ_CR(2)
GUEST_DEFINE_READ_CR(3)
GUEST_DEFINE_READ_CR(4)
#undef GUEST_DEFINE_READ_CR

static inline void write_cr4(uintptr_t v)
{
    __asm__ volatile("mov %0, %%cr4" ::"r"(v) : "memory");
}

static inline uint16_t read_cs(void)
{
    uint16_t v;
    __asm__ volatile("mov %%cs, %0" : "=r"(v));
    return v;
}

static inline void cli(void)
{
    __asm__ volatile("cli" ::: "memory");
}

static inline void hlt(void)
{
    __asm__ volatile("hlt" ::: "memory");
}

/* MSR indices (Intel SDM vol. 4). */
#define MSR_IA32_FEATURE_CONTROL 0x0000003Au
#define MSR_IA32_PAT 0x00000277u
#define MSR_EFER 0xC0000080u
#define MSR_LSTAR 0xC0000082u
#define MSR_FS_BASE 0xC0000100u
#define MSR_GS_BASE 0xC0000101u

#define FEATURE_CONTROL_LOCK (1u << 0)
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)

/* Control register bits (Intel SDM vol. 3, 2.5). */
#define CR0_PE (1u << 0)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)

/* Exception vectors. */
#define VEC_DE 0
#define VEC_UD 6
#define VEC_GP 13
#define VEC_PF 14

#endif
