/* The MMIO instruction decoder (arch/x86/insn_decode.c): a table of encodings in all three
 * modes (bytes -> operation, access width, register operand, length, or the error), then
 * the details the table does not show: addressing (ModRM, SIB, displacements,
 * RIP-relative, 16-bit forms), segments, immediates, prefixes and REX, and that nothing
 * past the given bytes is read. Lengths and operands were checked against binutils'
 * objdump when the table was written. */
/* SOURCES: arch/x86/insn_decode.c */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/insn_decode.h"

#define M16 INSN_MODE_16
#define M32 INSN_MODE_32
#define M64 INSN_MODE_64
#define NO INSN_REG_NONE

struct dcase {
    enum insn_mode mode;
    const char *text;
    enum insn_error err;
    enum insn_op op;
    uint8_t width;
    int8_t reg;
    bool high;
    uint8_t len;
    uint8_t n;
    uint8_t bytes[20];
};

#define NBYTES(...) ((uint8_t)sizeof((uint8_t[]){__VA_ARGS__}))
/* An instruction that decodes: mode, text, operation, width, register, AH..BH, length. */
#define C(m, t, o, w, r, h, l, ...) \
    {m, t, INSN_ERR_OK, INSN_OP_##o, w, r, h, l, NBYTES(__VA_ARGS__), {__VA_ARGS__}}
/* One that is refused. */
#define E(m, t, e, ...) {m, t, INSN_ERR_##e, INSN_OP_NONE, 0, 0, 0, 0, NBYTES(__VA_ARGS__), {__VA_ARGS__}}

#define MOFFS64 0x00, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00

static const struct dcase cases[] = {
    /* ---- 64-bit mode: MOV ---- */
    C(M64, "mov eax,[rdi]", MOV_LOAD, 4, 0, 0, 2, 0x8b, 0x07),
    C(M64, "mov rax,[rdi]", MOV_LOAD, 8, 0, 0, 3, 0x48, 0x8b, 0x07),
    C(M64, "mov [rsi],ecx", MOV_STORE, 4, 1, 0, 2, 0x89, 0x0e),
    C(M64, "mov [rdi],al", MOV_STORE, 1, 0, 0, 2, 0x88, 0x07),
    C(M64, "mov [rdi],ah", MOV_STORE, 1, 0, 1, 2, 0x88, 0x27),
    C(M64, "mov [rdi],bh", MOV_STORE, 1, 3, 1, 2, 0x88, 0x3f),
    C(M64, "mov [rdi],spl", MOV_STORE, 1, 4, 0, 3, 0x40, 0x88, 0x27),
    C(M64, "mov [rdi],dil", MOV_STORE, 1, 7, 0, 3, 0x40, 0x88, 0x3f),
    C(M64, "mov [rdi],r8b", MOV_STORE, 1, 8, 0, 3, 0x44, 0x88, 0x07),
    C(M64, "mov [rdi],ax", MOV_STORE, 2, 0, 0, 3, 0x66, 0x89, 0x07),
    C(M64, "mov [rdi],r15", MOV_STORE, 8, 15, 0, 3, 0x4c, 0x89, 0x3f),
    C(M64, "mov al,[rdi+0x10]", MOV_LOAD, 1, 0, 0, 3, 0x8a, 0x47, 0x10),
    C(M64, "mov ch,[rdi]", MOV_LOAD, 1, 1, 1, 2, 0x8a, 0x2f),
    C(M64, "mov eax,[rdi+0x300]", MOV_LOAD, 4, 0, 0, 6, 0x8b, 0x87, 0x00, 0x03, 0x00, 0x00),
    C(M64, "mov eax,[rsp]", MOV_LOAD, 4, 0, 0, 3, 0x8b, 0x04, 0x24),
    C(M64, "mov eax,[rsp+8]", MOV_LOAD, 4, 0, 0, 4, 0x8b, 0x44, 0x24, 0x08),
    C(M64, "mov eax,[rcx*4+disp32]", MOV_LOAD, 4, 0, 0, 7, 0x8b, 0x04, 0x8d, 0x00, 0x00, 0xe0, 0xfe),
    C(M64, "mov eax,[rip+0x10]", MOV_LOAD, 4, 0, 0, 6, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00),
    C(M64, "mov r8d,[rip-0x10]", MOV_LOAD, 4, 8, 0, 7, 0x44, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff),
    C(M64, "mov r13,[abs32]", MOV_LOAD, 8, 13, 0, 8, 0x4c, 0x8b, 0x2c, 0x25, 0x00, 0x00, 0xe0, 0xfe),
    C(M64, "mov eax,[rax+r12*4]", MOV_LOAD, 4, 0, 0, 4, 0x42, 0x8b, 0x04, 0xa0),
    C(M64, "mov eax,[r12]", MOV_LOAD, 4, 0, 0, 4, 0x41, 0x8b, 0x04, 0x24),
    C(M64, "mov eax,[r13+0]", MOV_LOAD, 4, 0, 0, 4, 0x41, 0x8b, 0x45, 0x00),
    C(M64, "mov eax,[r8]", MOV_LOAD, 4, 0, 0, 3, 0x41, 0x8b, 0x00),
    C(M64, "mov r9d,[r9+rax*8]", MOV_LOAD, 4, 9, 0, 4, 0x45, 0x8b, 0x0c, 0xc1),
    C(M64, "mov eax,[r12+0x100]", MOV_LOAD, 4, 0, 0, 8, 0x41, 0x8b, 0x84, 0x24, 0x00, 0x01, 0x00, 0x00),
    C(M64, "mov eax,[rax+rcx*8+0x1000]", MOV_LOAD, 4, 0, 0, 7, 0x8b, 0x84, 0xc8, 0x00, 0x10, 0x00, 0x00),
    C(M64, "mov rdx,[rbp-8]", MOV_LOAD, 8, 2, 0, 4, 0x48, 0x8b, 0x55, 0xf8),
    C(M64, "mov dword [rdi],1", MOV_STORE_IMM, 4, NO, 0, 6, 0xc7, 0x07, 0x01, 0x00, 0x00, 0x00),
    C(M64, "mov qword [rdi],-1", MOV_STORE_IMM, 8, NO, 0, 7, 0x48, 0xc7, 0x07, 0xff, 0xff, 0xff, 0xff),
    C(M64, "mov byte [rdi],0x80", MOV_STORE_IMM, 1, NO, 0, 3, 0xc6, 0x07, 0x80),
    C(M64, "mov word [rdi],0x1234", MOV_STORE_IMM, 2, NO, 0, 5, 0x66, 0xc7, 0x07, 0x34, 0x12),
    C(M64, "mov dword [rdi+0xb0],0", MOV_STORE_IMM, 4, NO, 0, 10,
      0xc7, 0x87, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
    C(M64, "mov eax,[moffs64]", MOV_LOAD, 4, 0, 0, 9, 0xa1, MOFFS64),
    C(M64, "mov [moffs64],rax", MOV_STORE, 8, 0, 0, 10, 0x48, 0xa3, MOFFS64),
    C(M64, "mov al,[moffs64]", MOV_LOAD, 1, 0, 0, 9, 0xa0, MOFFS64),
    C(M64, "mov [moffs64],al", MOV_STORE, 1, 0, 0, 9, 0xa2, MOFFS64),
    C(M64, "mov eax,[moffs32] (67)", MOV_LOAD, 4, 0, 0, 6, 0x67, 0xa1, 0x00, 0x00, 0xe0, 0xfe),
    C(M64, "mov eax,gs:[0]", MOV_LOAD, 4, 0, 0, 8, 0x65, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00),
    C(M64, "mov eax,fs:[rdi]", MOV_LOAD, 4, 0, 0, 3, 0x64, 0x8b, 0x07),
    C(M64, "mov eax,cs:[rdi] (ignored)", MOV_LOAD, 4, 0, 0, 3, 0x2e, 0x8b, 0x07),
    C(M64, "mov eax,[edi] (67)", MOV_LOAD, 4, 0, 0, 3, 0x67, 0x8b, 0x07),
    C(M64, "66 REX.W: REX.W wins", MOV_LOAD, 8, 0, 0, 4, 0x66, 0x48, 0x8b, 0x07),
    C(M64, "REX then 66: REX dropped", MOV_LOAD, 2, 0, 0, 4, 0x48, 0x66, 0x8b, 0x07),
    C(M64, "REX.R dropped by a later 66", MOV_LOAD, 2, 0, 0, 4, 0x44, 0x66, 0x8b, 0x07),
    C(M64, "two REX: the last counts", MOV_LOAD, 8, 8, 0, 4, 0x41, 0x4c, 0x8b, 0x07),
    C(M64, "xrelease mov [rdi],eax", MOV_STORE, 4, 0, 0, 3, 0xf3, 0x89, 0x07),
    C(M64, "13 DS prefixes, 15 bytes", MOV_LOAD, 4, 0, 0, 15, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e,
      0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x8b, 0x07),
    /* ---- 64-bit: MOVZX / MOVSX / MOVSXD ---- */
    C(M64, "movzx eax,byte [rdi]", MOVZX, 1, 0, 0, 3, 0x0f, 0xb6, 0x07),
    C(M64, "movzx eax,word [rdi]", MOVZX, 2, 0, 0, 3, 0x0f, 0xb7, 0x07),
    C(M64, "movzx rax,byte [rdi]", MOVZX, 1, 0, 0, 4, 0x48, 0x0f, 0xb6, 0x07),
    C(M64, "movzx ax,byte [rdi]", MOVZX, 1, 0, 0, 4, 0x66, 0x0f, 0xb6, 0x07),
    C(M64, "movzx esi,byte [rdi] (reg 6, not DH)", MOVZX, 1, 6, 0, 3, 0x0f, 0xb6, 0x37),
    C(M64, "movzx r10d,word [rip+4]", MOVZX, 2, 10, 0, 8, 0x44, 0x0f, 0xb7, 0x15, 0x04, 0x00, 0x00, 0x00),
    C(M64, "movsx eax,byte [rdi]", MOVSX, 1, 0, 0, 3, 0x0f, 0xbe, 0x07),
    C(M64, "movsx rax,word [rdi]", MOVSX, 2, 0, 0, 4, 0x48, 0x0f, 0xbf, 0x07),
    C(M64, "movsxd rax,dword [rdi]", MOVSX, 4, 0, 0, 3, 0x48, 0x63, 0x07),
    C(M64, "movsxd eax,dword [rdi]", MOVSX, 4, 0, 0, 2, 0x63, 0x07),
    /* ---- 64-bit: ALU ---- */
    C(M64, "add [rdi],eax", ADD, 4, 0, 0, 2, 0x01, 0x07),
    C(M64, "add eax,[rdi]", ADD, 4, 0, 0, 2, 0x03, 0x07),
    C(M64, "add [rdi],al", ADD, 1, 0, 0, 2, 0x00, 0x07),
    C(M64, "add dh,[rdi]", ADD, 1, 2, 1, 2, 0x02, 0x37),
    C(M64, "or [rdi],ecx", OR, 4, 1, 0, 2, 0x09, 0x0f),
    C(M64, "or ecx,[rdi]", OR, 4, 1, 0, 2, 0x0b, 0x0f),
    C(M64, "adc [rdi],al", ADC, 1, 0, 0, 2, 0x10, 0x07),
    C(M64, "sbb [rdi],al", SBB, 1, 0, 0, 2, 0x18, 0x07),
    C(M64, "and [rdi],edx", AND, 4, 2, 0, 2, 0x21, 0x17),
    C(M64, "and edx,[rdi]", AND, 4, 2, 0, 2, 0x23, 0x17),
    C(M64, "sub [rdi],ebx", SUB, 4, 3, 0, 2, 0x29, 0x1f),
    C(M64, "xor [rdi],esi", XOR, 4, 6, 0, 2, 0x31, 0x37),
    C(M64, "cmp [rdi],eax", CMP, 4, 0, 0, 2, 0x39, 0x07),
    C(M64, "cmp eax,[rdi]", CMP, 4, 0, 0, 2, 0x3b, 0x07),
    C(M64, "cmp [rdi],r11", CMP, 8, 11, 0, 3, 0x4c, 0x39, 0x1f),
    C(M64, "or byte [rdi],1", OR, 1, NO, 0, 3, 0x80, 0x0f, 0x01),
    C(M64, "and dword [rdi],0xfffffeff", AND, 4, NO, 0, 6, 0x81, 0x27, 0xff, 0xfe, 0xff, 0xff),
    C(M64, "or dword [rdi],0x10", OR, 4, NO, 0, 3, 0x83, 0x0f, 0x10),
    C(M64, "sub dword [rdi],-1", SUB, 4, NO, 0, 3, 0x83, 0x2f, 0xff),
    C(M64, "add qword [rdi],-1", ADD, 8, NO, 0, 4, 0x48, 0x83, 0x07, 0xff),
    C(M64, "add word [rdi],0x1234", ADD, 2, NO, 0, 5, 0x66, 0x81, 0x07, 0x34, 0x12),
    C(M64, "cmp byte [rdi],0", CMP, 1, NO, 0, 3, 0x80, 0x3f, 0x00),
    C(M64, "cmp dword [rdi+0x20],0", CMP, 4, NO, 0, 4, 0x83, 0x7f, 0x20, 0x00),
    C(M64, "adc dword [rdi],1", ADC, 4, NO, 0, 3, 0x83, 0x17, 0x01),
    C(M64, "sbb dword [rdi],1", SBB, 4, NO, 0, 3, 0x83, 0x1f, 0x01),
    C(M64, "xor qword [rdi],0x7fffffff", XOR, 8, NO, 0, 7, 0x48, 0x81, 0x37, 0xff, 0xff, 0xff, 0x7f),
    C(M64, "lock add [rdi],eax", ADD, 4, 0, 0, 3, 0xf0, 0x01, 0x07),
    C(M64, "lock or dword [rdi],1", OR, 4, NO, 0, 4, 0xf0, 0x83, 0x0f, 0x01),
    C(M64, "xacquire lock add [rdi],eax", ADD, 4, 0, 0, 4, 0xf2, 0xf0, 0x01, 0x07),
    /* ---- 64-bit: TEST, BT, XCHG ---- */
    C(M64, "test [rdi],eax", TEST, 4, 0, 0, 2, 0x85, 0x07),
    C(M64, "test [rdi],ah", TEST, 1, 0, 1, 2, 0x84, 0x27),
    C(M64, "test byte [rdi],1", TEST, 1, NO, 0, 3, 0xf6, 0x07, 0x01),
    C(M64, "test dword [rdi],0x10000", TEST, 4, NO, 0, 6, 0xf7, 0x07, 0x00, 0x00, 0x01, 0x00),
    C(M64, "test word [rdi],1", TEST, 2, NO, 0, 5, 0x66, 0xf7, 0x07, 0x01, 0x00),
    C(M64, "test qword [rdi],-2", TEST, 8, NO, 0, 7, 0x48, 0xf7, 0x07, 0xfe, 0xff, 0xff, 0xff),
    C(M64, "bt [rdi],eax", BT, 4, 0, 0, 3, 0x0f, 0xa3, 0x07),
    C(M64, "bt [rdi],rax", BT, 8, 0, 0, 4, 0x48, 0x0f, 0xa3, 0x07),
    C(M64, "bt [rdi],ax", BT, 2, 0, 0, 4, 0x66, 0x0f, 0xa3, 0x07),
    C(M64, "bt dword [rdi],5", BT, 4, NO, 0, 4, 0x0f, 0xba, 0x27, 0x05),
    C(M64, "xchg [rdi],al", XCHG, 1, 0, 0, 2, 0x86, 0x07),
    C(M64, "xchg [rdi],eax", XCHG, 4, 0, 0, 2, 0x87, 0x07),
    C(M64, "xchg [rdi],rax", XCHG, 8, 0, 0, 3, 0x48, 0x87, 0x07),
    C(M64, "lock xchg [rdi],eax", XCHG, 4, 0, 0, 3, 0xf0, 0x87, 0x07),
    C(M64, "xacquire xchg [rdi],eax", XCHG, 4, 0, 0, 3, 0xf2, 0x87, 0x07),
    /* ---- 64-bit: strings ---- */
    C(M64, "stosb", STOS, 1, 0, 0, 1, 0xaa),
    C(M64, "stosd", STOS, 4, 0, 0, 1, 0xab),
    C(M64, "stosq", STOS, 8, 0, 0, 2, 0x48, 0xab),
    C(M64, "stosw", STOS, 2, 0, 0, 2, 0x66, 0xab),
    C(M64, "rep stosd", STOS, 4, 0, 0, 2, 0xf3, 0xab),
    C(M64, "movsb", MOVS, 1, NO, 0, 1, 0xa4),
    C(M64, "movsd", MOVS, 4, NO, 0, 1, 0xa5),
    C(M64, "rep movsq", MOVS, 8, NO, 0, 3, 0xf3, 0x48, 0xa5),
    C(M64, "rep movsb", MOVS, 1, NO, 0, 2, 0xf3, 0xa4),
    C(M64, "rep movsd fs:", MOVS, 4, NO, 0, 3, 0x64, 0xf3, 0xa5),
    /* ---- 64-bit: refused ---- */
    E(M64, "mov eax,eax (register only)", NO_MEMORY_OPERAND, 0x89, 0xc0),
    E(M64, "movzx eax,al (register only)", NO_MEMORY_OPERAND, 0x0f, 0xb6, 0xc0),
    E(M64, "bt eax,eax (register only)", NO_MEMORY_OPERAND, 0x0f, 0xa3, 0xc0),
    E(M64, "add dword eax,1 (register only)", NO_MEMORY_OPERAND, 0x83, 0xc0, 0x01),
    E(M64, "82 is #UD in 64-bit mode", INVALID, 0x82, 0x07, 0x01),
    E(M64, "lock mov", INVALID, 0xf0, 0x8b, 0x07),
    E(M64, "lock mov store", INVALID, 0xf0, 0x89, 0x07),
    E(M64, "lock cmp", INVALID, 0xf0, 0x39, 0x07),
    E(M64, "lock cmp imm", INVALID, 0xf0, 0x83, 0x3f, 0x01),
    E(M64, "lock add reg,[mem]", INVALID, 0xf0, 0x03, 0x07),
    E(M64, "lock test", INVALID, 0xf0, 0x85, 0x07),
    E(M64, "lock bt", INVALID, 0xf0, 0x0f, 0xa3, 0x07),
    E(M64, "lock stos", INVALID, 0xf0, 0xab),
    E(M64, "C7 /1", INVALID, 0xc7, 0x4f, 0x00, 0x01, 0x00, 0x00, 0x00),
    E(M64, "0F BA /0", INVALID, 0x0f, 0xba, 0x07, 0x05),
    E(M64, "bts dword [rdi],5", UNSUPPORTED, 0x0f, 0xba, 0x2f, 0x05),
    E(M64, "not dword [rdi]", UNSUPPORTED, 0xf7, 0x17),
    E(M64, "inc dword [rdi]", UNSUPPORTED, 0xff, 0x07),
    E(M64, "ud2", UNSUPPORTED, 0x0f, 0x0b),
    E(M64, "lodsd", UNSUPPORTED, 0xad),
    E(M64, "cmpsb", UNSUPPORTED, 0xa6),
    E(M64, "repne movsd", UNSUPPORTED, 0xf2, 0xa5),
    E(M64, "rep and repne", UNSUPPORTED, 0xf2, 0xf3, 0xab),
    E(M64, "rep add (no lock)", UNSUPPORTED, 0xf3, 0x01, 0x07),
    E(M64, "F3 0F B6 (mandatory-prefix space)", UNSUPPORTED, 0xf3, 0x0f, 0xb6, 0x07),
    E(M64, "VEX", UNSUPPORTED, 0xc5, 0xf9, 0x6e, 0x07),
    E(M64, "3-byte map 0F 38", UNSUPPORTED, 0x0f, 0x38, 0x00, 0x07),
    E(M64, "opcode missing", TRUNCATED, 0x48),
    E(M64, "ModRM missing", TRUNCATED, 0x8b),
    E(M64, "SIB missing", TRUNCATED, 0x8b, 0x04),
    E(M64, "disp32 cut", TRUNCATED, 0x8b, 0x87, 0x00, 0x03),
    E(M64, "imm32 cut", TRUNCATED, 0xc7, 0x07, 0x01, 0x00),
    E(M64, "moffs cut", TRUNCATED, 0xa1, 0x00, 0x00, 0xe0, 0xfe),
    E(M64, "empty", TRUNCATED),
    E(M64, "14 prefixes, 16 bytes", TOO_LONG, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e,
      0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x3e, 0x8b, 0x07),
    E(M64, "mov [edi+disp32],imm32 with 67 and 5 segs: 16 bytes", TOO_LONG, 0x67, 0x2e, 0x2e,
      0x2e, 0x2e, 0x2e, 0xc7, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00),
    C(M64, "mov [edi+disp32],imm32 with 67 and 4 segs: 15 bytes", MOV_STORE_IMM, 4, NO, 0, 15, 0x67,
      0x2e, 0x2e, 0x2e, 0x2e, 0xc7, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00),

    /* ---- 32-bit protected mode ---- */
    C(M32, "mov eax,[edi]", MOV_LOAD, 4, 0, 0, 2, 0x8b, 0x07),
    C(M32, "mov ax,[edi]", MOV_LOAD, 2, 0, 0, 3, 0x66, 0x8b, 0x07),
    C(M32, "mov eax,[0xfee00000] (moffs)", MOV_LOAD, 4, 0, 0, 5, 0xa1, 0x00, 0x00, 0xe0, 0xfe),
    C(M32, "mov eax,[disp32] (not RIP-relative)", MOV_LOAD, 4, 0, 0, 6, 0x8b, 0x05, 0x00, 0x00, 0xe0, 0xfe),
    C(M32, "mov eax,[esp]", MOV_LOAD, 4, 0, 0, 3, 0x8b, 0x04, 0x24),
    C(M32, "mov eax,[ebp+8]", MOV_LOAD, 4, 0, 0, 3, 0x8b, 0x45, 0x08),
    C(M32, "mov eax,[bx] (67)", MOV_LOAD, 4, 0, 0, 3, 0x67, 0x8b, 0x07),
    C(M32, "mov [edi],ah", MOV_STORE, 1, 0, 1, 2, 0x88, 0x27),
    C(M32, "or byte [edi],1 (82)", OR, 1, NO, 0, 3, 0x82, 0x0f, 0x01),
    C(M32, "mov dword [0xfee000b0],0", MOV_STORE_IMM, 4, NO, 0, 10,
      0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00),
    C(M32, "mov eax,ds:[edi]", MOV_LOAD, 4, 0, 0, 3, 0x3e, 0x8b, 0x07),
    C(M32, "mov eax,es:[edi]", MOV_LOAD, 4, 0, 0, 3, 0x26, 0x8b, 0x07),
    C(M32, "mov eax,fs:[0]", MOV_LOAD, 4, 0, 0, 6, 0x64, 0xa1, 0x00, 0x00, 0x00, 0x00),
    C(M32, "rep movsd", MOVS, 4, NO, 0, 2, 0xf3, 0xa5),
    C(M32, "movsw", MOVS, 2, NO, 0, 2, 0x66, 0xa5),
    C(M32, "movzx eax,word [ebp-4]", MOVZX, 2, 0, 0, 4, 0x0f, 0xb7, 0x45, 0xfc),
    C(M32, "movsx ecx,byte [eax+ecx*2+1]", MOVSX, 1, 1, 0, 5, 0x0f, 0xbe, 0x4c, 0x48, 0x01),
    C(M32, "and dword [ebx+0x20],0xfffffffe", AND, 4, NO, 0, 4, 0x83, 0x63, 0x20, 0xfe),
    C(M32, "xchg [esi],ecx", XCHG, 4, 1, 0, 2, 0x87, 0x0e),
    C(M32, "bt dword [edx],31", BT, 4, NO, 0, 4, 0x0f, 0xba, 0x22, 0x1f),
    E(M32, "48 is DEC eax, not REX", UNSUPPORTED, 0x48, 0x8b, 0x07),
    E(M32, "63 is ARPL", UNSUPPORTED, 0x63, 0x07),
    E(M32, "register only", NO_MEMORY_OPERAND, 0x8b, 0xc0),

    /* ---- real mode / 16-bit ---- */
    C(M16, "mov ax,[bx]", MOV_LOAD, 2, 0, 0, 2, 0x8b, 0x07),
    C(M16, "mov eax,[bx] (66)", MOV_LOAD, 4, 0, 0, 3, 0x66, 0x8b, 0x07),
    C(M16, "mov ax,[bp+2]", MOV_LOAD, 2, 0, 0, 3, 0x8b, 0x46, 0x02),
    C(M16, "mov ax,[0x1000]", MOV_LOAD, 2, 0, 0, 4, 0x8b, 0x06, 0x00, 0x10),
    C(M16, "mov ax,[bx+si]", MOV_LOAD, 2, 0, 0, 2, 0x8b, 0x00),
    C(M16, "mov ax,[bp+di+0x1234]", MOV_LOAD, 2, 0, 0, 4, 0x8b, 0x83, 0x34, 0x12),
    C(M16, "mov ax,[edi] (67)", MOV_LOAD, 2, 0, 0, 3, 0x67, 0x8b, 0x07),
    C(M16, "mov ax,[esp+4] (67, SIB)", MOV_LOAD, 2, 0, 0, 5, 0x67, 0x8b, 0x44, 0x24, 0x04),
    C(M16, "mov ax,[0x1000] (moffs)", MOV_LOAD, 2, 0, 0, 3, 0xa1, 0x00, 0x10),
    C(M16, "mov byte [0x1000],0xff", MOV_STORE_IMM, 1, NO, 0, 5, 0xc6, 0x06, 0x00, 0x10, 0xff),
    C(M16, "mov word [di],0x55aa", MOV_STORE_IMM, 2, NO, 0, 4, 0xc7, 0x05, 0xaa, 0x55),
    C(M16, "stosb", STOS, 1, 0, 0, 1, 0xaa),
    C(M16, "rep stosw", STOS, 2, 0, 0, 2, 0xf3, 0xab),
    C(M16, "mov ah,[si]", MOV_LOAD, 1, 0, 1, 2, 0x8a, 0x24),
    C(M16, "or word [0x1000],1", OR, 2, NO, 0, 5, 0x83, 0x0e, 0x00, 0x10, 0x01),
    C(M16, "or dword [0x1000],imm32 (66)", OR, 4, NO, 0, 9, 0x66, 0x81, 0x0e, 0x00, 0x10,
      0x00, 0x00, 0x01, 0x00),
    C(M16, "test byte [bx+1],0x80", TEST, 1, NO, 0, 4, 0xf6, 0x47, 0x01, 0x80),
    C(M16, "movzx ax,byte [bx]", MOVZX, 1, 0, 0, 3, 0x0f, 0xb6, 0x07),
    E(M16, "disp16 cut", TRUNCATED, 0x8b, 0x06, 0x00),
};

static void table(void **state)
{
    (void)state;
    unsigned failed = 0;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct dcase *c = &cases[i];
        /* An exact-size copy, so ASan catches any read past the bytes. */
        uint8_t *buf = malloc(c->n ? c->n : 1);
        memcpy(buf, c->bytes, c->n);
        struct insn in;
        enum insn_error err = insn_decode(buf, c->n, c->mode, &in);
        free(buf);
        bool ok = err == c->err;
        if (ok && err == INSN_ERR_OK)
            ok = in.op == c->op && in.width == c->width && in.reg == c->reg &&
                 in.reg_high == c->high && in.length == c->len;
        if (!ok) {
            failed++;
            fprintf(stderr, "case %zu (mode %d) \"%s\": got %s, op %s width %u reg %d high %d len %u\n",
                    i, c->mode * 8, c->text, insn_error_text(err), insn_op_name(in.op), in.width,
                    in.reg, in.reg_high, in.length);
        }
    }
    assert_true(ARRAY_SIZE(cases) >= 100);
    assert_int_equal(failed, 0);
}

static struct insn decode_ok(enum insn_mode mode, const uint8_t *bytes, size_t n)
{
    struct insn in;
    enum insn_error err = insn_decode(bytes, n, mode, &in);
    if (err != INSN_ERR_OK)
        fail_msg("decode: %s", insn_error_text(err));
    return in;
}
#define DECODE(mode, ...) decode_ok(mode, (const uint8_t[]){__VA_ARGS__}, NBYTES(__VA_ARGS__))

static void sib_and_displacements(void **state)
{
    (void)state;
    /* mov eax,[rax+rcx*8+0x1000] */
    struct insn in = DECODE(M64, 0x8b, 0x84, 0xc8, 0x00, 0x10, 0x00, 0x00);
    assert_true(in.has_modrm && in.has_sib);
    assert_int_equal(in.modrm, 0x84);
    assert_int_equal(in.sib, 0xc8);
    assert_int_equal(in.base, INSN_RAX);
    assert_int_equal(in.index, INSN_RCX);
    assert_int_equal(in.scale, 8);
    assert_int_equal(in.disp, 0x1000);
    assert_int_equal(in.disp_size, 4);
    assert_false(in.rip_relative);
    assert_int_equal(in.addr_size, 8);

    /* mov eax,[rsp+8]: SIB with index 4 = none, disp8, SS */
    in = DECODE(M64, 0x8b, 0x44, 0x24, 0x08);
    assert_int_equal(in.base, INSN_RSP);
    assert_int_equal(in.index, INSN_REG_NONE);
    assert_int_equal(in.disp, 8);
    assert_int_equal(in.disp_size, 1);
    assert_int_equal(in.seg, INSN_SEG_SS);

    /* mov rdx,[rbp-8]: disp8 sign-extended, SS */
    in = DECODE(M64, 0x48, 0x8b, 0x55, 0xf8);
    assert_int_equal(in.base, INSN_RBP);
    assert_int_equal(in.disp, -8);
    assert_int_equal(in.seg, INSN_SEG_SS);
    assert_int_equal(in.rex, 0x48);

    /* mov eax,[rax+r12*4]: REX.X makes index 4 into R12 */
    in = DECODE(M64, 0x42, 0x8b, 0x04, 0xa0);
    assert_int_equal(in.index, INSN_R12);
    assert_int_equal(in.base, INSN_RAX);
    assert_int_equal(in.scale, 4);

    /* mov eax,[r13+0]: base 5 with REX.B and mod 1 is R13, not "no base"; DS, not SS */
    in = DECODE(M64, 0x41, 0x8b, 0x45, 0x00);
    assert_int_equal(in.base, INSN_R13);
    assert_int_equal(in.disp_size, 1);
    assert_int_equal(in.seg, INSN_SEG_DS);

    /* mov eax,[r13*1+disp32]? No: 41 8b 04 25 is [disp32] (base 5 with mod 0 means none
     * whatever REX.B says). */
    in = DECODE(M64, 0x41, 0x8b, 0x04, 0x25, 0x00, 0x00, 0xe0, 0xfe);
    assert_int_equal(in.base, INSN_REG_NONE);
    assert_int_equal(in.index, INSN_REG_NONE);
    assert_int_equal(in.disp, (int64_t)(int32_t)0xfee00000);
    assert_false(in.rip_relative);

    /* mov eax,[rcx*4+disp32] */
    in = DECODE(M64, 0x8b, 0x04, 0x8d, 0x00, 0x00, 0xe0, 0xfe);
    assert_int_equal(in.base, INSN_REG_NONE);
    assert_int_equal(in.index, INSN_RCX);
    assert_int_equal(in.scale, 4);
}

static void rip_relative(void **state)
{
    (void)state;
    struct insn in = DECODE(M64, 0x44, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff);
    assert_true(in.rip_relative);
    assert_int_equal(in.base, INSN_REG_NONE);
    assert_int_equal(in.disp, -16);
    assert_int_equal(in.reg, INSN_R8);

    /* An immediate after a RIP-relative operand: mov dword [rip+0x100],7 */
    in = DECODE(M64, 0xc7, 0x05, 0x00, 0x01, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00);
    assert_true(in.rip_relative);
    assert_int_equal(in.disp, 0x100);
    assert_int_equal(in.imm, 7);
    assert_int_equal(in.length, 10);

    /* The same bytes in 32-bit mode are an absolute disp32. */
    in = DECODE(M32, 0x8b, 0x05, 0x00, 0x00, 0xe0, 0xfe);
    assert_false(in.rip_relative);
    assert_int_equal(in.base, INSN_REG_NONE);
    assert_int_equal((uint32_t)in.disp, 0xfee00000);
}

static void sixteen_bit_addressing(void **state)
{
    (void)state;
    struct insn in = DECODE(M16, 0x8b, 0x83, 0x34, 0x12); /* [bp+di+0x1234] */
    assert_int_equal(in.base, INSN_RBP);
    assert_int_equal(in.index, INSN_RDI);
    assert_int_equal(in.disp, 0x1234);
    assert_int_equal(in.disp_size, 2);
    assert_int_equal(in.seg, INSN_SEG_SS);
    assert_int_equal(in.addr_size, 2);
    assert_int_equal(in.op_size, 2);

    in = DECODE(M16, 0x8b, 0x06, 0x00, 0x10); /* [0x1000] */
    assert_int_equal(in.base, INSN_REG_NONE);
    assert_int_equal(in.index, INSN_REG_NONE);
    assert_int_equal(in.disp, 0x1000);
    assert_int_equal(in.seg, INSN_SEG_DS);

    in = DECODE(M16, 0x8a, 0x24); /* mov ah,[si] */
    assert_int_equal(in.base, INSN_RSI);
    assert_int_equal(in.index, INSN_REG_NONE);

    in = DECODE(M16, 0x8b, 0x46, 0xfe); /* [bp-2] */
    assert_int_equal(in.base, INSN_RBP);
    assert_int_equal(in.disp, -2);
    assert_int_equal(in.seg, INSN_SEG_SS);

    in = DECODE(M16, 0x8b, 0x00); /* [bx+si] */
    assert_int_equal(in.base, INSN_RBX);
    assert_int_equal(in.index, INSN_RSI);
    assert_int_equal(in.seg, INSN_SEG_DS);

    /* 67 in 16-bit mode: 32-bit addressing, SIB and all */
    in = DECODE(M16, 0x67, 0x8b, 0x44, 0x24, 0x04);
    assert_int_equal(in.addr_size, 4);
    assert_int_equal(in.base, INSN_RSP);
    assert_int_equal(in.seg, INSN_SEG_SS);

    /* 67 in 32-bit mode: 16-bit addressing */
    in = DECODE(M32, 0x67, 0x8b, 0x07);
    assert_int_equal(in.addr_size, 2);
    assert_int_equal(in.base, INSN_RBX);
}

static void immediates(void **state)
{
    (void)state;
    struct insn in = DECODE(M64, 0x83, 0x2f, 0xff); /* sub dword [rdi],-1 */
    assert_true(in.has_imm);
    assert_int_equal(in.imm_size, 1);
    assert_int_equal(in.imm, 0xffffffffu);
    in = DECODE(M64, 0x48, 0x83, 0x07, 0xff); /* add qword [rdi],-1 */
    assert_int_equal(in.imm, ~0ull);
    in = DECODE(M64, 0x48, 0xc7, 0x07, 0x00, 0x00, 0x00, 0x80); /* imm32 sign-extended */
    assert_int_equal(in.imm_size, 4);
    assert_int_equal(in.imm, 0xffffffff80000000ull);
    in = DECODE(M64, 0x66, 0x81, 0x07, 0x34, 0x82); /* imm16 */
    assert_int_equal(in.imm_size, 2);
    assert_int_equal(in.imm, 0x8234);
    in = DECODE(M64, 0x66, 0x83, 0x07, 0x80); /* imm8 to 16 bits */
    assert_int_equal(in.imm, 0xff80);
    in = DECODE(M64, 0xc6, 0x07, 0x80); /* byte: stays a byte */
    assert_int_equal(in.imm, 0x80);
    in = DECODE(M64, 0x0f, 0xba, 0x27, 0xff); /* BT's offset is unsigned */
    assert_int_equal(in.imm, 0xff);
    in = DECODE(M16, 0xc7, 0x05, 0xaa, 0x55); /* 16-bit mode: imm16 */
    assert_int_equal(in.imm, 0x55aa);
    assert_int_equal(in.imm_size, 2);
    in = DECODE(M64, 0x8b, 0x07);
    assert_false(in.has_imm);
}

static void prefixes_and_segments(void **state)
{
    (void)state;
    struct insn in = DECODE(M64, 0x65, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00);
    assert_int_equal(in.seg, INSN_SEG_GS);
    assert_true(in.prefixes & INSN_PFX_SEG);

    /* In 64-bit mode CS/DS/ES/SS overrides are ignored: [rsp] stays SS, [rdi] DS. */
    in = DECODE(M64, 0x26, 0x8b, 0x04, 0x24);
    assert_int_equal(in.seg, INSN_SEG_SS);
    in = DECODE(M64, 0x36, 0x8b, 0x07);
    assert_int_equal(in.seg, INSN_SEG_DS);
    /* ... but not in 32-bit mode; the last override counts. */
    in = DECODE(M32, 0x26, 0x64, 0x8b, 0x07);
    assert_int_equal(in.seg, INSN_SEG_FS);
    in = DECODE(M32, 0x36, 0x8b, 0x07);
    assert_int_equal(in.seg, INSN_SEG_SS);

    /* STOS always writes ES; MOVS reads DS or the override. */
    in = DECODE(M32, 0x64, 0xab);
    assert_int_equal(in.seg, INSN_SEG_ES);
    in = DECODE(M32, 0x64, 0xa5);
    assert_int_equal(in.seg, INSN_SEG_FS);
    in = DECODE(M64, 0xa5);
    assert_int_equal(in.seg, INSN_SEG_DS);

    in = DECODE(M64, 0xf3, 0x48, 0xa5);
    assert_true(in.prefixes & INSN_PFX_REP);
    assert_int_equal(in.rex, 0x48);
    assert_int_equal(in.addr_size, 8);
    in = DECODE(M64, 0x67, 0xf3, 0xaa);
    assert_int_equal(in.addr_size, 4);
    in = DECODE(M64, 0xf0, 0x01, 0x07);
    assert_true(in.prefixes & INSN_PFX_LOCK);
    in = DECODE(M64, 0x66, 0x48, 0x8b, 0x07);
    assert_true(in.prefixes & INSN_PFX_OPSIZE);
    assert_int_equal(in.op_size, 8);
    in = DECODE(M64, 0x48, 0x66, 0x8b, 0x07);
    assert_int_equal(in.rex, 0);
    assert_int_equal(in.op_size, 2);
}

static void operand_sizes_and_extension(void **state)
{
    (void)state;
    struct insn in = DECODE(M64, 0x48, 0x0f, 0xbf, 0x07); /* movsx rax,word */
    assert_int_equal(in.ext, INSN_EXT_SIGN);
    assert_int_equal(in.op_size, 8);
    assert_int_equal(in.width, 2);
    assert_true(in.to_reg);
    in = DECODE(M64, 0x66, 0x0f, 0xb6, 0x07); /* movzx ax,byte */
    assert_int_equal(in.ext, INSN_EXT_ZERO);
    assert_int_equal(in.op_size, 2);
    in = DECODE(M64, 0x66, 0x63, 0x07); /* movsxd with 66: word to word */
    assert_int_equal(in.width, 2);
    assert_int_equal(in.op_size, 2);
    in = DECODE(M64, 0x8a, 0x07); /* mov al,[rdi] */
    assert_int_equal(in.op_size, 1);
    assert_true(in.to_reg);
    in = DECODE(M64, 0x88, 0x07);
    assert_false(in.to_reg);
    in = DECODE(M64, 0x02, 0x07); /* add al,[rdi] */
    assert_int_equal(in.op_size, 1);
    assert_true(in.to_reg);
    in = DECODE(M64, 0xa1, MOFFS64);
    assert_true(in.to_reg);
    assert_int_equal(in.disp, 0xfee00000);
    assert_int_equal(in.disp_size, 8);
    in = DECODE(M16, 0x66, 0xab); /* stosd in 16-bit mode */
    assert_int_equal(in.width, 4);
    assert_int_equal(in.addr_size, 2);
    assert_int_equal(in.mode, M16);
}

/* Every prefix of a valid encoding is truncated (never read past, never accepted), and
 * appending bytes does not change the decoding. */
static void truncation_at_every_length(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        const struct dcase *c = &cases[i];
        if (c->err != INSN_ERR_OK)
            continue;
        for (unsigned n = 0; n < c->len; n++) {
            uint8_t *buf = malloc(n ? n : 1);
            memcpy(buf, c->bytes, n);
            struct insn in;
            enum insn_error err = insn_decode(buf, n, c->mode, &in);
            free(buf);
            if (err != INSN_ERR_TRUNCATED)
                fail_msg("\"%s\" cut to %u bytes: %s", c->text, n, insn_error_text(err));
        }
        uint8_t longer[32];
        memset(longer, 0x90, sizeof(longer));
        memcpy(longer, c->bytes, c->n);
        struct insn a, b;
        assert_int_equal(insn_decode(c->bytes, c->n, c->mode, &a), INSN_ERR_OK);
        assert_int_equal(insn_decode(longer, sizeof(longer), c->mode, &b), INSN_ERR_OK);
        assert_memory_equal(&a, &b, sizeof(a));
    }
}

static void names(void **state)
{
    (void)state;
    assert_string_equal(insn_op_name(INSN_OP_MOVZX), "movzx");
    assert_string_equal(insn_op_name((enum insn_op)200), "(bad op)");
    assert_string_equal(insn_error_text(INSN_ERR_TOO_LONG), "longer than 15 bytes");
    assert_string_equal(insn_error_text((enum insn_error)99), "(bad error code)");
    struct insn in;
    assert_int_equal(insn_decode((const uint8_t[]){0x8b, 0x07}, 2, (enum insn_mode)3, &in),
                     INSN_ERR_INVALID);
}

/* A group opcode cut before its ModRM byte has no operation yet (not the group's
 * number read as one). */
static void unresolved_group_has_no_operation(void **state)
{
    (void)state;
    struct insn in;
    assert_int_equal(insn_decode((const uint8_t[]){0x83}, 1, M64, &in), INSN_ERR_TRUNCATED);
    assert_int_equal(in.op, INSN_OP_NONE);
    assert_int_equal(insn_decode((const uint8_t[]){0x0f, 0xba}, 2, M64, &in), INSN_ERR_TRUNCATED);
    assert_int_equal(in.op, INSN_OP_NONE);
    assert_int_equal(insn_decode((const uint8_t[]){0x8b}, 1, M64, &in), INSN_ERR_TRUNCATED);
    assert_int_equal(in.op, INSN_OP_MOV_LOAD);
}

