; Multiboot (version 1) header and 32-bit entry point shared by every test guest.
; The loader enters here in protected mode with paging off, EAX = 0x2BADB002 and
; EBX = gpa of the Multiboot information structure.

MB_MAGIC     equ 0x1BADB002
MB_FLAGS     equ 0x00000003        ; bit 0: page-align modules, bit 1: want memory info
STACK_BYTES  equ 16384

section .multiboot progbits alloc noexec nowrite align=4
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

section .text
global _start
extern runtime_start
extern __bss_start, __bss_end

_start:
    cli
    cld
    ; Multiboot leaves GDTR undefined, so load our own before touching segments.
    lgdt [gdt_desc]
    jmp 0x08:.reload_cs
.reload_cs:
    mov cx, 0x10
    mov ds, cx
    mov es, cx
    mov fs, cx
    mov gs, cx
    mov ss, cx
    mov esp, stack_top

    ; Keep EAX/EBX for runtime_start; a loader need not zero .bss for us.
    mov esi, eax
    mov edx, ebx
    mov edi, __bss_start
    mov ecx, __bss_end
    sub ecx, edi
    xor eax, eax
    rep stosb

    push edx                    ; info gpa
    push esi                    ; magic
    call runtime_start          ; never returns
.halt:
    cli
    hlt
    jmp .halt

section .rodata
align 8
gdt:
    dq 0                        ; null
    dq 0x00CF9A000000FFFF       ; 0x08: flat 32-bit code, ring 0
    dq 0x00CF92000000FFFF       ; 0x10: flat 32-bit data, ring 0
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt

section .bss
align 16
stack_bottom:
    resb STACK_BYTES
stack_top:
