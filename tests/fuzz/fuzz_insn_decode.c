/* Fuzzes the MMIO instruction decoder (arch/x86/insn_decode.c: insn_decode).
 *
 * Input: byte 0 picks the mode (mod 3: 16-bit, 32-bit, 64-bit); the rest are the
 * instruction bytes, of any length (as many as the fetch got, maybe fewer than 15).
 * They are copied into a buffer of exactly that size, so ASan reports any read past it.
 *
 * Checked: the result is one of the documented errors; a decoded instruction is at most
 * 15 bytes and no longer than the input, its fields are in range (widths 1/2/4/8,
 * address sizes of the mode, registers 0-15, AH..BH only without REX, scales 1/2/4/8,
 * RIP-relative only in 64-bit mode, immediates within the operation size), it decodes
 * the same from exactly its own bytes, and cut by one byte it is TRUNCATED; TRUNCATED
 * only for inputs shorter than 15 bytes, TOO_LONG only for longer ones.
 * SOURCES: arch/x86/insn_decode.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/insn_decode.h"

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
    return 0;
}
