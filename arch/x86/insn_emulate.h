/* Carrying out an instruction decoded by arch/x86/insn_decode.h whose memory access hit
 * an emulated device: the access goes to callbacks, the result to the guest's registers,
 * arithmetic flags (SDM vol. 1, appendix A "EFLAGS Cross-Reference", and each
 * instruction's "Flags Affected") and RIP.
 *
 * Register writes follow the hardware: 8- and 16-bit results merge into the register,
 * 32-bit results zero-extend to 64 bits (in every mode: outside 64-bit mode the upper
 * halves are undefined, and zero is what the CPU leaves), 64-bit ones replace it.
 *
 * Nothing is committed unless every access succeeded: a callback that reports a fault or
 * a stop leaves the registers, flags and RIP as they were, so the instruction can be
 * restarted after the fault is delivered.
 *
 * String instructions with REP run one iteration per call: RSI/RDI move by the width
 * (down when RFLAGS.DF is set), RCX drops by one, and RIP stays on the instruction until
 * RCX reaches zero, so the guest re-executes it and the next element exits again. That
 * is what the CPU itself does when a REP string instruction is interrupted (SDM vol. 2,
 * "REP/REPE/REPZ/REPNE/REPNZ"), so interrupts and faults between elements are exact. The
 * counter and pointers are CX/SI/DI, ECX/ESI/EDI or RCX/RSI/RDI by the address size. */
#ifndef KEEL_ARCH_X86_INSN_EMULATE_H
#define KEEL_ARCH_X86_INSN_EMULATE_H

#include "arch/x86/guest_regs.h"
#include "arch/x86/insn_decode.h"
#include "vmm/lib/types.h"

/* The registers that live in the VMCS rather than in struct guest_regs. */
struct insn_frame {
    uint64_t rsp, rip, rflags;
};

#define RFLAGS_CF BIT(0)
#define RFLAGS_PF BIT(2)
#define RFLAGS_AF BIT(4)
#define RFLAGS_ZF BIT(6)
#define RFLAGS_SF BIT(7)
#define RFLAGS_DF BIT(10)
#define RFLAGS_OF BIT(11)
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/* What a memory callback reports. */
enum insn_access {
    INSN_ACCESS_OK,
    /* The callback has queued an exception for the guest (a #PF or #GP on the RAM side of
     * MOVS, say): the instruction is not completed and restarts after delivery. */
    INSN_ACCESS_FAULT,
    /* The VM has to stop (the callback has said why). */
    INSN_ACCESS_STOP,
};

/* Values are little-endian in the low `width` bytes (1, 2, 4 or 8) of a uint64_t;
 * reads must leave the bits above the width zero. */
struct insn_mem_ops {
    void *ctx;
    /* The access that faulted, at its guest-physical address. */
    enum insn_access (*mmio_read)(void *ctx, gpa_t gpa, unsigned width, uint64_t *value);
    enum insn_access (*mmio_write)(void *ctx, gpa_t gpa, unsigned width, uint64_t value);
    /* MOVS's other operand (RAM, or another device), by segment and offset within it
     * (already cut to the address size): the caller adds the segment base, checks the
     * limit, walks the guest's page tables (arch/x86/guest_walk.h) and reads or writes
     * RAM or the device bus. NULL when the caller has no such path: MOVS is then
     * refused. */
    enum insn_access (*mem_read)(void *ctx, enum insn_seg seg, uint64_t offset, unsigned width,
                                 uint64_t *value);
    enum insn_access (*mem_write)(void *ctx, enum insn_seg seg, uint64_t offset, unsigned width,
                                  uint64_t value);
};

enum insn_emul {
    INSN_EMUL_DONE,        /* registers, flags and RIP updated */
    INSN_EMUL_FAULT,       /* a callback reported INSN_ACCESS_FAULT; nothing changed */
    INSN_EMUL_STOP,        /* a callback reported INSN_ACCESS_STOP; nothing changed */
    INSN_EMUL_UNSUPPORTED, /* not an instruction this emulates (or MOVS without mem_*) */
};

/* Emulates *insn (decoded with INSN_ERR_OK) whose access to gpa caused the exit.
 * fault_write says whether the faulting access was a write (the EPT violation's
 * qualification): it decides which of MOVS's operands gpa is; other instructions have
 * one memory operand and ignore it (a read-modify-write may report either). */
enum insn_emul insn_emulate(const struct insn *insn, struct guest_regs *regs, struct insn_frame *frame,
                            gpa_t gpa, bool fault_write, const struct insn_mem_ops *ops);

/* The memory operand's offset within its segment (insn->seg), cut to the address size;
 * RIP-relative operands count from the next instruction. For string instructions, the
 * source's (rSI); the destination is ES:rDI. The caller compares it, plus the segment
 * base, with the guest-linear address of the fault. */
uint64_t insn_effective_address(const struct insn *insn, const struct guest_regs *regs,
                                const struct insn_frame *frame);

/* The general register by encoding number (0 RAX ... 4 RSP ... 15 R15). */
uint64_t insn_reg_read(const struct guest_regs *regs, const struct insn_frame *frame, unsigned reg);

#endif
