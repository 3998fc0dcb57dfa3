; The VM entry/exit path, the only assembly on Keel's hot path.
;
; int vmx_enter(struct guest_regs *regs, int launched)
;   Loads the guest's general registers and enters it (VMLAUNCH the first time,
;   VMRESUME after). Returns 0 after a VM exit (guest registers saved back into
;   *regs), 1 if the entry failed with VMfailInvalid, 2 with VMfailValid.
; HOST_RSP must point at the frame this function pushes, so it writes it each time:
; one VMWRITE is cheaper than tracking which stack the caller is on.

bits 64
global vmx_enter
global vmx_exit_stub

; R_RAX ... R_R15 (offsets in struct guest_regs, arch/x86/guest_regs.h) and
; VMCS_HOST_RSP, generated from the C definitions by the build.
%include "guest_regs_offsets.inc"

section .text
align 16
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        ; regs: the exit stub finds it at [rsp]
    mov eax, VMCS_HOST_RSP
    vmwrite rax, rsp
    test esi, esi                   ; flags survive the MOVs below
    mov rax, [rdi + R_RAX]
    mov rbx, [rdi + R_RBX]
    mov rcx, [rdi + R_RCX]
    mov rdx, [rdi + R_RDX]
    mov rsi, [rdi + R_RSI]
    mov rbp, [rdi + R_RBP]
    mov r8,  [rdi + R_R8]
    mov r9,  [rdi + R_R9]
    mov r10, [rdi + R_R10]
    mov r11, [rdi + R_R11]
    mov r12, [rdi + R_R12]
    mov r13, [rdi + R_R13]
    mov r14, [rdi + R_R14]
    mov r15, [rdi + R_R15]
    mov rdi, [rdi + R_RDI]
    jnz .resume
    vmlaunch
    jmp .failed
.resume:
    vmresume
.failed:
    ; Still on our own stack with host registers partly overwritten by guest values.
    mov eax, 1                      ; VMfailInvalid (CF)
    jc .out
    mov eax, 2                      ; VMfailValid (ZF)
.out:
    pop rdi
    jmp vmx_restore_host            ; the exit path's epilogue; the jump is paid only here

; HOST_RIP: the CPU arrives here on every VM exit with RSP = the frame above.
align 16
vmx_exit_stub:
    push rdi                        ; guest rdi
    mov rdi, [rsp + 8]              ; regs
    mov [rdi + R_RAX], rax
    mov [rdi + R_RBX], rbx
    mov [rdi + R_RCX], rcx
    mov [rdi + R_RDX], rdx
    mov [rdi + R_RSI], rsi
    mov [rdi + R_RBP], rbp
    mov [rdi + R_R8],  r8
    mov [rdi + R_R9],  r9
    mov [rdi + R_R10], r10
    mov [rdi + R_R11], r11
    mov [rdi + R_R12], r12
    mov [rdi + R_R13], r13
    mov [rdi + R_R14], r14
    mov [rdi + R_R15], r15
    pop rax
    mov [rdi + R_RDI], rax
    pop rdi
    xor eax, eax
vmx_restore_host:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
