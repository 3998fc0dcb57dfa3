/* The guest's general registers while it is not running: what the VM entry/exit path
 * (vmx_entry.asm) loads and saves. RSP and RIP live in the VMCS. The assembly takes the
 * offsets from arch/x86/vmx/guest_regs_offsets.c, generated at build time, never by hand. */
#ifndef KEEL_ARCH_X86_GUEST_REGS_H
#define KEEL_ARCH_X86_GUEST_REGS_H

#include "vmm/lib/types.h"

struct guest_regs {
    uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp;
    uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
};

#endif
