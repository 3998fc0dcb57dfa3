/* The x86-64 instructions hello64 uses, as inline helpers. 64-bit only: the 32-bit
 * guests have their own in runtime/x86.h. */
#ifndef HELLO64_CPU64_H
#define HELLO64_CPU64_H

#include <stdint.h>

#define MSR_EFER 0xC0000080u
#define EFER_LME (1ull << 8)
#define EFER_LMA (1ull << 10)
#define CR0_PE (1ull << 0)
#define CR0_PG (1ull << 31)
#define CR4_PAE (1ull << 5)

struct cpuid_regs {
    uint32_t eax, ebx, ecx, edx;
};

static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf)
{
    struct cpuid_regs r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

static inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr) : "memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline uint8_t inb(uint16_t port)
{
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

static inline void outb(uint16_t port, uint8_t v)
{
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}

static inline uint64_t read_cr0(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}

static inline uint64_t read_cr3(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}

static inline uint64_t read_cr4(void)
{
    uint64_t v;
    __asm__ volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

static inline uint16_t read_cs(void)
{
    uint16_t v;
    __asm__ volatile("mov %%cs, %0" : "=r"(v));
    return v;
}

/* Executes the bytes 40 90 with EAX = 0. In a 64-bit code segment (CS.L = 1) 0x40 is an
 * empty REX prefix on NOP; in a 32-bit (compatibility mode) segment it is INC EAX. So this
 * tells from the instruction decoder itself, not from a register that claims it, which
 * mode the CPU runs this code in. */
static inline int cs_decodes_64bit(void)
{
    uint32_t r;
    __asm__ volatile("xor %%eax, %%eax\n\t"
                     ".byte 0x40\n\t"
                     "nop"
                     : "=a"(r));
    return r == 0;
}

/* Keel's VMCALL with full 64-bit arguments and result (vmm/hypercall_abi.h). Outside
 * Keel it raises #UD, and hello64 has no IDT: check the CPUID signature first. */
static inline int64_t vmcall3(uint64_t fn, uint64_t a1, uint64_t a2)
{
    uint64_t ret;
    __asm__ volatile("vmcall" : "=a"(ret) : "a"(fn), "b"(a1), "c"(a2) : "memory");
    return (int64_t)ret;
}

static inline void __attribute__((noreturn)) halt_forever(void)
{
    for (;;)
        __asm__ volatile("cli; hlt");
}

#endif
