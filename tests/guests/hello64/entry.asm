; hello64 entry. Keel's ELF64 loader has already done everything a 64-bit kernel needs
; (GDT with a 64-bit code segment, identity page tables, EFER.LME/LMA, a stack, a zeroed
; .bss), so this only hands the entry registers to C for checking: nothing here may hide
; a mistake in that hand-off.
;   RAX = 0x2BADB002, RDI = gpa of the Multiboot information structure,
;   RSP = top of a 64 KiB stack minus 8, with a zero return address at [RSP].

bits 64
default rel

section .text
global _start
extern hello64_main

_start:
    ; hello64_main(info, magic, entry_rsp, entry_rflags). SysV wants RSP+8 16-byte
    ; aligned at a call target, which Keel provides at _start, so one more slot keeps it
    ; for the call.
    mov rsi, rax
    mov rdx, rsp
    pushfq
    pop rcx
    sub rsp, 8
    call hello64_main           ; does not return: it leaves through the debug-exit port
.halt:
    cli
    hlt
    jmp .halt
