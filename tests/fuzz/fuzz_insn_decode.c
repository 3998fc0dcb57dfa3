/* Fuzzes the MMIO instruction decoder (arch/x86/insn_decode.c: insn_decode) and runs what
 * it decodes through the emulator (arch/x86/insn_emulate.c: insn_emulate).
 *
 * Input: byte 0 picks the mode (mod 3: 16-bit, 32-bit, 64-bit) and, in bit 2, whether
 * the fault was a write; the rest are the instruction bytes, of any length (as many as
 * the fetch got, maybe fewer than 15). They are copied into a buffer of exactly that
 * size, so ASan reports any read past it. The bytes after the decoded instruction fill
 * the registers (RAX..R15, RSP, RFLAGS; zero where the input ends) and the value reads
 * return.
 *
 * Checked: the result is one of the documented errors; a decoded instruction is at most
 * 15 bytes and no longer than the input, its fields are in range (widths 1/2/4/8,
 * address sizes of the mode, registers 0-15, AH..BH only without REX, scales 1/2/4/8,
 * RIP-relative only in 64-bit mode, immediates within the operation size), it decodes
 * the same from exactly its own bytes, and cut by one byte it is TRUNCATED; TRUNCATED
 * only for inputs shorter than 15 bytes, TOO_LONG only for longer ones. Emulated: it
 * completes; every access has the decoded width and writes fit in it; only the
 * registers the instruction names change (the register operand for loads, XCHG and ALU
 * forms into a register; RSI/RDI/RCX for strings), only the arithmetic flags change and
 * only for ALU ops and BT (just CF); RIP moves by the length within the mode's width,
 * or stays for a REP iteration that is not the last.
 * SOURCES: arch/x86/insn_decode.c arch/x86/insn_emulate.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/insn_decode.h"
#include "arch/x86/insn_emulate.h"

#define CHECK(cond, ...)                                    \
    do {                                                    \
        if (!(cond)) {                                      \
            fprintf(stderr, "fuzz_insn_decode: " __VA_ARGS__); \
            fprintf(stderr, "\n");                          \
            abort();                                        \
        }                                                   \
    } while (0)

static const enum insn_mode modes[3] = {INSN_MODE_16, INSN_MODE_32, INSN_MODE_64};

static bool is_size(unsigned v)
{
    return v == 1 || v == 2 || v == 4 || v == 8;
}

static enum insn_error decode_copy(const uint8_t *bytes, size_t n, enum insn_mode mode, struct insn *in)
{
    uint8_t *buf = malloc(n ? n : 1);
    CHECK(buf, "out of memory");
    memcpy(buf, bytes, n);
    enum insn_error err = insn_decode(buf, n, mode, in);
    free(buf);
    return err;
}

static void check_fields(const struct insn *in, size_t n)
{
    CHECK(in->length >= 1 && in->length <= INSN_MAX_LEN && in->length <= n, "length %u of %zu",
          in->length, n);
    CHECK(in->op > INSN_OP_NONE && in->op <= INSN_OP_STOS, "op %d", in->op);
    CHECK(is_size(in->width) && is_size(in->op_size), "width %u op_size %u", in->width, in->op_size);
    if (in->mode == INSN_MODE_64)
        CHECK(in->addr_size == 4 || in->addr_size == 8, "64-bit addr_size %u", in->addr_size);
    else
        CHECK(in->addr_size == 2 || in->addr_size == 4, "addr_size %u", in->addr_size);
    CHECK(in->reg >= INSN_REG_NONE && in->reg <= 15, "reg %d", in->reg);
    CHECK(!in->reg_high || (in->reg >= 0 && in->reg <= 3 && in->rex == 0 && in->op_size == 1),
          "high reg %d rex 0x%x", in->reg, in->rex);
    CHECK(in->base >= INSN_REG_NONE && in->base <= 15 && in->index >= INSN_REG_NONE && in->index <= 15,
          "base %d index %d", in->base, in->index);
    CHECK(is_size(in->scale), "scale %u", in->scale);
    CHECK(!in->rip_relative || (in->mode == INSN_MODE_64 && in->base == INSN_REG_NONE &&
                                in->index == INSN_REG_NONE), "RIP-relative");
    CHECK(in->rex == 0 || (in->mode == INSN_MODE_64 && (in->rex & 0xF0) == 0x40), "rex 0x%x", in->rex);
    if (in->mode != INSN_MODE_64)
        CHECK(in->op_size != 8, "64-bit operand outside 64-bit mode");
    if (in->has_imm && in->op != INSN_OP_BT && in->op_size < 8)
        CHECK(in->imm >> (8 * in->op_size) == 0, "imm 0x%llx over %u bytes",
              (unsigned long long)in->imm, in->op_size);
    CHECK(in->width <= in->op_size || in->op == INSN_OP_MOVSX, "width %u over op_size %u",
          in->width, in->op_size);
    CHECK(in->seg <= INSN_SEG_GS, "seg %d", in->seg);
}

/* ---- the emulator's side ---- */
struct fuzz_mem {
    const uint8_t *fill; /* what reads return */
    size_t fill_len;
    unsigned accesses, width;
    bool bad_width, bad_value;
};

