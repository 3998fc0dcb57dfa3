/* Decoding one x86 instruction that touched guest memory, for MMIO emulation: the MOV
 * forms, MOVZX/MOVSX/MOVSXD, the ALU group (ADD/OR/ADC/SBB/AND/SUB/XOR/CMP), TEST, BT,
 * XCHG and the MOVS/STOS string moves, which is what compilers and drivers emit for
 * device registers. Anything else is refused with an error naming why, never guessed at:
 * an MMIO access that Keel cannot emulate exactly must stop the VM, not be skipped.
 *
 * Pure code (no VMCS, no device knowledge): the VMX backend fetches the bytes at CS:RIP
 * (arch/x86/guest_walk.h), decodes them here and runs the result through
 * arch/x86/insn_emulate.h. Encodings follow the SDM vol. 2 (chapter 2 "Instruction
 * Format", appendix A "Opcode Map"). */
#ifndef KEEL_ARCH_X86_INSN_DECODE_H
#define KEEL_ARCH_X86_INSN_DECODE_H

#include "vmm/lib/types.h"

#define INSN_MAX_LEN 15

/* The code segment's default operand and address size in bytes: real mode, virtual-8086
 * and 16-bit segments (CS.D = 0) are 16-bit, CS.D = 1 is 32-bit (also in compatibility
 * mode), CS.L = 1 with EFER.LMA is 64-bit. */
enum insn_mode {
    INSN_MODE_16 = 2,
    INSN_MODE_32 = 4,
    INSN_MODE_64 = 8,
};

/* Picks the mode from the guest state that defines it. */
enum insn_mode insn_mode_of(bool cr0_pe, bool rflags_vm, bool efer_lma, bool cs_l, bool cs_d);

/* X(NAME, "mnemonic") */
#define INSN_OPS(X)               \
    X(MOV_LOAD, "mov")            \
    X(MOV_STORE, "mov")           \
    X(MOV_STORE_IMM, "mov")       \
    X(MOVZX, "movzx")             \
    X(MOVSX, "movsx")             \
    X(ADD, "add")                 \
    X(OR, "or")                   \
    X(ADC, "adc")                 \
    X(SBB, "sbb")                 \
    X(AND, "and")                 \
    X(SUB, "sub")                 \
    X(XOR, "xor")                 \
    X(CMP, "cmp")                 \
    X(TEST, "test")               \
    X(BT, "bt")                   \
    X(XCHG, "xchg")               \
    X(MOVS, "movs")               \
    X(STOS, "stos")

enum insn_op {
    INSN_OP_NONE,
#define X(name, mnemonic) INSN_OP_##name,
    INSN_OPS(X)
#undef X
};

/* X(NAME, "why") */
#define INSN_ERRORS(X)                                                              \
    X(OK, "decoded")                                                                \
    X(TRUNCATED, "the instruction runs past the bytes fetched")                     \
    X(TOO_LONG, "longer than 15 bytes")                                             \
    X(INVALID, "an invalid encoding (the CPU raises #UD for it)")                   \
    X(UNSUPPORTED, "a valid instruction that MMIO emulation does not handle")       \
    X(NO_MEMORY_OPERAND, "a register-only form, which cannot have accessed memory")

enum insn_error {
#define X(name, why) INSN_ERR_##name,
    INSN_ERRORS(X)
#undef X
};

/* Segment registers in their encoding order (SDM vol. 2, table 3-6 "Sreg"). */
enum insn_seg {
    INSN_SEG_ES,
    INSN_SEG_CS,
    INSN_SEG_SS,
    INSN_SEG_DS,
    INSN_SEG_FS,
    INSN_SEG_GS,
};

/* Legacy prefixes seen, in insn.prefixes. */
#define INSN_PFX_OPSIZE BIT(0) /* 66 */
#define INSN_PFX_ADDRSIZE BIT(1) /* 67 */
#define INSN_PFX_LOCK BIT(2) /* F0 */
#define INSN_PFX_REPNE BIT(3) /* F2 (on the MOV/ALU forms: the XACQUIRE hint) */
#define INSN_PFX_REP BIT(4) /* F3 (on the MOV/ALU forms: the XRELEASE hint) */
#define INSN_PFX_SEG BIT(5) /* a segment override (the last one counts) */

/* REX bits, in insn.rex (0 without REX; 0x40 is a REX with no bits set). */
#define INSN_REX_B BIT(0)
#define INSN_REX_X BIT(1)
#define INSN_REX_R BIT(2)
#define INSN_REX_W BIT(3)

#define INSN_REG_NONE (-1)

/* General registers by encoding number: 0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP,
 * 6 RSI, 7 RDI, 8-15 R8-R15. */
enum insn_gpr {
    INSN_RAX, INSN_RCX, INSN_RDX, INSN_RBX, INSN_RSP, INSN_RBP, INSN_RSI, INSN_RDI,
    INSN_R8, INSN_R9, INSN_R10, INSN_R11, INSN_R12, INSN_R13, INSN_R14, INSN_R15,
};

enum insn_ext {
    INSN_EXT_NONE,
    INSN_EXT_ZERO, /* MOVZX */
    INSN_EXT_SIGN, /* MOVSX, MOVSXD */
};

struct insn {
    enum insn_op op;
    enum insn_mode mode;   /* the mode it was decoded for */
    uint8_t length;        /* bytes, prefixes included */
    uint8_t width;         /* bytes accessed in memory per access: 1, 2, 4 or 8 */
    uint8_t op_size;       /* operation size; MOVZX/MOVSX: the destination's */
    uint8_t addr_size;     /* 2, 4 or 8 */
    enum insn_ext ext;

    /* The register operand (the ModRM reg field, AL/rAX for moffs and STOS, the bit
     * offset register of BT), or INSN_REG_NONE. reg_high: AH, CH, DH or BH, that is
     * bits 15:8 of register reg (0-3); only for 8-bit operands without REX. */
    int8_t reg;
    bool reg_high;
    bool to_reg;           /* the register is the destination (loads, ALU reg, [mem]) */

    /* The immediate, sign-extended to op_size and masked to it (BT: the bit offset). */
    bool has_imm;
    uint8_t imm_size;      /* its bytes in the encoding */
    uint64_t imm;

    /* Where the memory operand is, for the caller to check against the fault and for
     * insn_effective_address. base/index: register numbers or INSN_REG_NONE; disp is
     * sign-extended (moffs: the full offset). RIP-relative: RIP of the next instruction
     * plus disp. String instructions have no ModRM: their operands are [rSI] and [rDI]. */
    bool has_modrm, has_sib;
    uint8_t modrm, sib;
    int8_t base, index;
    uint8_t scale;         /* 1, 2, 4 or 8 */
    uint8_t disp_size;     /* bytes in the encoding: 0, 1, 2, 4 or 8 (moffs) */
    bool rip_relative;
    int64_t disp;
    enum insn_seg seg;     /* the memory operand's segment (MOVS: the source's) */

    uint8_t prefixes;      /* INSN_PFX_* */
    uint8_t rex;           /* 0x40-0x4F, or 0 */
    bool two_byte;         /* 0F opcode map */
    uint8_t opcode;
};

/* Decodes the instruction at the start of bytes[0..len) (len may exceed 15; only 15 are
 * looked at). On INSN_ERR_OK *out describes it; otherwise *out is left partly filled
 * (length says how far decoding got) and must not be emulated. Never reads past len. */
enum insn_error insn_decode(const uint8_t *bytes, size_t len, enum insn_mode mode, struct insn *out);

const char *insn_error_text(enum insn_error err);
const char *insn_op_name(enum insn_op op);

#endif
