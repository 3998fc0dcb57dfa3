/* Not part of the core image: compiled to assembly only, so that the build turns these
 * constants into guest_regs_offsets.inc for vmx_entry.asm (the "asm-offsets" technique).
 * The assembly can then not drift from the C layout. */
#include <stddef.h>
#include "arch/x86/guest_regs.h"
#include "arch/x86/vcpu_arch.h"

#define EMIT(name, value) __asm__ volatile(".ascii \"@@" #name " %c0@@\"" ::"i"(value))
#define REG(name, member) EMIT(name, offsetof(struct guest_regs, member))

void guest_regs_offsets(void);
void guest_regs_offsets(void)
{
    REG(R_RAX, rax);
    REG(R_RBX, rbx);
    REG(R_RCX, rcx);
    REG(R_RDX, rdx);
    REG(R_RSI, rsi);
    REG(R_RDI, rdi);
    REG(R_RBP, rbp);
    REG(R_R8, r8);
    REG(R_R9, r9);
    REG(R_R10, r10);
    REG(R_R11, r11);
    REG(R_R12, r12);
    REG(R_R13, r13);
    REG(R_R14, r14);
    REG(R_R15, r15);
    EMIT(GUEST_REGS_SIZE, sizeof(struct guest_regs));
    EMIT(VCPU_VMX_LAUNCHED, offsetof(struct vcpu_arch, vmx.launched));
}
