; Interrupt and exception entry: one small stub per vector pushes a uniform frame
; (a dummy error code where the CPU pushes none, then the vector) and joins the
; common path, which saves the general registers and calls trap_dispatch in C.

bits 64
extern trap_dispatch
global isr_stub_table

%macro STUB 1
isr_stub_%1:
%if !(%1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30)
    push 0
%endif
    push %1
    jmp isr_common
%endmacro

section .text
align 16
%assign v 0
%rep 256
STUB v
%assign v v + 1
%endrep

isr_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    cld
    mov rdi, rsp
    call trap_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

section .rodata
align 8
isr_stub_table:
%assign v 0
%rep 256
    dq isr_stub_ %+ v
%assign v v + 1
%endrep
