; Transfers control from the UEFI loader to the core's keel_entry64 (SysV ABI).
;
;   void keel_handoff_exit(u64 entry, struct bootinfo *bi, u64 cr3, u64 stack_top)
;       After ExitBootServices: never returns.
;   int  keel_handoff_call(u64 entry, struct bootinfo *bi, u64 cr3, u64 stack_top)
;       Platform-check mode, boot services alive: saves the CPU state the firmware
;       depends on, runs the core, restores that state and returns its result.
;
; Both switch to the hand-over page tables before the jump. They identity-map the
; loader, so this code keeps running across the CR3 write, and map the core at its
; link address. stack_top must be 16-byte aligned.

bits 64
default rel

%define MSR_IA32_PAT        0x277
%define MSR_IA32_EFER       0xc0000080
%define MSR_FS_BASE         0xc0000100
%define MSR_GS_BASE         0xc0000101
%define MSR_KERNEL_GS_BASE  0xc0000102
%define CR4_PGE             (1 << 7)

section .text

; Loads CR3 from %1 and flushes global TLB entries too (firmware may use them), by
; toggling CR4.PGE. Clobbers rax and %2.
%macro load_cr3_flush 2
    mov cr3, %1
    mov rax, cr4
    mov %2, rax
    and %2, ~CR4_PGE
    mov cr4, %2
    mov cr4, rax
%endmacro

global keel_handoff_exit
keel_handoff_exit:
    cli
    load_cr3_flush rdx, r8
    mov rsp, rcx
    xor ebp, ebp
    mov rax, rdi
    mov rdi, rsi
    call rax
.dead:                          ; keel_entry64 never returns after ExitBootServices
    cli
    hlt
    jmp .dead

global keel_handoff_call
keel_handoff_call:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    pushfq
    mov r12, rdi                ; entry
    mov r13, rsi                ; bi
    mov r14, rdx                ; cr3
    mov r15, rcx                ; stack top

    lea rbx, [saved]
    mov [rbx + SAVE.rsp], rsp
    mov rax, cr0
    mov [rbx + SAVE.cr0], rax
    mov rax, cr3
    mov [rbx + SAVE.cr3], rax
    mov rax, cr4
    mov [rbx + SAVE.cr4], rax
    sgdt [rbx + SAVE.gdtr]
    sidt [rbx + SAVE.idtr]
    mov [rbx + SAVE.cs], cs
    mov [rbx + SAVE.ds], ds
    mov [rbx + SAVE.es], es
    mov [rbx + SAVE.ss], ss
    mov [rbx + SAVE.fs], fs
    mov [rbx + SAVE.gs], gs
%macro save_msr 2
    mov ecx, %1
    rdmsr
    mov [rbx + %2], eax
    mov [rbx + %2 + 4], edx
%endmacro
    save_msr MSR_IA32_EFER, SAVE.efer
    save_msr MSR_IA32_PAT, SAVE.pat
    save_msr MSR_FS_BASE, SAVE.fs_base
    save_msr MSR_GS_BASE, SAVE.gs_base
    save_msr MSR_KERNEL_GS_BASE, SAVE.kgs_base

    cli
    load_cr3_flush r14, rcx
    mov rsp, r15
    xor ebp, ebp
    mov rdi, r13
    call r12

    ; Back from the core, still on its page tables (or the hand-over ones): both
    ; identity-map this code and the firmware's GDT, IDT and stack.
    cli
    lea rbx, [saved]
    mov [rbx + SAVE.result], eax

    lgdt [rbx + SAVE.gdtr]
    movzx eax, word [rbx + SAVE.cs]
    push rax
    lea rax, [.cs_reloaded]
    push rax
    o64 retf                    ; reload CS from the firmware's GDT
.cs_reloaded:
    mov ss, [rbx + SAVE.ss]
    mov ds, [rbx + SAVE.ds]
    mov es, [rbx + SAVE.es]
    mov fs, [rbx + SAVE.fs]
    mov gs, [rbx + SAVE.gs]
    lidt [rbx + SAVE.idtr]

    mov rdx, [rbx + SAVE.cr3]
    load_cr3_flush rdx, rcx
    ; CR4 through a PGE-clear step, so no global entry of the core survives.
    mov rax, [rbx + SAVE.cr4]
    mov rcx, rax
    and rcx, ~CR4_PGE
    mov cr4, rcx
    mov cr4, rax
    mov rax, [rbx + SAVE.cr0]
    mov cr0, rax

    ; After the selector loads, which overwrite the FS and GS bases.
%macro restore_msr 2
    mov ecx, %1
    mov eax, [rbx + %2]
    mov edx, [rbx + %2 + 4]
    wrmsr
%endmacro
    restore_msr MSR_IA32_EFER, SAVE.efer
    restore_msr MSR_IA32_PAT, SAVE.pat
    restore_msr MSR_FS_BASE, SAVE.fs_base
    restore_msr MSR_GS_BASE, SAVE.gs_base
    restore_msr MSR_KERNEL_GS_BASE, SAVE.kgs_base

    mov rsp, [rbx + SAVE.rsp]
    mov eax, [rbx + SAVE.result]
    popfq                       ; brings back the firmware's RFLAGS.IF
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

struc SAVE
    .rsp:       resq 1
    .cr0:       resq 1
    .cr3:       resq 1
    .cr4:       resq 1
    .efer:      resq 1
    .pat:       resq 1
    .fs_base:   resq 1
    .gs_base:   resq 1
    .kgs_base:  resq 1
    .gdtr:      resb 16         ; 10 bytes used
    .idtr:      resb 16
    .cs:        resw 1
    .ds:        resw 1
    .es:        resw 1
    .ss:        resw 1
    .fs:        resw 1
    .gs:        resw 1
    .result:    resd 1
endstruc

section .data
align 16
saved:
    times SAVE_size db 0

section .note.GNU-stack noalloc noexec nowrite progbits
