; Multiboot2 entry: GRUB leaves us in 32-bit protected mode, paging off, at the load
; (physical) addresses. This stub builds just enough page tables for long mode (the
; first 4 GiB identity-mapped, and the core's link addresses at the top 2 GiB mapped
; onto the first 1 GiB), switches to 64-bit mode and calls mb2_boot(magic, info) in C.
; Everything here runs before the link addresses are mapped, hence the "- VBASE".

bits 32

KERNEL_VBASE    equ 0xFFFFFFFF80000000
MB2_MAGIC       equ 0xE85250D6
MB2_ARCH_I386   equ 0
MB2_BOOT_MAGIC  equ 0x36D76289
PTE_P_W         equ 0x003
PTE_P_W_PS      equ 0x083

extern mb2_boot
extern __image_start
extern __image_end
extern keel_entry64
global mb2_entry32

section .multiboot2 align=8
mb2_header:
    dd MB2_MAGIC
    dd MB2_ARCH_I386
    dd mb2_header_end - mb2_header
    dd -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
    ; Entry address tag: the ELF entry is a link (high) address GRUB cannot jump to.
    align 8
    dw 3, 0
    dd 12
    dd mb2_entry32 - KERNEL_VBASE
    align 8
    dw 0, 0                            ; end tag
    dd 8
mb2_header_end:

section .keel_header align=8
global keel_image_header
keel_image_header:
    dq 0x31474d494c45454b              ; "KEELIMG1", see struct keel_image_header
    dq keel_entry64
    dq __image_start
    dq __image_end

section .boot.text progbits alloc exec nowrite align=16
mb2_entry32:
    cli
    cld
    mov esp, boot_stack_top - KERNEL_VBASE
    mov edi, eax                       ; keep magic and info pointer for mb2_boot
    mov esi, ebx

    cmp edi, MB2_BOOT_MAGIC
    jne .not_multiboot2

    ; Long mode needs CPUID leaf 0x80000001 EDX bit 29.
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb .no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz .no_long_mode

    ; GRUB does not promise that .bss is clear where the tables live.
    mov edi, mb2_tables - KERNEL_VBASE
    mov ecx, (mb2_tables_end - mb2_tables) / 4
    xor eax, eax
    rep stosd
    mov edi, MB2_BOOT_MAGIC            ; rep stosd used edi

    ; PML4[0] -> low PDPT (identity 0..4 GiB); PML4[511] -> high PDPT whose entry 510
    ; (0xFFFFFFFF80000000) shares the PD of the first GiB.
    mov eax, mb2_pdpt_low - KERNEL_VBASE
    or eax, PTE_P_W
    mov [mb2_pml4 - KERNEL_VBASE], eax
    mov eax, mb2_pdpt_high - KERNEL_VBASE
    or eax, PTE_P_W
    mov [mb2_pml4 - KERNEL_VBASE + 511 * 8], eax

    xor ecx, ecx
.fill_pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, mb2_pd - KERNEL_VBASE
    or eax, PTE_P_W
    mov [mb2_pdpt_low - KERNEL_VBASE + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb .fill_pdpt
    mov eax, mb2_pd - KERNEL_VBASE
    or eax, PTE_P_W
    mov [mb2_pdpt_high - KERNEL_VBASE + 510 * 8], eax

    ; 2048 2-MiB pages = 4 GiB. Entry i maps i * 2 MiB; the high dword holds bits 32+.
    xor ecx, ecx
.fill_pd:
    mov eax, ecx
    shl eax, 21
    or eax, PTE_P_W_PS
    mov [mb2_pd - KERNEL_VBASE + ecx * 8], eax
    mov eax, ecx
    shr eax, 11
    mov [mb2_pd - KERNEL_VBASE + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jb .fill_pd

    mov eax, cr4
    or eax, 1 << 5                     ; PAE
    mov cr4, eax
    mov eax, mb2_pml4 - KERNEL_VBASE
    mov cr3, eax
    mov ecx, 0xC0000080                ; EFER
    rdmsr
    or eax, 1 << 8                     ; LME
    wrmsr
    mov eax, cr0
    or eax, (1 << 31) | 1              ; PG | PE
    mov cr0, eax

    lgdt [mb2_gdtr - KERNEL_VBASE]
    jmp 0x08:(mb2_entry64_low - KERNEL_VBASE)

.not_multiboot2:
    mov esi, msg_not_mb2 - KERNEL_VBASE
    jmp early_fail
.no_long_mode:
    mov esi, msg_no_lm - KERNEL_VBASE
    jmp early_fail

; Nothing else can report this early: write to COM1 and port 0xE9, then stop.
early_fail:
    lodsb
    test al, al
    jz .halt
    out 0xE9, al
    mov dx, 0x3F8
    out dx, al
    mov ecx, 20000
.wait: loop .wait
    jmp early_fail
.halt:
    cli
    hlt
    jmp .halt

bits 64
mb2_entry64_low:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor ax, ax
    mov fs, ax
    mov gs, ax
    mov rsp, boot_stack_top            ; now at the link address
    mov rax, .high
    jmp rax
.high:
    ; edi = magic, esi = info (zero-extended by the 32-bit moves above)
    mov edi, edi
    mov esi, esi
    xor ebp, ebp
    call mb2_boot
.hang:
    cli
    hlt
    jmp .hang

section .boot.data progbits alloc noexec write align=16
align 16
mb2_gdt:
    dq 0
    dq 0x00AF9A000000FFFF              ; 64-bit code
    dq 0x00CF92000000FFFF              ; data
mb2_gdtr:
    dw mb2_gdtr - mb2_gdt - 1
    dd mb2_gdt - KERNEL_VBASE
msg_not_mb2: db "Keel: not started by a Multiboot2 loader; halting.", 13, 10, 0
msg_no_lm:   db "Keel: this CPU has no 64-bit long mode; Keel needs an x86-64 CPU with Intel VT-x.", 13, 10, 0

section .bss
align 4096
mb2_tables:
mb2_pml4:      resb 4096
mb2_pdpt_low:  resb 4096
mb2_pdpt_high: resb 4096
mb2_pd:        resb 4 * 4096
mb2_tables_end:
global boot_stack_top
align 16
boot_stack:    resb 32768
boot_stack_top:
