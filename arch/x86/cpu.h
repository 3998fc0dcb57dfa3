/* Thin inline wrappers for x86 instructions the C code needs. Host unit tests
 * never include this file: code that must be host-testable takes its hardware
 * access through function pointers or lives in a separate file. */
#ifndef KEEL_ARCH_X86_CPU_H
#define KEEL_ARCH_X86_CPU_H

#include "vmm/lib/types.h"

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return ((uint64_t)hi << 32) | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v)
{
    __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
}

struct cpuid_regs { uint32_t eax, ebx, ecx, edx; };
static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
    struct cpuid_regs r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

#define DEFINE_CR_ACCESS(n)                                                          \
    static inline uint64_t read_cr##n(void) { uint64_t v; __asm__ volatile("mov %%cr" #n ", %0" : "=r"(v)); return v; } \
    static inline void write_cr##n(uint64_t v) { __asm__ volatile("mov %0, %%cr" #n ::"r"(v) : "memory"); }
DEFINE_CR_ACCESS(0)
DEFINE_CR_ACCESS(2)
DEFINE_CR_ACCESS(3)
DEFINE_CR_ACCESS(4)
DEFINE_CR_ACCESS(8)
#undef DEFINE_CR_ACCESS

#define DEFINE_DR_ACCESS(n)                                                          \
    static inline uint64_t read_dr##n(void) { uint64_t v; __asm__ volatile("mov %%db" #n ", %0" : "=r"(v)); return v; } \
    static inline void write_dr##n(uint64_t v) { __asm__ volatile("mov %0, %%db" #n ::"r"(v)); }
DEFINE_DR_ACCESS(0)
DEFINE_DR_ACCESS(1)
DEFINE_DR_ACCESS(2)
DEFINE_DR_ACCESS(3)
DEFINE_DR_ACCESS(6)
DEFINE_DR_ACCESS(7)
#undef DEFINE_DR_ACCESS
#define DR6_POWER_ON 0xffff0ff0ull
#define DR7_POWER_ON 0x400ull

static inline uint64_t read_rflags(void) { uint64_t v; __asm__ volatile("pushfq; popq %0" : "=r"(v)); return v; }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }
static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void wbinvd(void) { __asm__ volatile("wbinvd" ::: "memory"); }
static inline void invlpg(hva_t va) { __asm__ volatile("invlpg (%0)" ::"r"(va) : "memory"); }

static inline uint8_t mmio_read8(hva_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(hva_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(hva_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(hva_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(hva_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(hva_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(hva_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(hva_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

/* Stops this CPU for good: interrupts off, then halt forever (NMIs wake HLT). */
static inline NORETURN void cpu_halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

#define CR0_PE BIT(0)
#define CR0_MP BIT(1)
#define CR0_EM BIT(2)
#define CR0_TS BIT(3)
#define CR0_ET BIT(4)
#define CR0_NE BIT(5)
#define CR0_WP BIT(16)
#define CR0_NW BIT(29)
#define CR0_CD BIT(30)
#define CR0_PG BIT(31)
#define CR4_PAE BIT(5)
#define CR4_PGE BIT(7)
#define CR4_VMXE BIT(13)
#define CR4_SMXE BIT(14)
#define CR4_OSFXSR BIT(9)
#define CR4_OSXMMEXCPT BIT(10)
#define CR4_OSXSAVE BIT(18)
#define CR4_PKE BIT(22)
#define RFLAGS_IF BIT(9)

#endif
