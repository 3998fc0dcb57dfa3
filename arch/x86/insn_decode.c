/* The decoder of arch/x86/insn_decode.h: prefixes, then one lookup in the opcode tables
 * below, then ModRM/SIB/displacement and the immediate, then the prefix rules. */
#include "arch/x86/insn_decode.h"

/* How the operands are encoded (SDM vol. 2, A.2.1 "Codes for Addressing Method"). */
enum form {
    FORM_MR,     /* Ex, Gx: the r/m operand first (the destination), the reg operand second */
    FORM_RM,     /* Gx, Ex: the reg operand is the destination */
    FORM_M,      /* Ex alone, the reg field picks the operation (groups), maybe an Ix */
    FORM_MOFFS,  /* AL/rAX and an offset of the address size (A0-A3) */
    FORM_STRING, /* [rSI] and/or [rDI], no ModRM */
};

/* The memory operand's size: a byte operation, the operation size, or (MOVZX, MOVSX,
 * MOVSXD) a byte, word or doubleword source under a destination of the operation size. */
enum msize { SZ_B, SZ_V, SZ_XB, SZ_XW, SZ_XD };

/* Immediates: none, imm8 sign-extended, imm16/32 by operation size sign-extended (Iz),
 * imm8 taken as is (BT's bit offset). */
enum imm { IMM_NONE, IMM_B, IMM_Z, IMM_UB };

/* Groups (SDM vol. 2, table A-6): the ModRM reg field picks the operation. */
enum group { GRP_NONE, GRP_1, GRP_3, GRP_8, GRP_11 };

#define FL_LOCK 0x01     /* LOCK allowed (the memory operand is the destination) */
#define FL_NO64 0x02     /* #UD in 64-bit mode */
#define FL_ONLY64 0x04   /* another instruction outside 64-bit mode */
#define FL_XRELEASE 0x08 /* F3 (XRELEASE) allowed without LOCK: MOV stores */
#define FL_XCHG 0x10     /* F2/F3 allowed without LOCK: XCHG is locked anyway */