static void modes_from_guest_state(void **state)
{
    (void)state;
    /* cr0_pe, rflags_vm, efer_lma, cs_l, cs_d */
    assert_int_equal(insn_mode_of(false, false, false, false, false), M16); /* real */
    assert_int_equal(insn_mode_of(false, false, false, false, true), M16);  /* unreal-ish */
    assert_int_equal(insn_mode_of(true, true, false, false, true), M16);    /* virtual-8086 */
    assert_int_equal(insn_mode_of(true, false, false, false, false), M16);  /* 16-bit PM */
    assert_int_equal(insn_mode_of(true, false, false, false, true), M32);
    assert_int_equal(insn_mode_of(true, false, true, false, true), M32);    /* compatibility */
    assert_int_equal(insn_mode_of(true, false, true, false, false), M16);
    assert_int_equal(insn_mode_of(true, false, true, true, false), M64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),
        cmocka_unit_test(sib_and_displacements),
        cmocka_unit_test(rip_relative),
        cmocka_unit_test(sixteen_bit_addressing),
        cmocka_unit_test(immediates),
        cmocka_unit_test(prefixes_and_segments),
        cmocka_unit_test(operand_sizes_and_extension),
        cmocka_unit_test(truncation_at_every_length),
        cmocka_unit_test(names),
        cmocka_unit_test(unresolved_group_has_no_operation),
        cmocka_unit_test(modes_from_guest_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
