/* The MMIO instruction emulator (arch/x86/insn_emulate.c), fed by the decoder: the
 * arithmetic flags of every ALU operation at every width, against hand-computed values
 * and against this host CPU running the same instruction; register writes (32-bit
 * zero-extension, 8/16-bit merges, AH..BH); MOVZX/MOVSX/MOVSXD; XCHG; BT; STOS and MOVS
 * with and without REP, both directions of DF and the address sizes; nothing committed
 * when an access fails; RIP wrap-around; effective addresses. The device is a fake
 * register file that records every access. */
/* SOURCES: arch/x86/insn_emulate.c arch/x86/insn_decode.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/insn_emulate.h"

#define MMIO 0xfee00000ull
#define RFLAGS_IF BIT(9)
#define RFLAGS_FIXED BIT(1)

/* ---- a fake device and a fake RAM for MOVS's other side ---- */
struct access_log {
    unsigned count;
    gpa_t gpa;
    unsigned width;
    uint64_t value;
    enum insn_seg seg;
    uint64_t offset;
};

static uint8_t dev[256];
static uint8_t ram[256];
static struct access_log mmio_reads, mmio_writes, mem_reads, mem_writes;
static enum insn_access mmio_read_result, mmio_write_result, mem_read_result, mem_write_result;

static uint64_t load_le(const uint8_t *p, unsigned width)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void store_le(uint8_t *p, unsigned width, uint64_t v)
{
    for (unsigned i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void check_width(unsigned width, uint64_t value)
{
    assert_true(width == 1 || width == 2 || width == 4 || width == 8);
    if (width < 8)
        assert_int_equal(value >> (8 * width), 0);
}

static enum insn_access dev_read(void *ctx, gpa_t gpa, unsigned width, uint64_t *value)
{
    assert_ptr_equal(ctx, dev);
    mmio_reads.count++;
    mmio_reads.gpa = gpa;
    mmio_reads.width = width;
    check_width(width, 0);
    assert_true(gpa >= MMIO && gpa + width <= MMIO + sizeof(dev));
    *value = load_le(dev + (gpa - MMIO), width);
    return mmio_read_result;
}

static enum insn_access dev_write(void *ctx, gpa_t gpa, unsigned width, uint64_t value)
{
    assert_ptr_equal(ctx, dev);
    mmio_writes.count++;
    mmio_writes.gpa = gpa;
    mmio_writes.width = width;
    mmio_writes.value = value;
    check_width(width, value);
    assert_true(gpa >= MMIO && gpa + width <= MMIO + sizeof(dev));
    if (mmio_write_result == INSN_ACCESS_OK)
        store_le(dev + (gpa - MMIO), width, value);
    return mmio_write_result;
}

static enum insn_access ram_read(void *ctx, enum insn_seg seg, uint64_t offset, unsigned width, uint64_t *value)
{
    (void)ctx;
    mem_reads.count++;
    mem_reads.seg = seg;
    mem_reads.offset = offset;
    mem_reads.width = width;
    assert_true(offset + width <= sizeof(ram));
    *value = load_le(ram + offset, width);
    return mem_read_result;
}

static enum insn_access ram_write(void *ctx, enum insn_seg seg, uint64_t offset, unsigned width, uint64_t value)
{
    (void)ctx;
    mem_writes.count++;
    mem_writes.seg = seg;
    mem_writes.offset = offset;
    mem_writes.width = width;
    mem_writes.value = value;
    check_width(width, value);
    assert_true(offset + width <= sizeof(ram));
    if (mem_write_result == INSN_ACCESS_OK)
        store_le(ram + offset, width, value);
    return mem_write_result;
}

static const struct insn_mem_ops ops = {
    .ctx = dev, .mmio_read = dev_read, .mmio_write = dev_write, .mem_read = ram_read, .mem_write = ram_write,
};
static const struct insn_mem_ops ops_no_mem = {.ctx = dev, .mmio_read = dev_read, .mmio_write = dev_write};

static struct guest_regs regs;
static struct insn_frame frame;

static int setup(void **state)
{
    (void)state;
    memset(dev, 0, sizeof(dev));
    memset(ram, 0, sizeof(ram));
    memset(&mmio_reads, 0, sizeof(mmio_reads));
    memset(&mmio_writes, 0, sizeof(mmio_writes));
    memset(&mem_reads, 0, sizeof(mem_reads));
    memset(&mem_writes, 0, sizeof(mem_writes));
    mmio_read_result = mmio_write_result = mem_read_result = mem_write_result = INSN_ACCESS_OK;
    memset(&regs, 0, sizeof(regs));
    frame = (struct insn_frame){.rsp = 0x8000, .rip = 0x100000, .rflags = RFLAGS_FIXED | RFLAGS_IF};
    return 0;
}

static struct insn decode(enum insn_mode mode, const uint8_t *bytes, size_t n)
{
    struct insn in;
    enum insn_error err = insn_decode(bytes, n, mode, &in);
    if (err != INSN_ERR_OK)
        fail_msg("decode: %s", insn_error_text(err));
    return in;
}

/* Decodes and emulates with the fault at MMIO + offset. */
static enum insn_emul run_at(enum insn_mode mode, uint64_t offset, bool fault_write,
                             const struct insn_mem_ops *o, const uint8_t *bytes, size_t n)
{
    struct insn in = decode(mode, bytes, n);
    return insn_emulate(&in, &regs, &frame, MMIO + offset, fault_write, o);
}
#define NB(...) sizeof((const uint8_t[]){__VA_ARGS__})
#define RUN(mode, ...) run_at(mode, 0, false, &ops, (const uint8_t[]){__VA_ARGS__}, NB(__VA_ARGS__))
#define RUN_W(mode, ...) run_at(mode, 0, true, &ops, (const uint8_t[]){__VA_ARGS__}, NB(__VA_ARGS__))
#define M64 INSN_MODE_64
#define M32 INSN_MODE_32
#define M16 INSN_MODE_16

static uint64_t dev64(unsigned off) { return load_le(dev + off, 8); }

/* ---- ALU flags ---- */

/* The encoding of "op [rdi], eax/ax/al/rax" at a size. */
static const uint8_t alu_base[] = {
    [INSN_OP_ADD] = 0x00, [INSN_OP_OR] = 0x08, [INSN_OP_ADC] = 0x10, [INSN_OP_SBB] = 0x18,
    [INSN_OP_AND] = 0x20, [INSN_OP_SUB] = 0x28, [INSN_OP_XOR] = 0x30, [INSN_OP_CMP] = 0x38,
    [INSN_OP_TEST] = 0x84,
};

static unsigned alu_encode(enum insn_op op, unsigned size, uint8_t *b)
{
    unsigned n = 0;
    if (size == 2)
        b[n++] = 0x66;
    if (size == 8)
        b[n++] = 0x48;
    b[n++] = (uint8_t)(alu_base[op] + (size == 1 ? 0 : 1));
    b[n++] = 0x07;
    return n;
}

static uint64_t mask(unsigned size)
{
    return size == 8 ? ~0ull : (1ull << (8 * size)) - 1;
}

/* mem = mem op rax through the emulator; returns the memory value, *flags the flags. */
static uint64_t emulate_alu(enum insn_op op, unsigned size, uint64_t a, uint64_t b, uint64_t flags_in,
                            uint64_t *flags_out)
{
    uint8_t bytes[4];
    unsigned n = alu_encode(op, size, bytes);
    memset(dev, 0, sizeof(dev));
    store_le(dev, size, a);
    regs.rax = b;
    frame.rflags = flags_in;
    frame.rip = 0x100000;
    unsigned writes = mmio_writes.count;
    assert_int_equal(run_at(M64, 0, false, &ops, bytes, n), INSN_EMUL_DONE);
    assert_int_equal(frame.rip, 0x100000 + n);
    assert_int_equal(regs.rax, b);
    bool writes_back = op != INSN_OP_CMP && op != INSN_OP_TEST;
    assert_int_equal(mmio_writes.count, writes + (writes_back ? 1 : 0));
    *flags_out = frame.rflags;
    return load_le(dev, size);
}

struct known {
    enum insn_op op;
    unsigned size;
    uint64_t a, b;
    bool cf_in;
    uint64_t result, flags;
};

#define CF RFLAGS_CF
#define PF RFLAGS_PF
#define AF RFLAGS_AF
#define ZF RFLAGS_ZF
#define SF RFLAGS_SF
#define OF RFLAGS_OF

/* Worked out from the SDM's definitions, not from any CPU. CMP and TEST leave memory
 * alone (result: the old value). */
static const struct known known[] = {
    {INSN_OP_ADD, 1, 0xFF, 0x01, 0, 0x00, CF | ZF | AF | PF},
    {INSN_OP_ADD, 1, 0x7F, 0x01, 0, 0x80, OF | SF | AF},
    {INSN_OP_ADD, 4, 0x7FFFFFFF, 1, 0, 0x80000000, OF | SF | AF | PF},
    {INSN_OP_ADD, 8, ~0ull, 2, 0, 1, CF | AF},
    {INSN_OP_ADD, 2, 0x1234, 0x4321, 1, 0x5555, PF},
    {INSN_OP_ADC, 1, 0xFF, 0x00, 1, 0x00, CF | ZF | AF | PF},
    {INSN_OP_ADC, 2, 0x7FFF, 0x0000, 1, 0x8000, OF | SF | AF | PF},
    {INSN_OP_ADC, 4, 1, 1, 0, 2, 0},
    {INSN_OP_SUB, 4, 0, 1, 0, 0xFFFFFFFF, CF | SF | AF | PF},
    {INSN_OP_SUB, 1, 0x80, 1, 0, 0x7F, OF | AF},
    {INSN_OP_SUB, 8, 0x8000000000000000ull, 1, 0, 0x7FFFFFFFFFFFFFFFull, OF | AF | PF},
    {INSN_OP_SUB, 2, 0x10, 0x10, 1, 0, ZF | PF},
    {INSN_OP_SBB, 1, 0, 0, 1, 0xFF, CF | SF | AF | PF},
    {INSN_OP_SBB, 4, 5, 3, 1, 1, 0},
    {INSN_OP_CMP, 2, 5, 5, 0, 5, ZF | PF},
    {INSN_OP_CMP, 1, 1, 2, 0, 1, CF | SF | AF | PF},
    {INSN_OP_CMP, 4, 0x80000000, 1, 1, 0x80000000, OF | AF | PF},
    {INSN_OP_AND, 1, 0xF0, 0x0F, 1, 0, ZF | PF},
    {INSN_OP_AND, 8, ~0ull, 0x8000000000000000ull, 1, 0x8000000000000000ull, SF | PF},
    {INSN_OP_OR, 4, 0x80000000, 1, 1, 0x80000001, SF},
    {INSN_OP_OR, 2, 0, 0, 0, 0, ZF | PF},
    {INSN_OP_XOR, 8, 0x123456789ull, 0x123456789ull, 1, 0, ZF | PF},
    {INSN_OP_XOR, 1, 0x0F, 0xF0, 0, 0xFF, SF | PF},
    {INSN_OP_TEST, 1, 0x81, 0x80, 1, 0x81, SF},
    {INSN_OP_TEST, 4, 0x00010000, 0x00000001, 0, 0x00010000, ZF | PF},
};

static void alu_flags_known_values(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
        const struct known *k = &known[i];
        /* OF and SF set beforehand must be recomputed; IF stays. */
        uint64_t in = RFLAGS_FIXED | RFLAGS_IF | OF | SF | (k->cf_in ? CF : 0), out;
        uint64_t r = emulate_alu(k->op, k->size, k->a, k->b, in, &out);
        if (r != k->result || out != (RFLAGS_FIXED | RFLAGS_IF | k->flags))
            fail_msg("case %zu (%s, %u bytes): result 0x%llx flags 0x%llx, expected 0x%llx 0x%llx", i,
                     insn_op_name(k->op), k->size, (unsigned long long)r, (unsigned long long)out,
                     (unsigned long long)k->result, (unsigned long long)(RFLAGS_FIXED | RFLAGS_IF | k->flags));
    }
}

/* The host CPU as the reference: the same operation on registers. */
#define HOST_ALU(mn)                                                                          \
    static uint64_t host_##mn(unsigned size, uint64_t a, uint64_t b, uint64_t *flags)          \
    {                                                                                         \
        uint64_t f = *flags;                                                                  \
        /* Below the red zone, so the push cannot overwrite the compiler's locals. */         \
        switch (size) {                                                                       \
        case 1: {                                                                             \
            uint8_t x = (uint8_t)a, y = (uint8_t)b;                                           \
            __asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" #mn " %[y], %[x]\n\t"   \
                             "pushfq\n\tpop %[f]\n\tadd $128, %%rsp"                           \
                             : [x] "+q"(x), [f] "+r"(f) : [y] "q"(y) : "cc", "memory");          \
            a = x;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 2: {                                                                             \
            uint16_t x = (uint16_t)a, y = (uint16_t)b;                                        \
            __asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" #mn " %[y], %[x]\n\t"   \
                             "pushfq\n\tpop %[f]\n\tadd $128, %%rsp"                           \
                             : [x] "+r"(x), [f] "+r"(f) : [y] "r"(y) : "cc", "memory");          \
            a = x;                                                                            \
            break;                                                                            \
        }                                                                                     \
        case 4: {                                                                             \
            uint32_t x = (uint32_t)a, y = (uint32_t)b;                                        \
            __asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" #mn " %[y], %[x]\n\t"   \
                             "pushfq\n\tpop %[f]\n\tadd $128, %%rsp"                           \
                             : [x] "+r"(x), [f] "+r"(f) : [y] "r"(y) : "cc", "memory");          \
            a = x;                                                                            \
            break;                                                                            \
        }                                                                                     \
        default:                                                                              \
            __asm__ volatile("sub $128, %%rsp\n\tpush %[f]\n\tpopfq\n\t" #mn " %[y], %[x]\n\t"   \
                             "pushfq\n\tpop %[f]\n\tadd $128, %%rsp"                           \
                             : [x] "+r"(a), [f] "+r"(f) : [y] "r"(b) : "cc", "memory");          \
            break;                                                                            \
        }                                                                                     \
        *flags = f;                                                                           \
        return a;                                                                             \
    }
HOST_ALU(add)
HOST_ALU(or)
HOST_ALU(adc)
HOST_ALU(sbb)
HOST_ALU(and)
HOST_ALU(sub)
HOST_ALU(xor)
HOST_ALU(cmp)
HOST_ALU(test)

static uint64_t host_alu(enum insn_op op, unsigned size, uint64_t a, uint64_t b, uint64_t *flags)
{
    switch (op) {
    case INSN_OP_ADD: return host_add(size, a, b, flags);
    case INSN_OP_OR: return host_or(size, a, b, flags);
    case INSN_OP_ADC: return host_adc(size, a, b, flags);
    case INSN_OP_SBB: return host_sbb(size, a, b, flags);
    case INSN_OP_AND: return host_and(size, a, b, flags);
    case INSN_OP_SUB: return host_sub(size, a, b, flags);
    case INSN_OP_XOR: return host_xor(size, a, b, flags);
    case INSN_OP_CMP: (void)host_cmp(size, a, b, flags); return a;
    default: (void)host_test(size, a, b, flags); return a;
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void alu_flags_match_the_host_cpu(void **state)
{
    (void)state;
    static const uint64_t edges[] = {0, 1, 2, 0x0F, 0x10, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF,
                                     0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x7FFFFFFFFFFFFFFFull,
                                     0x8000000000000000ull, ~0ull};
    static const enum insn_op ops_list[] = {INSN_OP_ADD, INSN_OP_OR, INSN_OP_ADC, INSN_OP_SBB,
                                            INSN_OP_AND, INSN_OP_SUB, INSN_OP_XOR, INSN_OP_CMP,
                                            INSN_OP_TEST};
    static const unsigned sizes[] = {1, 2, 4, 8};
    unsigned compared = 0;
    for (size_t o = 0; o < ARRAY_SIZE(ops_list); o++) {
        enum insn_op op = ops_list[o];
        /* AF is undefined after AND/OR/XOR/TEST. */
        uint64_t checked = op == INSN_OP_AND || op == INSN_OP_OR || op == INSN_OP_XOR || op == INSN_OP_TEST
                               ? RFLAGS_ARITH & ~AF : RFLAGS_ARITH;
        for (size_t s = 0; s < ARRAY_SIZE(sizes); s++) {
            unsigned size = sizes[s];
            for (unsigned i = 0; i < ARRAY_SIZE(edges) * ARRAY_SIZE(edges) + 400; i++) {
                uint64_t a, b;
                if (i < ARRAY_SIZE(edges) * ARRAY_SIZE(edges)) {
                    a = edges[i / ARRAY_SIZE(edges)];
                    b = edges[i % ARRAY_SIZE(edges)];
                } else {
                    a = rnd();
                    b = rnd();
                }
                a &= mask(size);
                b &= mask(size);
                uint64_t in = RFLAGS_FIXED | (rnd() & RFLAGS_ARITH);
                uint64_t hf = in, ef;
                uint64_t hr = host_alu(op, size, a, b, &hf) & mask(size);
                uint64_t er = emulate_alu(op, size, a, b, in | RFLAGS_IF, &ef);
                if (er != hr || (ef & checked) != (hf & checked) || (ef & ~RFLAGS_ARITH) != (in & ~RFLAGS_ARITH) + RFLAGS_IF)
                    fail_msg("%s %u bytes 0x%llx, 0x%llx (flags in 0x%llx): emulated 0x%llx flags 0x%llx, "
                             "host 0x%llx flags 0x%llx", insn_op_name(op), size, (unsigned long long)a,
                             (unsigned long long)b, (unsigned long long)in, (unsigned long long)er,
                             (unsigned long long)ef, (unsigned long long)hr, (unsigned long long)hf);
                compared++;
            }
        }
    }
    assert_true(compared > 20000);
}

/* ALU forms with the register as destination, and with immediates. */
static void alu_register_and_immediate_forms(void **state)
{
    (void)state;
    store_le(dev, 4, 0x00000001);
    regs.rax = 0xFFFFFFFFFFFFFFFFull;
    assert_int_equal(RUN(M64, 0x03, 0x07), INSN_EMUL_DONE); /* add eax,[rdi] */
    assert_int_equal(regs.rax, 0); /* 0xFFFFFFFF + 1, zero-extended */
    assert_int_equal(frame.rflags & RFLAGS_ARITH, CF | ZF | AF | PF);
    assert_int_equal(mmio_writes.count, 0);

    dev[0] = 0x0F;
    regs.rax = 0x1122334455667788ull;
    assert_int_equal(RUN(M64, 0x0a, 0x27), INSN_EMUL_DONE); /* or ah,[rdi] */
    assert_int_equal(regs.rax, 0x1122334455667F88ull);

    regs.rcx = 5;
    store_le(dev, 4, 7);
    assert_int_equal(RUN(M64, 0x3b, 0x0f), INSN_EMUL_DONE); /* cmp ecx,[rdi] */
    assert_int_equal(regs.rcx, 5);
    assert_int_equal(frame.rflags & RFLAGS_ARITH, CF | SF | AF);

    /* and dword [rdi],0xfffffeff (81 /4 id); or dword [rdi],0x10 (83 /1 ib) */
    store_le(dev, 4, 0x00000300);
    assert_int_equal(RUN(M64, 0x81, 0x27, 0xff, 0xfe, 0xff, 0xff), INSN_EMUL_DONE);
    assert_int_equal(load_le(dev, 4), 0x200);
    assert_int_equal(RUN(M64, 0x83, 0x0f, 0x10), INSN_EMUL_DONE);
    assert_int_equal(load_le(dev, 4), 0x210);
    /* add qword [rdi],-1: the imm8 sign-extends to 64 bits */
    store_le(dev, 8, 0);
    assert_int_equal(RUN(M64, 0x48, 0x83, 0x07, 0xff), INSN_EMUL_DONE);
    assert_int_equal(dev64(0), ~0ull);
    assert_int_equal(frame.rflags & RFLAGS_ARITH, SF | PF);
    /* cmp byte [rdi],0x80 and test dword [rdi],0x10000: no writes */
    store_le(dev, 8, 0x80);
    unsigned writes = mmio_writes.count;
    assert_int_equal(RUN(M64, 0x80, 0x3f, 0x80), INSN_EMUL_DONE);
    assert_int_equal(RUN(M64, 0xf7, 0x07, 0x00, 0x00, 0x01, 0x00), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.count, writes);
    assert_true(frame.rflags & ZF);
    /* lock sub dword [rdi+8],1 at offset 8 */
    store_le(dev + 8, 4, 1);
    assert_int_equal(run_at(M64, 8, true, &ops, (const uint8_t[]){0xf0, 0x83, 0x6f, 0x08, 0x01}, 5),
                     INSN_EMUL_DONE);
    assert_int_equal(load_le(dev + 8, 4), 0);
    assert_int_equal(mmio_writes.gpa, MMIO + 8);
    assert_true(frame.rflags & ZF);
}

/* ---- moves and register widths ---- */

static void loads_zero_extend_or_merge(void **state)
{
    (void)state;
    store_le(dev, 8, 0x8877665544332211ull);
    regs.rax = ~0ull;
    assert_int_equal(RUN(M64, 0x8b, 0x07), INSN_EMUL_DONE); /* mov eax */
    assert_int_equal(regs.rax, 0x44332211);
    assert_int_equal(mmio_reads.width, 4);
    assert_int_equal(mmio_reads.gpa, MMIO);
    assert_int_equal(frame.rip, 0x100002);

    regs.rax = 0x3333333333333333ull;
    assert_int_equal(RUN(M64, 0x66, 0x8b, 0x07), INSN_EMUL_DONE); /* mov ax */
    assert_int_equal(regs.rax, 0x3333333333332211ull);
    assert_int_equal(RUN(M64, 0x8a, 0x27), INSN_EMUL_DONE); /* mov ah */
    assert_int_equal(regs.rax, 0x3333333333331111ull);
    regs.rax = 0x2222222222222222ull;
    assert_int_equal(RUN(M64, 0x8a, 0x07), INSN_EMUL_DONE); /* mov al */
    assert_int_equal(regs.rax, 0x2222222222222211ull);
    assert_int_equal(RUN(M64, 0x48, 0x8b, 0x07), INSN_EMUL_DONE); /* mov rax */
    assert_int_equal(regs.rax, 0x8877665544332211ull);
    assert_int_equal(mmio_reads.width, 8);

    regs.r13 = ~0ull;
    assert_int_equal(RUN(M64, 0x44, 0x8b, 0x2f), INSN_EMUL_DONE); /* mov r13d */
    assert_int_equal(regs.r13, 0x44332211);
    regs.rsi = ~0ull;
    assert_int_equal(RUN(M64, 0x40, 0x8a, 0x37), INSN_EMUL_DONE); /* mov sil, not dh */
    assert_int_equal(regs.rsi, 0xFFFFFFFFFFFFFF11ull);
    regs.rdx = 0;
    assert_int_equal(RUN(M64, 0x8a, 0x37), INSN_EMUL_DONE); /* mov dh */
    assert_int_equal(regs.rdx, 0x1100);
    /* RSP lives in the frame */
    assert_int_equal(RUN(M64, 0x8b, 0x27), INSN_EMUL_DONE); /* mov esp,[rdi] */
    assert_int_equal(frame.rsp, 0x44332211);

    /* A 32-bit guest's 32-bit load also clears the upper half; 16-bit mode merges ax. */
    regs.rcx = ~0ull;
    assert_int_equal(RUN(M32, 0x8b, 0x0f), INSN_EMUL_DONE);
    assert_int_equal(regs.rcx, 0x44332211);
    regs.rcx = 0xAAAA0000BBBB0000ull;
    assert_int_equal(RUN(M16, 0x8b, 0x0f), INSN_EMUL_DONE);
    assert_int_equal(regs.rcx, 0xAAAA0000BBBB2211ull);
    /* moffs load */
    regs.rax = ~0ull;
    frame.rip = 0x100000;
    assert_int_equal(RUN(M64, 0xa1, 0, 0, 0xe0, 0xfe, 0, 0, 0, 0), INSN_EMUL_DONE);
    assert_int_equal(regs.rax, 0x44332211);
    assert_int_equal(frame.rip, 0x100009);
}

static void stores_take_the_right_bytes(void **state)
{
    (void)state;
    regs.rcx = 0xAABBCCDD11223344ull;
    assert_int_equal(RUN(M64, 0x89, 0x0f), INSN_EMUL_DONE); /* mov [rdi],ecx */
    assert_int_equal(mmio_writes.width, 4);
    assert_int_equal(mmio_writes.value, 0x11223344);
    regs.rax = 0x1234;
    assert_int_equal(RUN(M64, 0x88, 0x27), INSN_EMUL_DONE); /* mov [rdi],ah */
    assert_int_equal(mmio_writes.value, 0x12);
    assert_int_equal(mmio_writes.width, 1);
    frame.rsp = 0x80F0;
    assert_int_equal(RUN(M64, 0x40, 0x88, 0x27), INSN_EMUL_DONE); /* mov [rdi],spl */
    assert_int_equal(mmio_writes.value, 0xF0);
    regs.r8 = 0x1FF;
    assert_int_equal(RUN(M64, 0x44, 0x88, 0x07), INSN_EMUL_DONE); /* mov [rdi],r8b */
    assert_int_equal(mmio_writes.value, 0xFF);
    regs.r15 = 0x0123456789ABCDEFull;
    assert_int_equal(RUN(M64, 0x4c, 0x89, 0x3f), INSN_EMUL_DONE); /* mov [rdi],r15 */
    assert_int_equal(mmio_writes.value, 0x0123456789ABCDEFull);
    assert_int_equal(mmio_writes.width, 8);
    assert_int_equal(RUN(M64, 0x48, 0xc7, 0x07, 0xfe, 0xff, 0xff, 0xff), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.value, 0xFFFFFFFFFFFFFFFEull);
    assert_int_equal(RUN(M64, 0x66, 0xc7, 0x07, 0x34, 0x12), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.value, 0x1234);
    assert_int_equal(mmio_writes.width, 2);
    /* mov dword [rdi+0xb0],0: the APIC EOI, at the fault's address */
    assert_int_equal(run_at(M64, 0xb0, true, &ops,
                            (const uint8_t[]){0xc7, 0x87, 0xb0, 0, 0, 0, 0, 0, 0, 0}, 10), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.gpa, MMIO + 0xb0);
    assert_int_equal(mmio_writes.value, 0);
    regs.rax = 0x99;
    assert_int_equal(RUN(M32, 0xa2, 0x00, 0x00, 0xe0, 0xfe), INSN_EMUL_DONE); /* mov [moffs],al */
    assert_int_equal(mmio_writes.value, 0x99);
    assert_int_equal(mmio_reads.count, 0);
}

static void movzx_movsx(void **state)
{
    (void)state;
    dev[0] = 0x80;
    dev[1] = 0x80;
    dev[2] = 0x00;
    dev[3] = 0x80;
    regs.rax = ~0ull;
    assert_int_equal(RUN(M64, 0x0f, 0xb6, 0x07), INSN_EMUL_DONE);
    assert_int_equal(regs.rax, 0x80);
    assert_int_equal(mmio_reads.width, 1);
    assert_int_equal(RUN(M64, 0x0f, 0xbe, 0x07), INSN_EMUL_DONE);
    assert_int_equal(regs.rax, 0xFFFFFF80);
    assert_int_equal(RUN(M64, 0x48, 0x0f, 0xbe, 0x07), INSN_EMUL_DONE);
    assert_int_equal(regs.rax, 0xFFFFFFFFFFFFFF80ull);
    regs.rax = 0x1111111111111111ull;
    assert_int_equal(RUN(M64, 0x66, 0x0f, 0xbe, 0x07), INSN_EMUL_DONE); /* movsx ax,byte */
    assert_int_equal(regs.rax, 0x111111111111FF80ull);
    assert_int_equal(RUN(M64, 0x48, 0x0f, 0xbf, 0x07), INSN_EMUL_DONE); /* movsx rax,word */
    assert_int_equal(regs.rax, 0xFFFFFFFFFFFF8080ull);
    assert_int_equal(mmio_reads.width, 2);
    assert_int_equal(RUN(M64, 0x0f, 0xb7, 0x07), INSN_EMUL_DONE); /* movzx eax,word */
    assert_int_equal(regs.rax, 0x8080);
    assert_int_equal(RUN(M64, 0x48, 0x63, 0x07), INSN_EMUL_DONE); /* movsxd rax */
    assert_int_equal(regs.rax, 0xFFFFFFFF80008080ull);
    assert_int_equal(mmio_reads.width, 4);
    assert_int_equal(RUN(M64, 0x63, 0x07), INSN_EMUL_DONE); /* movsxd eax: a plain move */
    assert_int_equal(regs.rax, 0x80008080);
    regs.rdx = 0;
    assert_int_equal(RUN(M16, 0x0f, 0xbe, 0x17), INSN_EMUL_DONE); /* movsx dx,byte [bx] */
    assert_int_equal(regs.rdx, 0xFF80);
}

static void xchg_swaps(void **state)
{
    (void)state;
    store_le(dev, 4, 0x11111111);
    regs.rax = 0xFFFFFFFF22222222ull;
    assert_int_equal(RUN(M64, 0x87, 0x07), INSN_EMUL_DONE);
    assert_int_equal(load_le(dev, 4), 0x22222222);
    assert_int_equal(regs.rax, 0x11111111);
    dev[0] = 0xAB;
    regs.rbx = 0x1234;
    assert_int_equal(RUN(M64, 0x86, 0x3f), INSN_EMUL_DONE); /* xchg [rdi],bh */
    assert_int_equal(dev[0], 0x12);
    assert_int_equal(regs.rbx, 0xAB34);
    store_le(dev, 8, 0x0102030405060708ull);
    regs.r9 = 7;
    assert_int_equal(RUN(M64, 0x4c, 0x87, 0x0f), INSN_EMUL_DONE); /* xchg [rdi],r9 */
    assert_int_equal(dev64(0), 7);
    assert_int_equal(regs.r9, 0x0102030405060708ull);
}

static void bt_sets_only_cf(void **state)
{
    (void)state;
    store_le(dev, 4, 0x00000008);
    regs.rax = 35; /* bit 3 of the dword the CPU picked */
    frame.rflags = RFLAGS_FIXED | ZF | SF | OF;
    assert_int_equal(RUN(M64, 0x0f, 0xa3, 0x07), INSN_EMUL_DONE);
    assert_int_equal(frame.rflags, RFLAGS_FIXED | ZF | SF | OF | CF);
    regs.rax = 2;
    assert_int_equal(RUN(M64, 0x0f, 0xa3, 0x07), INSN_EMUL_DONE);
    assert_int_equal(frame.rflags, RFLAGS_FIXED | ZF | SF | OF);
    regs.rax = 0xFFFFFFFF; /* -1: bit 31 of the dword below */
    store_le(dev, 4, 0x80000000);
    assert_int_equal(RUN(M64, 0x0f, 0xa3, 0x07), INSN_EMUL_DONE);
    assert_true(frame.rflags & CF);
    store_le(dev, 8, 1ull << 60);
    regs.rax = 60 + 128;
    assert_int_equal(RUN(M64, 0x48, 0x0f, 0xa3, 0x07), INSN_EMUL_DONE);
    assert_true(frame.rflags & CF);
    assert_int_equal(mmio_reads.width, 8);
    store_le(dev, 4, 1u << 5);
    frame.rflags = RFLAGS_FIXED;
    assert_int_equal(RUN(M64, 0x0f, 0xba, 0x27, 0x25), INSN_EMUL_DONE); /* bt dword [rdi],37 */
    assert_int_equal(frame.rflags, RFLAGS_FIXED | CF);
    assert_int_equal(mmio_writes.count, 0);
}

/* ---- strings ---- */

static void stos_single_and_rep(void **state)
{
    (void)state;
    regs.rax = 0xAABBCCDD;
    regs.rdi = 0x1000;
    assert_int_equal(RUN_W(M64, 0xab), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.value, 0xAABBCCDD);
    assert_int_equal(mmio_writes.width, 4);
    assert_int_equal(regs.rdi, 0x1004);
    assert_int_equal(frame.rip, 0x100001);
    frame.rflags |= RFLAGS_DF;
    assert_int_equal(RUN_W(M64, 0x48, 0xab), INSN_EMUL_DONE);
    assert_int_equal(regs.rdi, 0x0FFC);
    assert_int_equal(mmio_writes.width, 8);
    frame.rflags &= ~RFLAGS_DF;

    /* rep stosb, RCX 2: one element per call; RIP stays until RCX is 0. */
    regs.rcx = 2;
    frame.rip = 0x200;
    assert_int_equal(RUN_W(M64, 0xf3, 0xaa), INSN_EMUL_DONE);
    assert_int_equal(regs.rcx, 1);
    assert_int_equal(frame.rip, 0x200);
    assert_int_equal(regs.rdi, 0x0FFD);
    assert_int_equal(RUN_W(M64, 0xf3, 0xaa), INSN_EMUL_DONE);
    assert_int_equal(regs.rcx, 0);
    assert_int_equal(frame.rip, 0x202);
    assert_int_equal(regs.rdi, 0x0FFE);
    assert_int_equal(mmio_writes.count, 4);
    /* RCX 0: nothing written, the instruction completes */
    assert_int_equal(RUN_W(M64, 0xf3, 0xaa), INSN_EMUL_DONE);
    assert_int_equal(mmio_writes.count, 4);
    assert_int_equal(frame.rip, 0x204);

    /* 67 in 64-bit mode: ECX and EDI, written as 32-bit registers */
    regs.rcx = 0xFFFFFFFF00000001ull;
    regs.rdi = 0x12345678FFFFFFFFull;
    assert_int_equal(RUN_W(M64, 0x67, 0xf3, 0xaa), INSN_EMUL_DONE);
    assert_int_equal(regs.rcx, 0);
    assert_int_equal(regs.rdi, 0);
    assert_int_equal(frame.rip, 0x207);
    /* 16-bit: DI wraps at 64 KiB and the rest of RDI stays */
    regs.rdi = 0xABCD0000FFFFull;
    frame.rip = 0x10;
    assert_int_equal(RUN_W(M16, 0xaa), INSN_EMUL_DONE);
    assert_int_equal(regs.rdi, 0xABCD00000000ull);
    assert_int_equal(frame.rip, 0x11);
}

static void movs_between_mmio_and_ram(void **state)
{
    (void)state;
    /* Device to RAM: the read faulted, so the source is the device. */
    store_le(dev + 0x10, 4, 0xCAFEF00D);
    regs.rsi = 0x7000;
    regs.rdi = 0x20;
    assert_int_equal(run_at(M64, 0x10, false, &ops, (const uint8_t[]){0xa5}, 1), INSN_EMUL_DONE);
    assert_int_equal(mmio_reads.gpa, MMIO + 0x10);
    assert_int_equal(mem_writes.count, 1);
    assert_int_equal(mem_writes.seg, INSN_SEG_ES);
    assert_int_equal(mem_writes.offset, 0x20);
    assert_int_equal(load_le(ram + 0x20, 4), 0xCAFEF00D);
    assert_int_equal(regs.rsi, 0x7004);
    assert_int_equal(regs.rdi, 0x24);
    assert_int_equal(mem_reads.count, 0);

    /* RAM to device, source through an FS override: the write faulted. */
    store_le(ram + 0x40, 2, 0xBEEF);
    regs.rsi = 0x40;
    regs.rdi = 0x9000;
    assert_int_equal(run_at(M64, 0x20, true, &ops, (const uint8_t[]){0x64, 0x66, 0xa5}, 3), INSN_EMUL_DONE);
    assert_int_equal(mem_reads.seg, INSN_SEG_FS);
    assert_int_equal(mem_reads.offset, 0x40);
    assert_int_equal(mem_reads.width, 2);
    assert_int_equal(mmio_writes.gpa, MMIO + 0x20);
    assert_int_equal(mmio_writes.value, 0xBEEF);
    assert_int_equal(regs.rsi, 0x42);
    assert_int_equal(regs.rdi, 0x9002);

    /* rep movsb downwards, 32-bit mode */
    frame.rflags |= RFLAGS_DF;
    regs.rcx = 0xFFFFFFFF00000002ull; /* ECX 2 */
    regs.rsi = 0x50;
    regs.rdi = 0x0;
    frame.rip = 0x400;
    ram[0x50] = 0x5A;
    assert_int_equal(run_at(M32, 0x30, true, &ops, (const uint8_t[]){0xf3, 0xa4}, 2), INSN_EMUL_DONE);
    assert_int_equal(dev[0x30], 0x5A);
    assert_int_equal(regs.rcx, 1);
    assert_int_equal(regs.rsi, 0x4F);
    assert_int_equal(regs.rdi, 0xFFFFFFFF);
    assert_int_equal(frame.rip, 0x400);

    /* Without a path to RAM MOVS is refused, and nothing changes. */
    struct guest_regs before = regs;
    struct insn_frame fbefore = frame;
    assert_int_equal(run_at(M64, 0, false, &ops_no_mem, (const uint8_t[]){0xa5}, 1), INSN_EMUL_UNSUPPORTED);
    assert_memory_equal(&regs, &before, sizeof(regs));
    assert_memory_equal(&frame, &fbefore, sizeof(frame));
}

/* ---- failures commit nothing ---- */

static void failed_accesses_change_nothing(void **state)
{
    (void)state;
    regs = (struct guest_regs){.rax = 1, .rcx = 3, .rsi = 0x10, .rdi = 0x20};
    frame.rflags = RFLAGS_FIXED | CF;
    struct guest_regs before = regs;
    struct insn_frame fbefore = frame;

    mmio_read_result = INSN_ACCESS_FAULT;
    assert_int_equal(RUN(M64, 0x8b, 0x07), INSN_EMUL_FAULT);
    assert_int_equal(RUN(M64, 0x87, 0x07), INSN_EMUL_FAULT);
    assert_int_equal(RUN(M64, 0x01, 0x07), INSN_EMUL_FAULT);
    mmio_read_result = INSN_ACCESS_OK;
    mmio_write_result = INSN_ACCESS_STOP;
    assert_int_equal(RUN(M64, 0x01, 0x07), INSN_EMUL_STOP); /* read done, write refused */
    assert_int_equal(RUN(M64, 0x87, 0x07), INSN_EMUL_STOP);
    assert_int_equal(RUN(M64, 0x89, 0x07), INSN_EMUL_STOP);
    assert_int_equal(RUN_W(M64, 0xf3, 0xab), INSN_EMUL_STOP);
    mmio_write_result = INSN_ACCESS_OK;
    mem_write_result = INSN_ACCESS_FAULT; /* a #PF on the RAM side */
    assert_int_equal(RUN(M64, 0xf3, 0xa5), INSN_EMUL_FAULT);
    mem_write_result = INSN_ACCESS_OK;
    mem_read_result = INSN_ACCESS_FAULT;
    assert_int_equal(RUN_W(M64, 0xa5), INSN_EMUL_FAULT);
    assert_memory_equal(&regs, &before, sizeof(regs));
    assert_memory_equal(&frame, &fbefore, sizeof(frame));
}

static void rip_wraps_with_the_mode(void **state)
{
    (void)state;
    frame.rip = 0xFFFF;
    assert_int_equal(RUN(M16, 0x8b, 0x07), INSN_EMUL_DONE);
    assert_int_equal(frame.rip, 0x0001);
    frame.rip = 0xFFFFFFFF;
    assert_int_equal(RUN(M32, 0x8b, 0x07), INSN_EMUL_DONE);
    assert_int_equal(frame.rip, 0x1);
    frame.rip = 0xFFFFFFFF;
    assert_int_equal(RUN(M64, 0x8b, 0x07), INSN_EMUL_DONE);
    assert_int_equal(frame.rip, 0x100000001ull);
}

static uint64_t ea(enum insn_mode mode, const uint8_t *bytes, size_t n)
{
    struct insn in = decode(mode, bytes, n);
    return insn_effective_address(&in, &regs, &frame);
}
#define EA(mode, ...) ea(mode, (const uint8_t[]){__VA_ARGS__}, NB(__VA_ARGS__))

static void effective_addresses(void **state)
{
    (void)state;
    regs.rax = 0x100;
    regs.rcx = 0x3;
    regs.rbx = 0xFFF0;
    regs.rsi = 0x20;
    regs.rbp = 0x8000;
    regs.r12 = 0x7000;
    frame.rsp = 0x5000;
    frame.rip = 0x400000;
    assert_int_equal(EA(M64, 0x8b, 0x84, 0xc8, 0x00, 0x10, 0x00, 0x00), 0x100 + 3 * 8 + 0x1000);
    assert_int_equal(EA(M64, 0x8b, 0x44, 0x24, 0x08), 0x5008);               /* [rsp+8] */
    assert_int_equal(EA(M64, 0x41, 0x8b, 0x04, 0x24), 0x7000);               /* [r12] */
    assert_int_equal(EA(M64, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff), 0x400006 - 0x10); /* RIP-relative */
    assert_int_equal(EA(M64, 0x8b, 0x04, 0x25, 0x00, 0x00, 0xe0, 0xfe), 0xFFFFFFFFFEE00000ull);
    assert_int_equal(EA(M64, 0x67, 0x8b, 0x04, 0x25, 0x00, 0x00, 0xe0, 0xfe), 0xFEE00000ull);
    assert_int_equal(EA(M64, 0xa1, 0x00, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00), 0xFEE00000ull);
    assert_int_equal(EA(M32, 0x8b, 0x45, 0xfc), 0x7FFC);                     /* [ebp-4] */
    assert_int_equal(EA(M16, 0x8b, 0x40, 0x20), (0xFFF0 + 0x20 + 0x20) & 0xFFFF); /* [bx+si+0x20] */
    assert_int_equal(EA(M64, 0xa5), 0x20);                                   /* MOVS: rSI */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, NULL)
    const struct CMUnitTest tests[] = {
        T(alu_flags_known_values),
        T(alu_flags_match_the_host_cpu),
        T(alu_register_and_immediate_forms),
        T(loads_zero_extend_or_merge),
        T(stores_take_the_right_bytes),
        T(movzx_movsx),
        T(xchg_swaps),
        T(bt_sets_only_cf),
        T(stos_single_and_rep),
        T(movs_between_mmio_and_ram),
        T(failed_accesses_change_nothing),
        T(rip_wraps_with_the_mode),
        T(effective_addresses),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
