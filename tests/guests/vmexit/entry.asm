; vmexit guest: Multiboot (version 1) header, the 32-bit entry, the switch to long mode
; (the MOV CR8 tests exist only there), the AP start-up path and the exception stubs.
; The image is linked as x86-64 at 1 MiB and converted to ELF32 (guests.mk), so any
; Multiboot loader (Keel, GRUB, QEMU's -kernel) enters _start in 32-bit protected mode
; with paging off, EAX = 0x2BADB002 and EBX = gpa of the Multiboot information.
;
; Paging: the first 4 GiB identity-mapped with 2 MiB pages, the top GiB (LAPIC, IOAPIC)
; uncached. The BSP builds the tables; each AP loads the same CR3.

MB_MAGIC     equ 0x1BADB002
MB_FLAGS     equ 0x00000003        ; bit 0: page-align modules, bit 1: want memory info
STACK_BYTES  equ 16384
PTE_P_RW_PS  equ 0x83              ; present, writable, 2 MiB page
PTE_PCD_PWT  equ 0x18              ; uncached
MSR_EFER     equ 0xC0000080
EFER_LME     equ 0x100
CR4_PAE      equ 0x20
CR0_PE_PG    equ 0x80000001
SEL_CODE32   equ 0x08
SEL_DATA     equ 0x10
SEL_CODE64   equ 0x18

section .multiboot progbits alloc noexec nowrite align=4
    dd MB_MAGIC
    dd MB_FLAGS
    dd -(MB_MAGIC + MB_FLAGS)

; Paging on with EFER.LME set enters long mode; the far jump loads the 64-bit CS.
%macro ENTER_LONG_MODE 1
    mov eax, pml4
    mov cr3, eax
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PE_PG
    mov cr0, eax
    jmp SEL_CODE64:%1
%endmacro

section .text
bits 32
global _start
extern __bss_start, __bss_end

_start:
    cli
    cld
    mov esi, eax                ; magic and info survive in ESI/EBP
    mov ebp, ebx
    lgdt [gdt_desc]             ; Multiboot leaves GDTR undefined
    jmp SEL_CODE32:.cs32
.cs32:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    mov esp, stack_top
    ; A loader need not zero .bss; the page tables live there.
    mov edi, __bss_start
    mov ecx, __bss_end
    sub ecx, edi
    xor eax, eax
    rep stosb
    mov dword [pml4], pdpt + 3
    xor ecx, ecx
.pdpt:
    mov eax, ecx                ; PDPT[i] = pd + i * 4096, present and writable
    shl eax, 12
    lea eax, [pd + eax + 3]
    mov [pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jb .pdpt
    xor ecx, ecx
.pd:
    mov eax, ecx
    shl eax, 21
    or eax, PTE_P_RW_PS
    cmp ecx, 3 * 512
    jb .cached
    or eax, PTE_PCD_PWT
.cached:
    mov [pd + ecx * 8], eax
    inc ecx
    cmp ecx, 4 * 512
    jb .pd
    ENTER_LONG_MODE bsp_long

; APs arrive here from the trampoline in 32-bit protected mode.
ap_entry32:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    ENTER_LONG_MODE ap_long

bits 64
extern vmexit_start, ap_main, ap_stack_tops, ap_next_slot, ap_slot_limit
bsp_long:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rsp, stack_top
    mov edi, esi                ; vmexit_start(magic, info)
    mov esi, ebp
    call vmexit_start           ; never returns
.halt:
    cli
    hlt
    jmp .halt

; Each AP takes the next stack slot; one past the last parks the AP.
ap_long:
    mov ax, SEL_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, 1
    lock xadd [ap_next_slot], eax
    cmp eax, [ap_slot_limit]
    jae .park
    mov rsp, [ap_stack_tops + rax * 8]
    mov edi, eax
    call ap_main                ; never returns
.park:
    cli
    hlt
    jmp .park

; Exception stubs: vector and error code (0 where the CPU pushes none) for vmexit_fault.
extern vmexit_fault
%macro EXC 1
exc_%1:
%if %1 != 8 && (%1 < 10 || %1 > 14) && %1 != 17 && %1 != 21 && %1 != 29 && %1 != 30
    push 0
%endif
    push %1
    jmp exc_common
%endmacro
%assign v 0
%rep 32
EXC v
%assign v v + 1
%endrep
exc_common:
    mov rdi, [rsp]              ; vector
    mov rsi, [rsp + 8]          ; error code
    mov rdx, [rsp + 16]         ; RIP
    and rsp, -16
    call vmexit_fault           ; never returns

section .rodata
global exc_stubs
align 8
exc_stubs:
%assign v 0
%rep 32
    dq exc_ %+ v
%assign v v + 1
%endrep

; The AP start-up code, copied to a free page below 1 MiB; the SIPI vector is that
; page's number, so an AP runs it in real mode at CS:0000 with CS = page << 8. It uses
; addresses relative to its own start (DS = CS) and two absolute ones in the image, the
; GDT and ap_entry32, which the far jump reaches as linear addresses.
bits 16
global tramp_start, tramp_end
tramp_start:
    cli
    cld
    mov ax, cs
    mov ds, ax
    o32 lgdt [tramp_gdtr - tramp_start]
    mov eax, cr0
    or eax, 1                   ; PE; paging comes in ap_entry32
    mov cr0, eax
    jmp dword SEL_CODE32:ap_entry32
align 4
tramp_gdtr:
    dw gdt_end - gdt - 1
    dd gdt
tramp_end:

align 16
gdt:
    dq 0                        ; null
    dq 0x00CF9A000000FFFF       ; 0x08: flat 32-bit code
    dq 0x00CF92000000FFFF       ; 0x10: flat data
    dq 0x00AF9A000000FFFF       ; 0x18: 64-bit code
gdt_end:
gdt_desc:
    dw gdt_end - gdt - 1
    dd gdt

section .bss
align 4096
pml4: resb 4096
pdpt: resb 4096
pd:   resb 4 * 4096
align 16
stack: resb STACK_BYTES
stack_top:
