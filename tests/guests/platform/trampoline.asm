; AP start-up for the platform guest. The BSP copies tramp_start..tramp_end to a free
; page below 1 MiB and sends INIT-SIPI-SIPI with that page's number as the vector; each
; AP then runs it in real mode at CS:0000 with CS = page << 8. The code only uses
; addresses relative to its own start (through DS = CS), plus two absolute ones that
; need no patching: the GDT and ap_entry32 live in the image at 1 MiB, where the
; linker put them, and after LGDT and the far jump they are reached as linear addresses.

section .rodata
bits 16
global tramp_start, tramp_end
tramp_start:
    cli
    cld
    mov ax, cs
    mov ds, ax
    o32 lgdt [tramp_gdtr - tramp_start]
    mov eax, cr0
    or eax, 1                    ; PE; paging stays off
    mov cr0, eax
    jmp dword 0x08:ap_entry32    ; 32-bit far jump: loads CS from the new GDT
align 4
tramp_gdtr:
    dw ap_gdt_end - ap_gdt - 1
    dd ap_gdt
tramp_end:

align 8
ap_gdt:
    dq 0                         ; null
    dq 0x00CF9A000000FFFF        ; 0x08: flat 32-bit code, as the runtime's GDT
    dq 0x00CF92000000FFFF        ; 0x10: flat 32-bit data
ap_gdt_end:

section .text
bits 32
extern ap_main, ap_next_slot, ap_slot_limit, ap_stack_tops
ap_entry32:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov fs, ax
    mov gs, ax
    mov ss, ax
    ; Each AP takes the next stack slot; one past the last parks the AP.
    mov eax, 1
    lock xadd [ap_next_slot], eax
    cmp eax, [ap_slot_limit]
    jae .park
    mov esp, [ap_stack_tops + eax * 4]
    push eax
    call ap_main                 ; never returns
.park:
    cli
    hlt
    jmp .park