static uint64_t fill_value(struct fuzz_mem *m, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width && i < m->fill_len; i++)
        v |= (uint64_t)m->fill[i] << (8 * i);
    return v;
}

static void note(struct fuzz_mem *m, unsigned width, uint64_t value)
{
    m->accesses++;
    if (width != m->width)
        m->bad_width = true;
    if (width < 8 && value >> (8 * width))
        m->bad_value = true;
}

static enum insn_access f_mmio_read(void *ctx, gpa_t gpa, unsigned width, uint64_t *value)
{
    (void)gpa;
    note(ctx, width, 0);
    *value = fill_value(ctx, width);
    return INSN_ACCESS_OK;
}

static enum insn_access f_mmio_write(void *ctx, gpa_t gpa, unsigned width, uint64_t value)
{
    (void)gpa;
    note(ctx, width, value);
    return INSN_ACCESS_OK;
}

static enum insn_access f_mem_read(void *ctx, enum insn_seg seg, uint64_t off, unsigned width, uint64_t *value)
{
    (void)seg;
    (void)off;
    note(ctx, width, 0);
    *value = fill_value(ctx, width);
    return INSN_ACCESS_OK;
}

static enum insn_access f_mem_write(void *ctx, enum insn_seg seg, uint64_t off, unsigned width, uint64_t value)
{
    (void)seg;
    (void)off;
    note(ctx, width, value);
    return INSN_ACCESS_OK;
}

static uint64_t take64(const uint8_t **p, size_t *left)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8 && *left; i++, (*p)++, (*left)--)
        v |= (uint64_t)**p << (8 * i);
    return v;
}

static uint64_t reg_of(const struct guest_regs *r, const struct insn_frame *f, unsigned n)
{
    return insn_reg_read(r, f, n);
}

static void check_emulation(const struct insn *in, bool fault_write, const uint8_t *rest, size_t left)
{
    struct guest_regs regs;
    struct insn_frame frame;
    uint64_t *slots = (uint64_t *)&regs;
    for (unsigned i = 0; i < sizeof(regs) / 8; i++)
        slots[i] = take64(&rest, &left);
    frame.rsp = take64(&rest, &left);
    frame.rip = take64(&rest, &left) & (in->mode == INSN_MODE_64 ? ~0ull :
                                        in->mode == INSN_MODE_32 ? 0xFFFFFFFFull : 0xFFFFull);
    frame.rflags = take64(&rest, &left);
    struct fuzz_mem m = {.fill = rest, .fill_len = left, .width = in->width};
    const struct insn_mem_ops ops = {&m, f_mmio_read, f_mmio_write, f_mem_read, f_mem_write};
    const struct guest_regs before = regs;
    const struct insn_frame fbefore = frame;

    enum insn_emul r = insn_emulate(in, &regs, &frame, 0xfee00000, fault_write, &ops);
    CHECK(r == INSN_EMUL_DONE, "%s not emulated: %d", insn_op_name(in->op), r);
    CHECK(!m.bad_width && !m.bad_value, "an access of the wrong width or value");

    bool string = in->op == INSN_OP_MOVS || in->op == INSN_OP_STOS;
    bool rep = string && (in->prefixes & INSN_PFX_REP);
    uint64_t amask = in->addr_size == 8 ? ~0ull : (1ull << (8 * in->addr_size)) - 1;
    uint64_t count = before.rcx & amask;
    unsigned expected = in->op == INSN_OP_MOVS ? 2 : in->op == INSN_OP_XCHG ? 2 : 1;
    if (rep && count == 0)
        expected = 0;
    /* INSN_OPS order: ADD..XOR read and write memory, CMP and TEST only read it. */
    else if (!string && !in->to_reg && in->op >= INSN_OP_ADD && in->op <= INSN_OP_XOR)
        expected = 2; /* read-modify-write */
    CHECK(m.accesses == expected, "%s: %u accesses, expected %u", insn_op_name(in->op), m.accesses, expected);

    for (unsigned n = 0; n < 16; n++) {
        if (reg_of(&regs, &frame, n) == reg_of(&before, &fbefore, n))
            continue;
        bool may = false;
        if (string)
            may = n == INSN_RDI || n == INSN_RCX || (n == INSN_RSI && in->op == INSN_OP_MOVS);
        else if (in->reg >= 0 && (unsigned)in->reg == n)
            may = in->to_reg ? in->op != INSN_OP_CMP : in->op == INSN_OP_XCHG;
        CHECK(may, "%s changed register %u", insn_op_name(in->op), n);
    }

    uint64_t flag_bits = in->op == INSN_OP_BT ? RFLAGS_CF
                         : (in->op >= INSN_OP_ADD && in->op <= INSN_OP_TEST) ? RFLAGS_ARITH : 0;
    CHECK(((frame.rflags ^ fbefore.rflags) & ~flag_bits) == 0, "%s changed flags 0x%llx", insn_op_name(in->op),
          (unsigned long long)(frame.rflags ^ fbefore.rflags));

    uint64_t ipmask = in->mode == INSN_MODE_64 ? ~0ull : (1ull << (8 * in->mode)) - 1;
    uint64_t next = (fbefore.rip + in->length) & ipmask;
    if (rep && count > 1)
        CHECK(frame.rip == fbefore.rip, "a REP iteration moved RIP");
    else
        CHECK(frame.rip == next, "RIP 0x%llx, expected 0x%llx", (unsigned long long)frame.rip,
              (unsigned long long)next);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum insn_mode mode = modes[data[0] % 3];
    const uint8_t *bytes = data + 1;
    size_t n = size - 1;

    struct insn in;
    enum insn_error err = decode_copy(bytes, n, mode, &in);
    CHECK(err <= INSN_ERR_NO_MEMORY_OPERAND, "error %d", err);
    if (err == INSN_ERR_TRUNCATED)
        CHECK(n < INSN_MAX_LEN, "truncated with %zu bytes", n);
    if (err == INSN_ERR_TOO_LONG)
        CHECK(n >= INSN_MAX_LEN, "too long with %zu bytes", n);
    if (err != INSN_ERR_OK)
        return 0;

    check_fields(&in, n);
    CHECK(in.mode == mode, "mode");

    struct insn again;
    CHECK(decode_copy(bytes, in.length, mode, &again) == INSN_ERR_OK, "own bytes do not decode");
    CHECK(memcmp(&in, &again, sizeof(in)) == 0, "own bytes decode differently");
    CHECK(decode_copy(bytes, in.length - 1u, mode, &again) == INSN_ERR_TRUNCATED,
          "cut by one byte it is not truncated");

    check_emulation(&in, data[0] & 4, bytes + in.length, n - in.length);
    return 0;
}