/* X(opcode, operation or group, form, memory size, immediate, flags) */
#define ALU_ROW(X, base, OP, lock)                               \
    X((base) + 0, INSN_OP_##OP, FORM_MR, SZ_B, IMM_NONE, lock)   \
    X((base) + 1, INSN_OP_##OP, FORM_MR, SZ_V, IMM_NONE, lock)   \
    X((base) + 2, INSN_OP_##OP, FORM_RM, SZ_B, IMM_NONE, 0)      \
    X((base) + 3, INSN_OP_##OP, FORM_RM, SZ_V, IMM_NONE, 0)

#define INSN_ONE_BYTE(X)                                                       \
    ALU_ROW(X, 0x00, ADD, FL_LOCK)                                             \
    ALU_ROW(X, 0x08, OR, FL_LOCK)                                              \
    ALU_ROW(X, 0x10, ADC, FL_LOCK)                                             \
    ALU_ROW(X, 0x18, SBB, FL_LOCK)                                             \
    ALU_ROW(X, 0x20, AND, FL_LOCK)                                             \
    ALU_ROW(X, 0x28, SUB, FL_LOCK)                                             \
    ALU_ROW(X, 0x30, XOR, FL_LOCK)                                             \
    ALU_ROW(X, 0x38, CMP, 0)                                                   \
    X(0x63, INSN_OP_MOVSX, FORM_RM, SZ_XD, IMM_NONE, FL_ONLY64)                 \
    X(0x80, GRP_1, FORM_M, SZ_B, IMM_B, FL_LOCK)                               \
    X(0x81, GRP_1, FORM_M, SZ_V, IMM_Z, FL_LOCK)                               \
    X(0x82, GRP_1, FORM_M, SZ_B, IMM_B, FL_LOCK | FL_NO64)                     \
    X(0x83, GRP_1, FORM_M, SZ_V, IMM_B, FL_LOCK)                               \
    X(0x84, INSN_OP_TEST, FORM_MR, SZ_B, IMM_NONE, 0)                          \
    X(0x85, INSN_OP_TEST, FORM_MR, SZ_V, IMM_NONE, 0)                          \
    X(0x86, INSN_OP_XCHG, FORM_MR, SZ_B, IMM_NONE, FL_LOCK | FL_XCHG)          \
    X(0x87, INSN_OP_XCHG, FORM_MR, SZ_V, IMM_NONE, FL_LOCK | FL_XCHG)          \
    X(0x88, INSN_OP_MOV_STORE, FORM_MR, SZ_B, IMM_NONE, FL_XRELEASE)           \
    X(0x89, INSN_OP_MOV_STORE, FORM_MR, SZ_V, IMM_NONE, FL_XRELEASE)           \
    X(0x8A, INSN_OP_MOV_LOAD, FORM_RM, SZ_B, IMM_NONE, 0)                      \
    X(0x8B, INSN_OP_MOV_LOAD, FORM_RM, SZ_V, IMM_NONE, 0)                      \
    X(0xA0, INSN_OP_MOV_LOAD, FORM_MOFFS, SZ_B, IMM_NONE, 0)                   \
    X(0xA1, INSN_OP_MOV_LOAD, FORM_MOFFS, SZ_V, IMM_NONE, 0)                   \
    X(0xA2, INSN_OP_MOV_STORE, FORM_MOFFS, SZ_B, IMM_NONE, 0)                  \
    X(0xA3, INSN_OP_MOV_STORE, FORM_MOFFS, SZ_V, IMM_NONE, 0)                  \
    X(0xA4, INSN_OP_MOVS, FORM_STRING, SZ_B, IMM_NONE, 0)                      \
    X(0xA5, INSN_OP_MOVS, FORM_STRING, SZ_V, IMM_NONE, 0)                      \
    X(0xAA, INSN_OP_STOS, FORM_STRING, SZ_B, IMM_NONE, 0)                      \
    X(0xAB, INSN_OP_STOS, FORM_STRING, SZ_V, IMM_NONE, 0)                      \
    X(0xC6, GRP_11, FORM_M, SZ_B, IMM_B, FL_XRELEASE)                          \
    X(0xC7, GRP_11, FORM_M, SZ_V, IMM_Z, FL_XRELEASE)                          \
    X(0xF6, GRP_3, FORM_M, SZ_B, IMM_B, 0)                                     \
    X(0xF7, GRP_3, FORM_M, SZ_V, IMM_Z, 0)

#define INSN_TWO_BYTE(X)                                                       \
    X(0xA3, INSN_OP_BT, FORM_MR, SZ_V, IMM_NONE, 0)                            \
    X(0xB6, INSN_OP_MOVZX, FORM_RM, SZ_XB, IMM_NONE, 0)                         \
    X(0xB7, INSN_OP_MOVZX, FORM_RM, SZ_XW, IMM_NONE, 0)                         \
    X(0xBA, GRP_8, FORM_M, SZ_V, IMM_UB, 0)                                    \
    X(0xBE, INSN_OP_MOVSX, FORM_RM, SZ_XB, IMM_NONE, 0)                         \
    X(0xBF, INSN_OP_MOVSX, FORM_RM, SZ_XW, IMM_NONE, 0)

struct opcode {
    uint8_t present;
    uint8_t op; /* enum insn_op, or enum group for FORM_M entries */
    uint8_t form, msize, imm, flags;
};

#define ENTRY(opc, what, f, sz, im, fl) [opc] = {1, what, f, sz, im, fl},
static const struct opcode one_byte[256] = {INSN_ONE_BYTE(ENTRY)};
static const struct opcode two_byte[256] = {INSN_TWO_BYTE(ENTRY)};
#undef ENTRY

/* Group slots: an operation, or one of these. */
#define SLOT_INVALID 0xFE
#define SLOT_UNSUPPORTED 0xFF

static const uint8_t group_slots[][8] = {
    [GRP_1] = {INSN_OP_ADD, INSN_OP_OR, INSN_OP_ADC, INSN_OP_SBB, INSN_OP_AND, INSN_OP_SUB,
               INSN_OP_XOR, INSN_OP_CMP},
    /* /1 is undocumented by Intel; NOT, NEG, MUL, IMUL, DIV, IDIV are not MMIO idioms. */
    [GRP_3] = {INSN_OP_TEST, SLOT_UNSUPPORTED, SLOT_UNSUPPORTED, SLOT_UNSUPPORTED,
               SLOT_UNSUPPORTED, SLOT_UNSUPPORTED, SLOT_UNSUPPORTED, SLOT_UNSUPPORTED},
    /* /5-/7 are BTS, BTR, BTC. */
    [GRP_8] = {SLOT_INVALID, SLOT_INVALID, SLOT_INVALID, SLOT_INVALID, INSN_OP_BT,
               SLOT_UNSUPPORTED, SLOT_UNSUPPORTED, SLOT_UNSUPPORTED},
    /* /7 is XABORT/XBEGIN. */
    [GRP_11] = {INSN_OP_MOV_STORE_IMM, SLOT_INVALID, SLOT_INVALID, SLOT_INVALID, SLOT_INVALID,
                SLOT_INVALID, SLOT_INVALID, SLOT_UNSUPPORTED},
};

static const char *const op_names[] = {
    [INSN_OP_NONE] = "(none)",
#define X(name, mnemonic) [INSN_OP_##name] = mnemonic,
    INSN_OPS(X)
#undef X
};

static const char *const error_texts[] = {
#define X(name, why) [INSN_ERR_##name] = why,
    INSN_ERRORS(X)
#undef X
};

const char *insn_op_name(enum insn_op op)
{
    return (unsigned)op < ARRAY_SIZE(op_names) ? op_names[op] : "(bad op)";
}

const char *insn_error_text(enum insn_error err)
{
    return (unsigned)err < ARRAY_SIZE(error_texts) ? error_texts[err] : "(bad error code)";
}

enum insn_mode insn_mode_of(bool cr0_pe, bool rflags_vm, bool efer_lma, bool cs_l, bool cs_d)
{
    if (!cr0_pe || rflags_vm)
        return INSN_MODE_16;
    if (efer_lma && cs_l)
        return INSN_MODE_64;
    return cs_d ? INSN_MODE_32 : INSN_MODE_16;
}

/* The bytes being decoded; every read goes through next(). */
struct cursor {
    const uint8_t *bytes;
    size_t len;
    unsigned pos;
};

static enum insn_error next(struct cursor *c, uint8_t *b)
{
    if (c->pos >= INSN_MAX_LEN)
        return INSN_ERR_TOO_LONG;
    if (c->pos >= c->len)
        return INSN_ERR_TRUNCATED;
    *b = c->bytes[c->pos++];
    return INSN_ERR_OK;
}

/* Little-endian, sign-extended from n bytes. */
static enum insn_error next_signed(struct cursor *c, unsigned n, int64_t *v)
{
    uint64_t u = 0;
    for (unsigned i = 0; i < n; i++) {
        uint8_t b;
        enum insn_error e = next(c, &b);
        if (e != INSN_ERR_OK)
            return e;
        u |= (uint64_t)b << (8 * i);
    }
    if (n < 8 && (u >> (8 * n - 1)) & 1)
        u |= ~0ull << (8 * n);
    *v = (int64_t)u;
    return INSN_ERR_OK;
}

#define TRY(expr)                          \
    do {                                   \
        enum insn_error e_ = (expr);       \
        if (e_ != INSN_ERR_OK)             \
            return e_;                     \
    } while (0)

static uint64_t size_mask(unsigned bytes)
{
    return bytes >= 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
}

/* 16-bit addressing (SDM vol. 2, table 2-1): base and index by r/m. */
static const int8_t rm16_base[8] = {INSN_RBX, INSN_RBX, INSN_RBP, INSN_RBP,
                                    INSN_REG_NONE, INSN_REG_NONE, INSN_RBP, INSN_RBX};
static const int8_t rm16_index[8] = {INSN_RSI, INSN_RDI, INSN_RSI, INSN_RDI,
                                     INSN_RSI, INSN_RDI, INSN_REG_NONE, INSN_REG_NONE};

static enum insn_error decode_modrm_memory(struct cursor *c, struct insn *in)
{
    unsigned mod = in->modrm >> 6, rm = in->modrm & 7;

    in->base = in->index = INSN_REG_NONE;
    in->scale = 1;
    if (in->addr_size == 2) {
        if (mod == 0 && rm == 6) {
            in->disp_size = 2;
        } else {
            in->base = rm16_base[rm];
            in->index = rm16_index[rm];
            in->disp_size = mod == 1 ? 1 : mod == 2 ? 2 : 0;
            /* The index of 4 and 5 (SI, DI alone) is really the base. */
            if (in->base == INSN_REG_NONE) {
                in->base = in->index;
                in->index = INSN_REG_NONE;
            }
        }
        if (in->disp_size)
            TRY(next_signed(c, in->disp_size, &in->disp));
        return INSN_ERR_OK;
    }

    unsigned base_low = rm;
    bool no_base = false;
    if (rm == 4) {
        TRY(next(c, &in->sib));
        in->has_sib = true;
        unsigned idx = ((in->sib >> 3) & 7) | (in->rex & INSN_REX_X ? 8 : 0);
        if (idx != INSN_RSP) /* 4 without REX.X means no index; R12 is allowed */
            in->index = (int8_t)idx;
        in->scale = (uint8_t)(1u << (in->sib >> 6));
        base_low = in->sib & 7;
        no_base = mod == 0 && base_low == 5;
    } else if (mod == 0 && rm == 5) {
        no_base = true;
        in->rip_relative = in->mode == INSN_MODE_64;
    }
    if (!no_base)
        in->base = (int8_t)(base_low | (in->rex & INSN_REX_B ? 8 : 0));
    in->disp_size = no_base ? 4 : mod == 1 ? 1 : mod == 2 ? 4 : 0;
    if (in->disp_size)
        TRY(next_signed(c, in->disp_size, &in->disp));
    return INSN_ERR_OK;
}

/* The default segment: SS for rSP/rBP bases (BP in 16-bit addressing), else DS; in
 * 64-bit mode only FS and GS overrides take effect. */
static enum insn_seg pick_segment(const struct insn *in, bool has_override, enum insn_seg override)
{
    if (has_override && (in->mode != INSN_MODE_64 || override >= INSN_SEG_FS))
        return override;
    if (in->base == INSN_RSP || in->base == INSN_RBP)
        return INSN_SEG_SS;
    return INSN_SEG_DS;
}

static enum insn_error check_rep_prefixes(const struct insn *in, const struct opcode *ent)
{
    bool rep = in->prefixes & INSN_PFX_REP, repne = in->prefixes & INSN_PFX_REPNE;
    if (!rep && !repne)
        return INSN_ERR_OK;
    if (rep && repne)
        return INSN_ERR_UNSUPPORTED;
    if (in->op == INSN_OP_MOVS || in->op == INSN_OP_STOS)
        /* REPNE on MOVS/STOS is reserved (SDM vol. 2, "REP/REPE/REPZ/REPNE/REPNZ"). */
        return rep ? INSN_ERR_OK : INSN_ERR_UNSUPPORTED;
    /* Otherwise only as the HLE hints, which change nothing an emulator sees (SDM vol. 1,
     * "Hardware Lock Elision"); in the 0F map F2/F3 select other instructions. */
    if (in->two_byte)
        return INSN_ERR_UNSUPPORTED;
    if ((in->prefixes & INSN_PFX_LOCK) || (ent->flags & FL_XCHG))
        return INSN_ERR_OK;
    if (rep && (ent->flags & FL_XRELEASE))
        return INSN_ERR_OK;
    return INSN_ERR_UNSUPPORTED;
}

enum insn_error insn_decode(const uint8_t *bytes, size_t len, enum insn_mode mode, struct insn *out)
{
    struct cursor c = {.bytes = bytes, .len = len, .pos = 0};
    struct insn *in = out;
    bool has_override = false;
    enum insn_seg override = INSN_SEG_DS;
    uint8_t b;

    *in = (struct insn){.mode = mode, .reg = INSN_REG_NONE, .base = INSN_REG_NONE,
                        .index = INSN_REG_NONE, .scale = 1, .seg = INSN_SEG_DS};
    if (mode != INSN_MODE_16 && mode != INSN_MODE_32 && mode != INSN_MODE_64)
        return INSN_ERR_INVALID;

    /* Legacy prefixes in any order; REX only right before the opcode (a legacy prefix
     * after a REX makes the CPU ignore the REX). */
    for (;;) {
        enum insn_error e = next(&c, &b);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        bool legacy = true;
        switch (b) {
        case 0x66: in->prefixes |= INSN_PFX_OPSIZE; break;
        case 0x67: in->prefixes |= INSN_PFX_ADDRSIZE; break;
        case 0xF0: in->prefixes |= INSN_PFX_LOCK; break;
        case 0xF2: in->prefixes |= INSN_PFX_REPNE; break;
        case 0xF3: in->prefixes |= INSN_PFX_REP; break;
        case 0x26: override = INSN_SEG_ES; has_override = true; break;
        case 0x2E: override = INSN_SEG_CS; has_override = true; break;
        case 0x36: override = INSN_SEG_SS; has_override = true; break;
        case 0x3E: override = INSN_SEG_DS; has_override = true; break;
        case 0x64: override = INSN_SEG_FS; has_override = true; break;
        case 0x65: override = INSN_SEG_GS; has_override = true; break;
        default: legacy = false; break;
        }
        if (legacy) {
            in->rex = 0;
            continue;
        }
        if (mode == INSN_MODE_64 && (b & 0xF0) == 0x40) {
            in->rex = b;
            continue;
        }
        break;
    }
    if (has_override)
        in->prefixes |= INSN_PFX_SEG;

    const struct opcode *ent;
    if (b == 0x0F) {
        in->two_byte = true;
        enum insn_error e = next(&c, &b);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        ent = &two_byte[b];
    } else {
        ent = &one_byte[b];
    }
    in->opcode = b;
    if (!ent->present)
        return INSN_ERR_UNSUPPORTED;
    if ((ent->flags & FL_NO64) && mode == INSN_MODE_64)
        return INSN_ERR_INVALID;
    if ((ent->flags & FL_ONLY64) && mode != INSN_MODE_64)
        return INSN_ERR_UNSUPPORTED; /* 63 is ARPL there */

    if (in->rex & INSN_REX_W)
        in->op_size = 8;
    else if (in->prefixes & INSN_PFX_OPSIZE)
        in->op_size = mode == INSN_MODE_16 ? 4 : 2;
    else
        in->op_size = mode == INSN_MODE_64 ? 4 : (uint8_t)mode;
    if (mode == INSN_MODE_64)
        in->addr_size = in->prefixes & INSN_PFX_ADDRSIZE ? 4 : 8;
    else if (mode == INSN_MODE_32)
        in->addr_size = in->prefixes & INSN_PFX_ADDRSIZE ? 2 : 4;
    else
        in->addr_size = in->prefixes & INSN_PFX_ADDRSIZE ? 4 : 2;

    switch (ent->msize) {
    case SZ_B: in->op_size = in->width = 1; break;
    case SZ_XB: in->width = 1; break;
    case SZ_XW: in->width = 2; break;
    /* MOVSXD with 66 moves a word to a word (SDM vol. 2, MOVSX/MOVSXD). */
    case SZ_XD: in->width = in->op_size == 2 ? 2 : 4; break;
    default: in->width = in->op_size; break;
    }

    /* A group's operation is known once the ModRM byte is. */
    in->op = ent->form == FORM_M ? INSN_OP_NONE : (enum insn_op)ent->op;
    if (ent->form == FORM_MOFFS) {
        in->disp_size = in->addr_size;
        enum insn_error e = next_signed(&c, in->addr_size, &in->disp);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        in->reg = INSN_RAX;
        in->seg = pick_segment(in, has_override, override);
    } else if (ent->form == FORM_STRING) {
        if (in->op == INSN_OP_STOS) {
            in->reg = INSN_RAX;
            in->seg = INSN_SEG_ES; /* STOS's destination cannot be overridden */
        } else {
            in->seg = pick_segment(in, has_override, override);
        }
    } else {
        enum insn_error e = next(&c, &in->modrm);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        in->has_modrm = true;
        unsigned regf = (in->modrm >> 3) & 7;
        if (ent->form == FORM_M) {
            uint8_t slot = group_slots[ent->op][regf];
            if (slot == SLOT_INVALID)
                return INSN_ERR_INVALID;
            if (slot == SLOT_UNSUPPORTED)
                return INSN_ERR_UNSUPPORTED;
            in->op = (enum insn_op)slot;
        }
        if ((in->modrm >> 6) == 3)
            return INSN_ERR_NO_MEMORY_OPERAND;
        e = decode_modrm_memory(&c, in);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        in->seg = pick_segment(in, has_override, override);
        if (ent->form != FORM_M) {
            in->reg = (int8_t)(regf | (in->rex & INSN_REX_R ? 8 : 0));
            /* The reg operand is 8-bit only where the operation is; AH..BH need no REX. */
            if (in->op_size == 1 && !in->rex && in->reg >= 4) {
                in->reg -= 4;
                in->reg_high = true;
            }
        }
    }

    if (ent->imm != IMM_NONE) {
        unsigned n = ent->imm == IMM_Z ? (in->op_size == 2 ? 2 : 4) : 1;
        int64_t v;
        enum insn_error e = next_signed(&c, n, &v);
        in->length = (uint8_t)c.pos;
        if (e != INSN_ERR_OK)
            return e;
        in->has_imm = true;
        in->imm_size = (uint8_t)n;
        in->imm = ent->imm == IMM_UB ? (uint64_t)v & 0xFF : (uint64_t)v & size_mask(in->op_size);
    }
    in->length = (uint8_t)c.pos;

    in->to_reg = ent->form == FORM_RM || (ent->form == FORM_MOFFS && in->op == INSN_OP_MOV_LOAD);
    if (in->op == INSN_OP_MOVZX || in->op == INSN_OP_MOVSX)
        in->ext = in->op == INSN_OP_MOVZX ? INSN_EXT_ZERO : INSN_EXT_SIGN;
    /* The memory operand is the destination of a read-modify-write only for these. */
    if (in->prefixes & INSN_PFX_LOCK) {
        bool lockable = (ent->flags & FL_LOCK) && ent->form != FORM_RM && in->op != INSN_OP_CMP;
        if (!lockable)
            return INSN_ERR_INVALID;
    }
    return check_rep_prefixes(in, ent);
}
