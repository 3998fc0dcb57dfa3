/* The emulator of arch/x86/insn_emulate.h. */
#include "arch/x86/insn_emulate.h"

static uint64_t mask_of(unsigned bytes)
{
    return bytes >= 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
}

/* Where each register is, by encoding number; RSP (4) is in the frame. */
#define GPR_IN_FRAME 0xFF
static const uint8_t gpr_offset[16] = {
    offsetof(struct guest_regs, rax), offsetof(struct guest_regs, rcx),
    offsetof(struct guest_regs, rdx), offsetof(struct guest_regs, rbx),
    GPR_IN_FRAME,                     offsetof(struct guest_regs, rbp),
    offsetof(struct guest_regs, rsi), offsetof(struct guest_regs, rdi),
    offsetof(struct guest_regs, r8),  offsetof(struct guest_regs, r9),
    offsetof(struct guest_regs, r10), offsetof(struct guest_regs, r11),
    offsetof(struct guest_regs, r12), offsetof(struct guest_regs, r13),
    offsetof(struct guest_regs, r14), offsetof(struct guest_regs, r15),
};

static uint64_t *reg_slot(struct guest_regs *regs, struct insn_frame *frame, unsigned reg)
{
    unsigned off = gpr_offset[reg & 15];
    return off == GPR_IN_FRAME ? &frame->rsp : (uint64_t *)((char *)regs + off);
}

uint64_t insn_reg_read(const struct guest_regs *regs, const struct insn_frame *frame, unsigned reg)
{
    unsigned off = gpr_offset[reg & 15];
    return off == GPR_IN_FRAME ? frame->rsp : *(const uint64_t *)((const char *)regs + off);
}

/* A register operand's value at size bytes (high: AH..BH). */
static uint64_t get_operand(const struct guest_regs *regs, const struct insn_frame *frame,
                            unsigned reg, bool high, unsigned size)
{
    uint64_t v = insn_reg_read(regs, frame, reg);
    return high ? (v >> 8) & 0xFF : v & mask_of(size);
}

static void set_operand(struct guest_regs *regs, struct insn_frame *frame, unsigned reg, bool high,
                        unsigned size, uint64_t value)
{
    uint64_t *r = reg_slot(regs, frame, reg & 15);
    if (high)
        *r = (*r & ~0xFF00ull) | ((value & 0xFF) << 8);
    else if (size >= 4)
        *r = value & mask_of(size); /* 32-bit writes zero-extend */
    else
        *r = (*r & ~mask_of(size)) | (value & mask_of(size));
}

static uint64_t sign_extend(uint64_t v, unsigned bytes)
{
    if (bytes >= 8)
        return v;
    unsigned shift = 64 - 8 * bytes;
    return (uint64_t)((int64_t)(v << shift) >> shift);
}

static bool parity_even(uint64_t v)
{
    return !__builtin_parity((unsigned)(v & 0xFF));
}

/* ZF, SF and PF from the result; CF, OF and AF as computed by the caller. */
static uint64_t result_flags(uint64_t r, unsigned size, bool cf, bool of, bool af)
{
    unsigned msb = 8 * size - 1;
    uint64_t f = 0;
    if (cf)
        f |= RFLAGS_CF;
    if (of)
        f |= RFLAGS_OF;
    if (af)
        f |= RFLAGS_AF;
    if ((r & mask_of(size)) == 0)
        f |= RFLAGS_ZF;
    if ((r >> msb) & 1)
        f |= RFLAGS_SF;
    if (parity_even(r))
        f |= RFLAGS_PF;
    return f;
}

/* dst op src at size bytes: the result and the six arithmetic flags. AND/OR/XOR/TEST
 * clear CF and OF; AF is undefined for them and cleared, as the CPUs do. */
static uint64_t alu(enum insn_op op, uint64_t a, uint64_t b, unsigned size, uint64_t *rflags)
{
    uint64_t m = mask_of(size);
    unsigned msb = 8 * size - 1;
    uint64_t c = *rflags & RFLAGS_CF ? 1 : 0;
    uint64_t r;
    bool cf = false, of = false, af = false;

    a &= m;
    b &= m;
    switch (op) {
    case INSN_OP_ADD:
    case INSN_OP_ADC:
        r = (a + b + (op == INSN_OP_ADC ? c : 0)) & m;
        cf = (((a & b) | ((a | b) & ~r)) >> msb) & 1;
        of = (((a ^ r) & (b ^ r)) >> msb) & 1;
        af = ((a ^ b ^ r) >> 4) & 1;
        break;
    case INSN_OP_SUB:
    case INSN_OP_SBB:
    case INSN_OP_CMP:
        r = (a - b - (op == INSN_OP_SBB ? c : 0)) & m;
        cf = (((~a & b) | ((~a | b) & r)) >> msb) & 1;
        of = (((a ^ b) & (a ^ r)) >> msb) & 1;
        af = ((a ^ b ^ r) >> 4) & 1;
        break;
    case INSN_OP_AND:
    case INSN_OP_TEST:
        r = a & b;
        break;
    case INSN_OP_OR:
        r = a | b;
        break;
    default: /* XOR */
        r = a ^ b;
        break;
    }
    *rflags = (*rflags & ~RFLAGS_ARITH) | result_flags(r, size, cf, of, af);
    return r;
}

static bool is_alu(enum insn_op op)
{
    switch (op) {
    case INSN_OP_ADD: case INSN_OP_OR: case INSN_OP_ADC: case INSN_OP_SBB:
    case INSN_OP_AND: case INSN_OP_SUB: case INSN_OP_XOR: case INSN_OP_CMP:
    case INSN_OP_TEST:
        return true;
    default:
        return false;
    }
}

static enum insn_emul from_access(enum insn_access a)
{
    return a == INSN_ACCESS_FAULT ? INSN_EMUL_FAULT : INSN_EMUL_STOP;
}

static uint64_t next_rip(const struct insn *in, uint64_t rip)
{
    return (rip + in->length) & mask_of(in->mode);
}

uint64_t insn_effective_address(const struct insn *in, const struct guest_regs *regs,
                                const struct insn_frame *frame)
{
    uint64_t ea;
    if (in->op == INSN_OP_MOVS || in->op == INSN_OP_STOS)
        ea = insn_reg_read(regs, frame, in->op == INSN_OP_MOVS ? INSN_RSI : INSN_RDI);
    else if (in->rip_relative)
        ea = next_rip(in, frame->rip) + (uint64_t)in->disp;
    else {
        ea = (uint64_t)in->disp;
        if (in->base != INSN_REG_NONE)
            ea += insn_reg_read(regs, frame, (unsigned)in->base);
        if (in->index != INSN_REG_NONE)
            ea += insn_reg_read(regs, frame, (unsigned)in->index) * in->scale;
    }
    return ea & mask_of(in->addr_size);
}

static enum insn_emul emulate_string(const struct insn *in, struct guest_regs *regs,
                                     struct insn_frame *frame, gpa_t gpa, bool fault_write,
                                     const struct insn_mem_ops *ops)
{
    unsigned as = in->addr_size, w = in->width;
    bool rep = in->prefixes & INSN_PFX_REP;
    uint64_t amask = mask_of(as);
    uint64_t count = regs->rcx & amask;
    enum insn_access a;

    if (rep && count == 0) {
        frame->rip = next_rip(in, frame->rip);
        return INSN_EMUL_DONE;
    }
    if (in->op == INSN_OP_STOS) {
        a = ops->mmio_write(ops->ctx, gpa, w, regs->rax & mask_of(w));
    } else {
        if (!ops->mem_read || !ops->mem_write)
            return INSN_EMUL_UNSUPPORTED;
        uint64_t v = 0;
        if (fault_write) {
            a = ops->mem_read(ops->ctx, in->seg, regs->rsi & amask, w, &v);
            if (a == INSN_ACCESS_OK)
                a = ops->mmio_write(ops->ctx, gpa, w, v & mask_of(w));
        } else {
            a = ops->mmio_read(ops->ctx, gpa, w, &v);
            if (a == INSN_ACCESS_OK)
                a = ops->mem_write(ops->ctx, INSN_SEG_ES, regs->rdi & amask, w, v & mask_of(w));
        }
    }
    if (a != INSN_ACCESS_OK)
        return from_access(a);

    uint64_t step = frame->rflags & RFLAGS_DF ? (uint64_t)0 - w : w;
    set_operand(regs, frame, INSN_RDI, false, as, regs->rdi + step);
    if (in->op == INSN_OP_MOVS)
        set_operand(regs, frame, INSN_RSI, false, as, regs->rsi + step);
    if (rep) {
        set_operand(regs, frame, INSN_RCX, false, as, count - 1);
        if (count - 1 != 0)
            return INSN_EMUL_DONE; /* RIP stays: the next iteration is the guest's */
    }
    frame->rip = next_rip(in, frame->rip);
    return INSN_EMUL_DONE;
}

enum insn_emul insn_emulate(const struct insn *in, struct guest_regs *regs, struct insn_frame *frame,
                            gpa_t gpa, bool fault_write, const struct insn_mem_ops *ops)
{
    unsigned w = in->width, os = in->op_size;
    uint64_t v = 0, flags = frame->rflags;
    enum insn_access a;

    if (in->op == INSN_OP_MOVS || in->op == INSN_OP_STOS)
        return emulate_string(in, regs, frame, gpa, fault_write, ops);

    bool has_reg = in->reg != INSN_REG_NONE;
    uint64_t regval = has_reg ? get_operand(regs, frame, (unsigned)in->reg, in->reg_high, os) : 0;

    switch (in->op) {
    case INSN_OP_MOV_LOAD:
    case INSN_OP_MOVZX:
    case INSN_OP_MOVSX:
        a = ops->mmio_read(ops->ctx, gpa, w, &v);
        if (a != INSN_ACCESS_OK)
            return from_access(a);
        v &= mask_of(w);
        if (in->ext == INSN_EXT_SIGN)
            v = sign_extend(v, w);
        set_operand(regs, frame, (unsigned)in->reg, in->reg_high, os, v);
        break;
    case INSN_OP_MOV_STORE:
    case INSN_OP_MOV_STORE_IMM:
        v = in->op == INSN_OP_MOV_STORE_IMM ? in->imm : regval;
        a = ops->mmio_write(ops->ctx, gpa, w, v & mask_of(w));
        if (a != INSN_ACCESS_OK)
            return from_access(a);
        break;
    case INSN_OP_XCHG:
        a = ops->mmio_read(ops->ctx, gpa, w, &v);
        if (a == INSN_ACCESS_OK)
            a = ops->mmio_write(ops->ctx, gpa, w, regval);
        if (a != INSN_ACCESS_OK)
            return from_access(a);
        set_operand(regs, frame, (unsigned)in->reg, in->reg_high, os, v);
        break;
    case INSN_OP_BT: {
        /* The CPU has already moved the access to the operand-sized unit holding the
         * bit (SDM vol. 2, BT: "Effective Address + (4 * (BitOffset DIV 32))"), so gpa is
         * that unit and only the offset within it counts. */
        uint64_t bit = (in->has_imm ? in->imm : regval) & (8u * w - 1);
        a = ops->mmio_read(ops->ctx, gpa, w, &v);
        if (a != INSN_ACCESS_OK)
            return from_access(a);
        flags = (flags & ~RFLAGS_CF) | ((v >> bit) & 1 ? RFLAGS_CF : 0);
        break;
    }
    default:
        if (!is_alu(in->op))
            return INSN_EMUL_UNSUPPORTED;
        a = ops->mmio_read(ops->ctx, gpa, w, &v);
        if (a != INSN_ACCESS_OK)
            return from_access(a);
        uint64_t src = in->has_imm ? in->imm : regval;
        if (in->to_reg) {
            uint64_t r = alu(in->op, regval, v, os, &flags);
            if (in->op != INSN_OP_CMP)
                set_operand(regs, frame, (unsigned)in->reg, in->reg_high, os, r);
        } else {
            uint64_t r = alu(in->op, v, src, os, &flags);
            if (in->op != INSN_OP_CMP && in->op != INSN_OP_TEST) {
                a = ops->mmio_write(ops->ctx, gpa, w, r & mask_of(w));
                if (a != INSN_ACCESS_OK)
                    return from_access(a);
            }
        }
        break;
    }
    frame->rflags = flags;
    frame->rip = next_rip(in, frame->rip);
    return INSN_EMUL_DONE;
}
